"""The prepared path's reader of JSON answers (`chalicelib.actions.prepared.JsonReader`)
makes of a 200 answer what botocore's JSONParser makes of it, for every output shape of
the JSON services Sluice calls: generated answers with members missing, null, unknown,
of the wrong type, unions with no member, two or one botocore does not know, blobs that
are not base64, timestamps of every kind, bodies empty or not JSON. Where the reader
gives up (it raises), the client asks botocore's parser; where it answers, the answer is
botocore's, key order included."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.endpoint import convert_to_response_dict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.actions.prepared import JsonReader

SERVICES = ("dynamodb", "sqs", "kinesis", "firehose", "logs", "secretsmanager")
_GAVE_UP: Any = object()


def _client(service: str) -> Any:
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


CLIENTS = {service: _client(service) for service in SERVICES}
OPERATIONS = [
    (service, name)
    for service, client in CLIENTS.items()
    if client.meta.service_model.protocol == "json"
    for name in client.meta.service_model.operation_names
    if not client.meta.service_model.operation_model(name).has_event_stream_output
    and not client.meta.service_model.operation_model(name).has_streaming_output
]
_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=4)
)
_any_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _value(draw: Any, shape: Any, depth: int, noisy: bool) -> Any:
    """A JSON value for `shape`; with `noisy`, now and then anything at all."""
    if noisy and draw(st.integers(0, 9)) == 0:
        return draw(_any_json)
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return draw(_any_json)
        members = list(shape.members.items())
        if depth > 3 or not members:
            return {}
        out: dict[str, Any] = {}
        if shape.is_tagged_union:
            count = draw(st.sampled_from([1, 1, 1, 0, 2])) if noisy else 1
            chosen = draw(st.lists(st.sampled_from(members), min_size=count, max_size=count))
            if noisy and draw(st.booleans()):
                out["__type"] = "x"
            if noisy and draw(st.integers(0, 4)) == 0:
                out["NotAMemberYet"] = 1
                chosen = []
        else:
            chosen = draw(st.lists(st.sampled_from(members), max_size=4, unique_by=lambda m: m[0]))
        for name, member in chosen:
            json_name = member.serialization.get("name", name)
            out[json_name] = (
                None
                if noisy and draw(st.integers(0, 5)) == 0
                else _value(draw, member, depth + 1, noisy)
            )
        if noisy and draw(st.integers(0, 5)) == 0:
            out["unknownKey"] = draw(_json_scalars)
        return out
    if kind == "map":
        n = draw(st.integers(0, 2 if depth < 3 else 0))
        return {
            draw(st.text(max_size=3)): _value(draw, shape.value, depth + 1, noisy) for _ in range(n)
        }
    if kind == "list":
        n = draw(st.integers(0, 2 if depth < 3 else 0))
        return [_value(draw, shape.member, depth + 1, noisy) for _ in range(n)]
    if kind == "blob":
        raw = base64.b64encode(draw(st.binary(max_size=6))).decode()
        return raw if not noisy or draw(st.booleans()) else draw(st.text(max_size=5))
    if kind == "timestamp":
        return draw(
            st.one_of(
                st.integers(0, 2_000_000_000),
                st.floats(0, 2e9),
                st.just("2026-12-03T05:00:00Z"),
                st.text(max_size=4) if noisy else st.just(1_700_000_000.5),
            )
        )
    if kind == "boolean":
        return draw(st.booleans())
    if kind in ("integer", "long"):
        return draw(st.integers(-(2**40), 2**40))
    if kind in ("float", "double"):
        return draw(st.floats(allow_nan=False))
    return draw(st.text(max_size=5))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self.body


def _ordered(value: Any) -> Any:
    """A value with its dicts' key order made part of equality."""
    if isinstance(value, dict):
        return [("dict", k, _ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_reader_reads_an_answer_as_botocore_does(data: Any) -> None:
    """Any answer of any operation: botocore's result, or the reader gives up."""
    service, name = data.draw(st.sampled_from(OPERATIONS))
    client = CLIENTS[service]
    operation = client.meta.service_model.operation_model(name)
    noisy = data.draw(st.booleans())
    shape = operation.output_shape
    if shape is None:
        body = b""
    else:
        form = (
            data.draw(st.sampled_from(["json"] * 6 + ["empty", "text", "null"]))
            if noisy
            else "json"
        )
        body = {
            "json": lambda: json.dumps(
                data.draw(st.builds(lambda: None)) or _value(data.draw, shape, 0, noisy)
            ).encode(),
            "empty": lambda: b"",
            "text": lambda: b"<html>not json",
            "null": lambda: b"null",
        }[form]()
    headers = {"Content-Type": "application/x-amz-json-1.0", "Content-Length": str(len(body))}
    if data.draw(st.booleans()):
        headers["x-amzn-RequestId"] = "REQ123"
    response = AWSResponse("https://example.amazonaws.com/", 200, headers, _Raw(body))
    parser = client._response_parser
    try:
        theirs: Any = parser.parse(convert_to_response_dict(response, operation), shape)
    except Exception as e:
        theirs = ("raised", type(e).__name__)
    try:
        ours: Any = JsonReader(parser).parse(operation, response)
    except Exception:
        ours = _GAVE_UP
    if ours is not _GAVE_UP:
        assert _ordered(ours) == _ordered(theirs)
    elif not noisy:
        pytest.fail(f"gave up on a well-formed answer of {service}.{name}: {body[:200]!r}")
