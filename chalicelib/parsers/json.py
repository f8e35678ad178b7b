"""JSON: an object becomes the record's fields (aliases normalised)."""

from __future__ import annotations

from typing import Any

import orjson

from chalicelib.normalise import normalise
from chalicelib.parsers import rounded_integer
from chalicelib.parsers.registry import failed, simple


@simple("json", description="a JSON object; its keys become fields")
def parse_json(text: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        return failed(text, "json", str(e))
    if type(doc) is not dict:
        return failed(text, "json", f"expected an object, got {type(doc).__name__}")
    if rounded_integer(doc, text):
        return failed(text, "json", "integer beyond 64 bits")
    return normalise(doc)[0]
