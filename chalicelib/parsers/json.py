"""JSON: an object becomes the record's fields (aliases normalised)."""

from __future__ import annotations

from typing import Any

import orjson

from chalicelib.normalise import normalise
from chalicelib.parsers import json_refusal
from chalicelib.parsers.registry import failed, simple


@simple("json", description="a JSON object; its keys become fields")
def parse_json(text: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        return failed(text, "json", str(e))
    if type(doc) is not dict:
        return failed(text, "json", f"expected an object, got {type(doc).__name__}")
    problem = json_refusal(doc, text)  # fields at every depth, strings cut, 64-bit integers
    if problem is not None:
        return failed(text, "json", problem.removeprefix("json: "))
    return normalise(doc)[0]
