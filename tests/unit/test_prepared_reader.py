"""The prepared path's reader of JSON answers (`chalicelib.actions.prepared.JsonReader`)
makes of a 200 answer what botocore's JSONParser makes of it, for every output shape of
the JSON services Sluice calls: generated answers with members missing, null, unknown,
of the wrong type, unions with no member, two or one botocore does not know, blobs that
are not base64, timestamps of every kind, bodies empty or not JSON. Where the reader
gives up (it raises), the client asks botocore's parser; where it answers, the answer is
botocore's, key order included. The same for the reader of query-protocol answers
(`QueryReader`, SNS's Publish) over every operation of four query services: generated XML
with members repeated, empty, nested or unknown, the result wrapper or the metadata
missing or repeated, with and without a namespace, and bodies that are not XML."""

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

from chalicelib.actions.prepared import JsonReader, QueryReader, lower_headers

SERVICES = ("dynamodb", "sqs", "kinesis", "firehose", "logs", "secretsmanager")
_GAVE_UP: Any = object()


def _client(service: str) -> Any:
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


def _operations(clients: dict[str, Any], protocol: str) -> list[tuple[str, str]]:
    """(service, operation) of every operation of `clients` speaking `protocol`, but those
    whose output is a stream (never read by a prepared client)."""
    return [
        (service, name)
        for service, client in clients.items()
        if client.meta.service_model.protocol == protocol
        for name in client.meta.service_model.operation_names
        if not client.meta.service_model.operation_model(name).has_event_stream_output
        and not client.meta.service_model.operation_model(name).has_streaming_output
    ]


CLIENTS = {service: _client(service) for service in SERVICES}
OPERATIONS = _operations(CLIENTS, "json")
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


def _read_both(
    reader: Any, client: Any, operation: Any, content_type: str, body: bytes, request_id: bool
) -> tuple[Any, Any]:
    """(what `reader` makes of a 200 answer with `body`, or _GAVE_UP if it raised; what
    botocore's parser makes of it, or ("raised", the error's name))."""
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    if request_id:
        headers["x-amzn-RequestId"] = "REQ123"
    response = AWSResponse("https://example.amazonaws.com/", 200, headers, _Raw(body))
    parser = client._response_parser
    try:
        theirs: Any = parser.parse(
            convert_to_response_dict(response, operation), operation.output_shape
        )
    except Exception as e:
        theirs = ("raised", type(e).__name__)
    try:
        ours: Any = reader(parser).parse(operation, response)
    except Exception:
        ours = _GAVE_UP
    return ours, theirs


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
    ours, theirs = _read_both(
        JsonReader, client, operation, "application/x-amz-json-1.0", body, data.draw(st.booleans())
    )
    if ours is not _GAVE_UP:
        assert _ordered(ours) == _ordered(theirs)
    elif not noisy:
        pytest.fail(f"gave up on a well-formed answer of {service}.{name}: {body[:200]!r}")


# -- query protocol (SNS): chalicelib.actions.prepared.QueryReader ----------------------
QUERY_SERVICES = ("sns", "sts", "iam", "cloudformation")
QUERY_CLIENTS = {service: _client(service) for service in QUERY_SERVICES}
QUERY_OPERATIONS = _operations(QUERY_CLIENTS, "query")
_XML_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="<&")
# Text as XML can carry it: entities, character references, CDATA, a comment splitting it.
_xml_text = st.one_of(
    st.text(_XML_CHARS, max_size=6),
    st.sampled_from(["a&amp;b", "&#233;t&#xE9;", "<![CDATA[<x>]]>", "a<!-- c -->b", " ", ""]),
)


def _xml_member(draw: Any, tag: str, noisy: bool) -> str:
    text = draw(_xml_text)
    form = draw(st.sampled_from(["text", "text", "empty", "nested"] if noisy else ["text"]))
    if form == "empty":
        return f"<{tag}/>"
    if form == "nested":
        return f"<{tag}><Inner>{text}</Inner></{tag}>"
    return f"<{tag}>{text}</{tag}>"


def _xml_answer(draw: Any, operation: Any, noisy: bool) -> bytes:
    """A query-protocol answer: `<OpResponse><OpResult>members</OpResult><ResponseMetadata>`
    as AWS writes it; with `noisy`, members repeated, unknown or of other shapes, the
    wrapper or the metadata missing or repeated, a namespace or not, or no XML at all."""
    shape = operation.output_shape
    parts = []
    if shape is not None and shape.type_name == "structure":
        members = list(shape.members.items())
        chosen = draw(st.lists(st.sampled_from(members), max_size=4)) if members else []
        if not noisy:
            chosen = list(dict(chosen).items())  # each member once
        for name, member in chosen:
            parts.append(_xml_member(draw, member.serialization.get("name") or name, noisy))
    if noisy and draw(st.integers(0, 4)) == 0:
        parts.append(_xml_member(draw, "Unknown", noisy))
    result = "".join(parts)
    wrapper = (shape.serialization.get("resultWrapper") if shape is not None else None) or ""
    if wrapper:
        count = draw(st.sampled_from([1, 1, 1, 0, 2])) if noisy else 1
        result = f"<{wrapper}>{result}</{wrapper}>" * count
    meta = "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
    if noisy:
        meta = draw(
            st.sampled_from(
                [
                    meta,
                    "",
                    meta * 2,
                    "<ResponseMetadata/>",
                    "<ResponseMetadata><RequestId/><Other>x</Other></ResponseMetadata>",
                ]
            )
        )
    xmlns = ' xmlns="https://sns.amazonaws.com/doc/2010-03-31/"'
    if noisy and draw(st.booleans()):
        xmlns = ""
    body = f"<{operation.name}Response{xmlns}>{result}{meta}</{operation.name}Response>"
    if noisy and draw(st.integers(0, 6)) == 0:
        body = draw(st.sampled_from(["", "<html>not xml", body[: len(body) // 2]]))
    return body.encode()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_query_reader_reads_an_answer_as_botocore_does(data: Any) -> None:
    """Any answer of any query-protocol operation: botocore's result, key order
    included, or the reader gives up; a well-formed answer of a structure of text
    members (SNS Publish's) is always read."""
    service, name = data.draw(st.sampled_from(QUERY_OPERATIONS))
    client = QUERY_CLIENTS[service]
    operation = client.meta.service_model.operation_model(name)
    noisy = data.draw(st.booleans())
    body = _xml_answer(data.draw, operation, noisy)
    ours, theirs = _read_both(
        QueryReader, client, operation, "text/xml", body, data.draw(st.booleans())
    )
    shape = operation.output_shape
    if ours is not _GAVE_UP:
        assert _ordered(ours) == _ordered(theirs)
    elif not noisy and shape is not None and QueryReader._plan(shape) is not None:
        pytest.fail(f"gave up on a well-formed answer of {service}.{name}: {body[:200]!r}")


def test_the_query_reader_reads_sns_publish() -> None:
    """The answer Sluice's alerts get, read without botocore's parser."""
    client = QUERY_CLIENTS["sns"]
    operation = client.meta.service_model.operation_model("Publish")
    body = (
        b'<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>'
        b"<MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1"
        b"</RequestId></ResponseMetadata></PublishResponse>"
    )
    response = AWSResponse(
        "https://sns.us-east-1.amazonaws.com/", 200, {"X-Amzn-RequestId": "r-1"}, _Raw(body)
    )
    assert QueryReader(client._response_parser).parse(operation, response) == {
        "MessageId": "m-1",
        "ResponseMetadata": {
            "RequestId": "r-1",
            "HTTPStatusCode": 200,
            "HTTPHeaders": {"x-amzn-requestid": "r-1"},
        },
    }


@given(st.lists(st.tuples(st.text(max_size=6), st.text(max_size=3)), max_size=6))
def test_lower_headers_is_botocores_lowercase_dict(items: list[tuple[str, str]]) -> None:
    from botocore.awsrequest import HeadersDict
    from botocore.utils import lowercase_dict

    headers = HeadersDict()
    for k, v in items:
        headers[k] = v
    assert _ordered(lower_headers(headers)) == _ordered(lowercase_dict(headers))
    plain = dict(items)
    assert _ordered(lower_headers(plain)) == _ordered(lowercase_dict(plain))
