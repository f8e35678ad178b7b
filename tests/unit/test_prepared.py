"""chalicelib.actions.prepared: a prepared call sends the request botocore sends (body,
headers, SigV4 signature) and gives back what botocore gives back (results, errors, the
table's state); any answer but a 200 or a refused condition goes to botocore again."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import orjson
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.actions.prepared import PreparedClient, Signer, host_of, prepared_client
from sluice_cli import tables

NOWHERE = "http://prepared-test.invalid/"  # moto's stubber leaves other hosts alone
TEXT = 'ünïcødé 日本 "quoted" \\ back\nslash\t&=+%'


class Wire:
    """Every HTTP attempt of a client (`before-send`, first), and whether it came from the
    prepared path (a request botocore built carries its context; a prepared one has none).
    `answer(request)` may answer prepared attempts instead of moto."""

    def __init__(self, client: Any, service: str) -> None:
        self.attempts: list[tuple[str, bool]] = []
        self.requests: list[Any] = []
        self.answer: Callable[[Any], Any] | None = None
        client.meta.events.register_first(f"before-send.{service}", self)

    def __call__(self, request: Any, event_name: str, **_: Any) -> Any:
        prepared = not getattr(request, "context", None)
        self.attempts.append((event_name.split(".")[2], prepared))
        self.requests.append(request)
        if prepared and self.answer is not None:
            got = self.answer(request)
            if got is not None:
                request.url = NOWHERE  # what the "service" refused changes nothing in moto
            return got
        return None

    @property
    def prepared(self) -> int:
        return sum(p for _, p in self.attempts)


def _json_response(status: int, doc: dict[str, Any], crc: int | None = None) -> AWSResponse:
    import zlib

    body = orjson.dumps(doc)
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "TEST"}
    headers["x-amz-crc32"] = str(zlib.crc32(body) if crc is None else crc)

    class Raw:
        def __init__(self) -> None:
            self.data = body

        def stream(self, **_: Any) -> Iterator[bytes]:
            yield self.data

        def read(self, *_: Any) -> bytes:
            data, self.data = self.data, b""
            return data

    return AWSResponse(NOWHERE, status, headers, Raw())


@pytest.fixture
def tables2(aws: Any) -> tuple[str, str]:
    """Two empty state tables: one written through botocore, one through the prepared path."""
    for name in ("via-botocore", "via-prepared"):
        tables.create(aws.dynamodb, name, tables.STATE)
    return "via-botocore", "via-prepared"


def _ddb() -> Any:
    from chalicelib.aws import Clients

    return Clients().get("dynamodb")


def _scrub(result: Any, table: str) -> Any:
    """A result without what differs between two answers (request ids, dates), and with
    the table's name made neutral."""
    out = copy.deepcopy(result)
    if isinstance(out, dict):
        out.pop("ResponseMetadata", None)
    return orjson.loads(
        orjson.dumps(out, default=lambda b: b.hex()).replace(table.encode(), b"TABLE")
    )


def _key(pk: str, sk: str = "s") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _seed(ddb: Any, table: str) -> None:
    ddb.put_item(TableName=table, Item={**_key("seeded"), "n": {"N": "5"}, "t": {"S": TEXT}})
    ddb.put_item(TableName=table, Item={**_key("seeded", "t"), "ids": {"BS": [b"\x00\xff"]}})


# (method, parameters for table T): each a call the alert gates or the state table make.
CALLS: list[Any] = [
    pytest.param(
        "update_item",
        lambda t: {
            "TableName": t,
            "Key": _key("seeded"),
            "UpdateExpression": "ADD #a :n SET expires_at = :e",
            "ExpressionAttributeNames": {"#a": "n"},
            "ExpressionAttributeValues": {":n": {"N": "2"}, ":e": {"N": "1900000000"}},
            "ReturnValues": "UPDATED_NEW",
        },
        id="counter ADD, UPDATED_NEW",
    ),
    pytest.param(
        "update_item",
        lambda t: {
            "TableName": t,
            "Key": _key("seeded", "t"),
            "UpdateExpression": "ADD ids :ids SET expires_at = :e",
            "ConditionExpression": "attribute_not_exists(fired) OR fired = :tok",
            "ExpressionAttributeValues": {
                ":ids": {"BS": [b"\x01\x02", b"\x00\xff", bytes(range(8))]},
                ":e": {"N": "1900000000"},
                ":tok": {"S": "token"},
            },
            "ReturnValues": "ALL_NEW",
        },
        id="binary set ADD under a condition, ALL_NEW",
    ),
    pytest.param(
        "update_item",
        lambda t: {
            "TableName": t,
            "Key": _key(TEXT, TEXT),
            "UpdateExpression": "SET #m = :m, b = :b, l = :l, f = :f",
            "ExpressionAttributeNames": {"#m": "message"},
            "ExpressionAttributeValues": {
                ":m": {"S": TEXT},
                ":b": {"BOOL": True},
                ":l": {"L": [{"N": "1.5"}, {"NULL": True}, {"M": {"k": {"SS": ["a", "b"]}}}]},
                ":f": {"B": b"\x00"},
            },
            "ReturnValues": "ALL_NEW",
        },
        id="every attribute type, non-ASCII keys",
    ),
    pytest.param(
        "put_item",
        lambda t: {"TableName": t, "Item": {**_key("new"), "time": {"N": "1"}, "m": {"S": TEXT}}},
        id="put",
    ),
    pytest.param(
        "get_item",
        lambda t: {"TableName": t, "Key": _key("seeded"), "ConsistentRead": True},
        id="get, found",
    ),
    pytest.param(
        "get_item",
        lambda t: {"TableName": t, "Key": _key("absent")},
        id="get, absent",
    ),
    pytest.param(
        "delete_item",
        lambda t: {"TableName": t, "Key": _key("seeded"), "ReturnValues": "ALL_OLD"},
        id="delete, ALL_OLD",
    ),
    pytest.param(
        "batch_get_item",
        lambda t: {
            "RequestItems": {
                t: {
                    "Keys": [_key("seeded"), _key("seeded", "t"), _key("absent")],
                    "ProjectionExpression": "sk",
                }
            }
        },
        id="batch get",
    ),
    pytest.param(
        "batch_write_item",
        lambda t: {
            "RequestItems": {
                t: [
                    {"PutRequest": {"Item": {**_key("alerted", str(i)), "e": {"N": "1"}}}}
                    for i in range(25)
                ]
            }
        },
        id="batch write of 25",
    ),
    pytest.param(
        "query",
        lambda t: {
            "TableName": t,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "seeded"}},
            "ConsistentRead": True,
        },
        id="query",
    ),
]


def _teach(pc: PreparedClient, method: str, table: str) -> None:
    """One call of each operation through botocore, so the next takes the prepared path."""
    lessons: dict[str, dict[str, Any]] = {
        "update_item": {"Key": _key("lesson"), "UpdateExpression": "SET x = :x"},
        "put_item": {"Item": _key("lesson")},
        "get_item": {"Key": _key("lesson")},
        "delete_item": {"Key": _key("lesson")},
        "query": {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "lesson"}},
        },
    }
    if method == "batch_get_item":
        params: dict[str, Any] = {"RequestItems": {table: {"Keys": [_key("lesson")]}}}
    elif method == "batch_write_item":
        params = {"RequestItems": {table: [{"DeleteRequest": {"Key": _key("lesson")}}]}}
    else:
        params = {"TableName": table, **lessons[method]}
        if method == "update_item":
            params["ExpressionAttributeValues"] = {":x": {"N": "1"}}
    getattr(pc, method)(**params)
    if method != "delete_item":  # leave the table as the other one is
        pc._client.delete_item(TableName=table, Key=_key("lesson"))
    operation = pc._api[method]
    assert operation in pc._learned, f"{operation} not learned"


def _items(ddb: Any, table: str) -> Any:
    items = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(
        _scrub(items, table), key=lambda it: orjson.dumps(it, option=orjson.OPT_SORT_KEYS)
    )


@pytest.mark.parametrize(("method", "params"), CALLS)
def test_prepared_calls_answer_and_write_what_botocore_does(
    aws: Any, tables2: tuple[str, str], method: str, params: Callable[[str], dict[str, Any]]
) -> None:
    """The same call through botocore and, once learned, through the prepared path gives
    the same result and leaves the table in the same state; it took the prepared path."""
    via_botocore, via_prepared = tables2
    ddb = _ddb()
    wire = Wire(ddb, "dynamodb")
    pc = prepared_client(ddb)
    for t in tables2:
        _seed(ddb, t)
    _teach(pc, method, via_prepared)
    reference = getattr(ddb, method)(**params(via_botocore))
    before = wire.prepared
    ours = getattr(pc, method)(**params(via_prepared))
    assert wire.prepared == before + 1
    assert _scrub(ours, via_prepared) == _scrub(reference, via_botocore)
    assert ours["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert ours["ResponseMetadata"]["RetryAttempts"] == 0
    assert _items(ddb, via_prepared) == _items(ddb, via_botocore)


@pytest.mark.parametrize(("method", "params"), CALLS)
def test_prepared_requests_are_botocore_s_byte_for_byte(
    aws: Any, tables2: tuple[str, str], method: str, params: Callable[[str], dict[str, Any]]
) -> None:
    """For parameters other than the ones it learned from, the prepared path builds the
    request botocore builds at the same instant: URL, body, every header, the signature."""
    table = tables2[1]
    ddb = _ddb()
    wire = Wire(ddb, "dynamodb")
    pc = prepared_client(ddb)
    _teach(pc, method, table)
    getattr(ddb, method)(**params(table))
    sent = wire.requests[-1]
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in sent.headers.items()}
    operation = pc._api[method]
    ours, body = pc._build(
        pc._learned[operation],
        operation,
        params(table),
        headers["X-Amz-Date"],
        headers["amz-sdk-invocation-id"],
    )
    assert {k: v.decode() if isinstance(v, bytes) else v for k, v in ours.items()} == headers
    assert body == sent.body
    assert pc._learned[operation].url == sent.url


ATTRS = {"rule": {"DataType": "String", "StringValue": "rule-1"}}


def test_sns_publish_is_botocore_s_byte_for_byte_and_delivered(aws: Any) -> None:
    """SNS Publish (query protocol) on the prepared path sends botocore's form body and
    signature; the topic's subscribers get the message."""
    from chalicelib.aws import Clients

    sqs = aws.sqs
    queue = sqs.create_queue(QueueName="pager")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    aws.sns.subscribe(
        TopicArn=aws.topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    sns = Clients().get("sns")
    wire = Wire(sns, "sns")
    pc = prepared_client(sns)

    def publish(i: int) -> dict[str, Any]:
        return {
            "TopicArn": aws.topic_arn,
            "Subject": f"[ERROR] rule {i}: 3 event(s)",
            "Message": f"{TEXT} #{i}\n" * 50,
            "MessageAttributes": {
                "rule": {"DataType": "String", "StringValue": f"rule-{i}"},
                "tag": {"DataType": "String", "StringValue": TEXT},
            },
        }

    pc.publish(**publish(0))  # learns
    assert wire.prepared == 0
    got = pc.publish(**publish(1))
    assert wire.prepared == 1 and got["MessageId"]
    sns.publish(**publish(2))
    sent = wire.requests[-1]
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in sent.headers.items()}
    ours, body = pc._build(
        pc._learned["Publish"],
        "Publish",
        publish(2),
        headers["X-Amz-Date"],
        headers["amz-sdk-invocation-id"],
    )
    assert {k: v.decode() if isinstance(v, bytes) else v for k, v in ours.items()} == headers
    assert body == sent.body.encode()
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in messages) == [publish(i)["Message"] for i in range(3)]


REFUSED: list[Any] = [
    pytest.param(
        "update_item",
        lambda t: {
            "TableName": t,
            "Key": _key("seeded"),
            "UpdateExpression": "ADD n :one",
            "ConditionExpression": "n < :limit",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":limit": {"N": "3"}},
        },
        id="budget spent",
    ),
    pytest.param(
        "update_item",
        lambda t: {
            "TableName": t,
            "Key": _key("seeded"),
            "UpdateExpression": "SET consumed_by = :tok",
            "ConditionExpression": "attribute_not_exists(pk)",
            "ExpressionAttributeValues": {":tok": {"S": "x"}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
        id="refused with the old item",
    ),
    pytest.param(
        "put_item",
        lambda t: {
            "TableName": t,
            "Item": _key("seeded"),
            "ConditionExpression": "attribute_not_exists(pk)",
        },
        id="put over an existing item",
    ),
    pytest.param(
        "delete_item",
        lambda t: {
            "TableName": t,
            "Key": _key("absent"),
            "ConditionExpression": "attribute_exists(pk)",
        },
        id="delete of an absent item",
    ),
]


def test_sns_answers_on_the_prepared_path_are_botocore_s(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's own Publish answers (moto's XML), read on the prepared path without
    botocore's parser, are what botocore's parser makes of them, and none goes back to it."""
    from chalicelib.actions import prepared
    from chalicelib.aws import Clients

    sns = Clients().get("sns")
    pc = prepared_client(sns)
    answers: list[Any] = []
    send = prepared.send

    def kept(*args: Any) -> Any:
        answers.append(send(*args))
        return answers[-1]

    monkeypatch.setattr(prepared, "send", kept)
    parse = pc._parse
    monkeypatch.setattr(pc, "_parse", lambda *a: pytest.fail("botocore's parser was asked"))
    pc.publish(TopicArn=aws.topic_arn, Message="learns")  # botocore's path: learns
    got = [
        pc.publish(
            TopicArn=aws.topic_arn,
            Message=f"{TEXT} & <x> #{i}",
            **({"Subject": "s", "MessageAttributes": ATTRS} if i else {}),
        )
        for i in range(3)
    ]
    assert len(answers) == 3
    for ours, response in zip(got, answers, strict=True):
        theirs, _, _ = parse("Publish", response)
        theirs["ResponseMetadata"]["RetryAttempts"] = 0
        assert list(ours) == list(theirs) and ours == theirs
        assert ours["MessageId"]


@pytest.mark.parametrize(("method", "params"), REFUSED)
def test_a_refused_condition_raises_what_botocore_raises_in_one_request(
    aws: Any, tables2: tuple[str, str], method: str, params: Callable[[str], dict[str, Any]]
) -> None:
    """A ConditionalCheckFailedException from the prepared request is raised as botocore
    raises it (same class, error, modeled fields, operation) without sending it again."""
    via_botocore, via_prepared = tables2
    ddb = _ddb()
    wire = Wire(ddb, "dynamodb")
    pc = prepared_client(ddb)
    for t in tables2:
        _seed(ddb, t)
    _teach(pc, method, via_prepared)
    with pytest.raises(ClientError) as reference:
        getattr(ddb, method)(**params(via_botocore))
    attempts = len(wire.attempts)
    with pytest.raises(ClientError) as ours:
        getattr(pc, method)(**params(via_prepared))
    assert wire.attempts[attempts:] == [(pc._api[method], True)]
    assert (
        type(ours.value) is type(reference.value) is ddb.exceptions.ConditionalCheckFailedException
    )
    assert ours.value.operation_name == reference.value.operation_name
    assert _scrub(ours.value.response, via_prepared) == _scrub(
        reference.value.response, via_botocore
    )
    assert ours.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert _items(ddb, via_prepared) == _items(ddb, via_botocore)


def _connection_error(request: Any) -> Any:
    raise EndpointConnectionError(endpoint_url=request.url)


FALLBACKS: list[Any] = [
    pytest.param(
        lambda r: _json_response(500, {"__type": "InternalServerError", "message": "x"}),
        id="500",
    ),
    pytest.param(
        lambda r: _json_response(
            400, {"__type": "ProvisionedThroughputExceededException", "message": "slow"}
        ),
        id="throttled",
    ),
    pytest.param(
        lambda r: _json_response(400, {"__type": "ValidationException", "message": "?"}),
        id="400 that is not a refused condition",
    ),
    pytest.param(lambda r: AWSResponse(NOWHERE, 503, {}, None), id="503 without a body"),
    pytest.param(
        lambda r: _json_response(200, {"Attributes": {"n": {"N": "999"}}}, crc=1),
        id="200 with a damaged body",
    ),
    pytest.param(lambda r: AWSResponse(NOWHERE, 302, {}, None), id="redirect"),
    pytest.param(_connection_error, id="connection error"),
]


@pytest.mark.parametrize("answer", FALLBACKS)
def test_any_other_answer_goes_to_botocore_again(
    aws: Any, tables2: tuple[str, str], answer: Callable[[Any], Any]
) -> None:
    """A prepared attempt answered with anything but a 200 or a refused condition (or not
    answered at all) is made again by botocore, whose result is returned: the counter is
    added once, as botocore alone would add it."""
    table = tables2[1]
    ddb = _ddb()
    wire = Wire(ddb, "dynamodb")
    pc = prepared_client(ddb)
    _seed(ddb, table)
    _teach(pc, "update_item", table)
    wire.answer = answer
    got = pc.update_item(**CALLS[0].values[1](table))
    assert got["Attributes"]["n"] == {"N": "7"}
    assert [p for _, p in wire.attempts[-2:]] == [True, False]  # prepared, then botocore's


class Killed(BaseException):
    """The platform ending the invocation."""


def test_a_base_exception_ends_the_call_without_botocore(
    aws: Any, tables2: tuple[str, str]
) -> None:
    """What no `except Exception` may catch (the invocation killed mid-call) propagates
    from the prepared attempt; botocore does not send the call again."""
    table = tables2[1]
    ddb = _ddb()
    wire = Wire(ddb, "dynamodb")
    pc = prepared_client(ddb)
    _teach(pc, "update_item", table)

    def kill(request: Any) -> Any:
        raise Killed()

    wire.answer = kill
    attempts = len(wire.attempts)
    with pytest.raises(Killed):
        pc.update_item(**CALLS[0].values[1](table))
    assert len(wire.attempts) == attempts + 1


def test_an_operation_botocore_sends_differently_stays_on_botocore(
    aws: Any, tables2: tuple[str, str]
) -> None:
    """When the request botocore built has something the prepared path would not build
    (here a header a hook adds), the operation is never prepared: every call is botocore's."""
    table = tables2[1]
    ddb = _ddb()
    ddb.meta.events.register(
        "before-sign.dynamodb.UpdateItem",
        lambda request, **_: request.headers.__setitem__("x-extra", "1"),
    )
    wire = Wire(ddb, "dynamodb")
    pc = prepared_client(ddb)
    for _ in range(3):
        pc.update_item(**CALLS[0].values[1](table))
    assert "UpdateItem" in pc._refused and wire.prepared == 0
    assert ddb.get_item(TableName=table, Key=_key("seeded"))["Item"]["n"] == {"N": "6"}


def test_clients_that_cannot_be_prepared_are_used_as_they_are(aws: Any) -> None:
    """A test double, an unsigned client, and operations whose input botocore transforms
    (timestamps) or that are not JSON/query keep the client's own methods."""
    from botocore import UNSIGNED
    from botocore.config import Config

    class Fake:
        def update_item(self, **kw: Any) -> dict[str, Any]:
            return kw

    fake = Fake()
    assert prepared_client(fake) is fake
    unsigned = boto3.client("dynamodb", config=Config(signature_version=UNSIGNED))
    assert prepared_client(unsigned) is unsigned
    pc = prepared_client(_ddb())
    assert isinstance(pc, PreparedClient)
    assert pc.exceptions is pc._client.exceptions
    restore = pc.restore_table_to_point_in_time  # RestoreDateTime: a timestamp
    assert restore == pc._client.restore_table_to_point_in_time
    assert callable(pc.update_item) and pc.update_item != pc._client.update_item
    s3 = prepared_client(aws.s3)
    assert s3.put_object == aws.s3.put_object  # rest-xml: botocore's


def test_prepared_calls_reach_a_server_over_http(aws_env: dict[str, str]) -> None:
    """Against moto's server on 127.0.0.1 the prepared requests go through the client's
    HTTP session and are answered like botocore's (counter, conditional refusal)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        ddb = boto3.Session().client("dynamodb", endpoint_url=f"http://{host}:{port}")
        tables.create(ddb, "served", tables.STATE)
        wire = Wire(ddb, "dynamodb")
        pc = prepared_client(ddb)
        counts = [
            pc.update_item(**CALLS[0].values[1]("served"))["Attributes"]["n"]["N"] for _ in range(3)
        ]
        assert counts == ["2", "4", "6"] and wire.prepared == 2
        with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
            pc.update_item(**REFUSED[0].values[1]("served"))
        assert wire.prepared == 3
    finally:
        server.stop()


SIGNED: list[Any] = [
    pytest.param(
        "POST", "https://dynamodb.us-east-1.amazonaws.com/", "", "dynamodb", False, id="json"
    ),
    pytest.param("POST", "http://127.0.0.1:4566/", "tok", "sns", False, id="loopback port, token"),
    pytest.param(
        "PUT",
        "https://bucket.s3.eu-west-1.amazonaws.com/archive/tag%3Da%20b/%C3%BC~x//y.jsonl.gz",
        "tok",
        "s3",
        True,
        id="s3 key with encoded characters",
    ),
    pytest.param("PUT", "https://s3.amazonaws.com/bucket/k", "", "s3", True, id="s3 path style"),
]


@pytest.mark.parametrize(("method", "url", "token", "service", "s3"), SIGNED)
def test_the_signer_signs_as_botocore_does(
    monkeypatch: pytest.MonkeyPatch, method: str, url: str, token: str, service: str, s3: bool
) -> None:
    """SigV4 of this module and botocore's SigV4Auth / S3SigV4Auth agree on the same request
    at the same instant (headers with runs of spaces, an unsigned User-Agent)."""
    import hashlib

    import botocore.auth
    from botocore.credentials import Credentials

    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: now)
    credentials = Credentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token or None
    )
    body = TEXT.encode() * 3
    headers = {"Content-Type": "a/b;  charset=x ", "User-Agent": "ua  1", "X-Amz-Target": "T.Op"}
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    auth_cls = botocore.auth.S3SigV4Auth if s3 else botocore.auth.SigV4Auth
    auth_cls(credentials, service, "eu-west-1").add_auth(request)
    date = now.strftime("%Y%m%dT%H%M%SZ")
    payload = hashlib.sha256(body).hexdigest()
    signed = {k.lower(): v for k, v in headers.items() if k != "User-Agent"}
    signed.update({"host": host_of(url), "x-amz-date": date})
    if token:
        signed["x-amz-security-token"] = token
    if s3:
        signed["x-amz-content-sha256"] = payload
    from urllib.parse import urlsplit

    path = urlsplit(url).path
    ours = Signer().authorization(
        credentials.get_frozen_credentials(),
        method,
        path,
        signed,
        payload,
        "eu-west-1",
        service,
        date,
    )
    assert ours == request.headers["Authorization"]


# ---------------------------------------------------------------- dedupe records
def _alerted(ddb: Any, table: str, pk: str) -> set[str]:
    items = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )["Items"]
    return {it["sk"]["S"] for it in items}


def test_dedupe_records_are_written_on_the_prepared_path(
    aws: Any, tables2: tuple[str, str]
) -> None:
    """`mark_alerted` sends its BatchWriteItem calls (25 records each) on the prepared
    path once the first one has taught it, and every record is found again."""
    from chalicelib.alerting.state import AlertState

    table = tables2[1]
    ddb = _ddb()
    wire = Wire(ddb, "dynamodb")
    state = AlertState(ddb, table)
    state.mark_alerted("r", 0, ["lesson"])
    assert wire.prepared == 0 and "BatchWriteItem" in state.ddb._learned
    ids = [f"ev-{i:03d} {TEXT}" for i in range(60)]
    state.mark_alerted("r", 0, ids)
    assert [p for op, p in wire.attempts[1:]] == [True, True, True]
    assert _alerted(ddb, table, "alerted#r#0") == {"lesson", *ids}
    assert state.already_alerted("r", 0, [*ids, "new"]) == set(ids)


def test_unprocessed_dedupe_records_are_sent_again(aws: Any, tables2: tuple[str, str]) -> None:
    """When DynamoDB answers a prepared BatchWriteItem with UnprocessedItems (having
    written the rest), exactly those items are sent again until none is left."""
    from chalicelib.alerting.state import AlertState

    table = tables2[1]
    ddb = _ddb()
    wire = Wire(ddb, "dynamodb")
    state = AlertState(ddb, table)
    state.mark_alerted("r", 0, ["lesson"])
    refused: list[Any] = []

    def partly(request: Any) -> Any:
        if refused:
            return None  # the resend: written by moto
        items = orjson.loads(request.body)["RequestItems"][table]
        done, left = items[:-7], items[-7:]
        ddb.batch_write_item(RequestItems={table: done})  # what "DynamoDB" did write
        refused.extend(left)
        return _json_response(200, {"UnprocessedItems": {table: left}})

    wire.answer = partly
    ids = [f"ev-{i:03d}" for i in range(20)]
    sent = len(wire.requests)
    state.mark_alerted("r", 0, ids)
    prepared = [r for r in wire.requests[sent:] if not getattr(r, "context", None)]
    assert len(prepared) == 2
    assert orjson.loads(prepared[1].body)["RequestItems"][table] == refused
    assert _alerted(ddb, table, "alerted#r#0") == {"lesson", *ids}


@pytest.mark.parametrize("answer", FALLBACKS)
def test_a_failed_prepared_batch_write_goes_to_botocore_again(
    aws: Any, tables2: tuple[str, str], answer: Callable[[Any], Any]
) -> None:
    """A prepared BatchWriteItem answered with anything but a 200 (or not answered) is
    sent again by botocore, and every dedupe record is written."""
    from chalicelib.alerting.state import AlertState

    table = tables2[1]
    ddb = _ddb()
    wire = Wire(ddb, "dynamodb")
    state = AlertState(ddb, table)
    state.mark_alerted("r", 0, ["lesson"])
    wire.answer = answer
    ids = [f"ev-{i:03d}" for i in range(10)]
    state.mark_alerted("r", 0, ids)
    assert [p for _, p in wire.attempts[-2:]] == [True, False]  # prepared, then botocore's
    assert _alerted(ddb, table, "alerted#r#0") == {"lesson", *ids}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param(
            {"Content-Type": b"application/x-amz-json-1.0", "X-Amz-Date": b"20260304T050607Z"},
            id="bytes values",
        ),
        pytest.param(
            {"content-type": "a", "Content-Type": "b", "CONTENT-TYPE": "c", "Host": "h"},
            id="one name in three cases: the first spelling, the last value",
        ),
        pytest.param(
            {"x-amz-checksum-crc32": "AAAAAA==", "Content-Length": "12", "ünï": "cødé"},
            id="str values, a non-ASCII name",
        ),
    ],
)
def test_headers_dicts_are_botocore_s(headers: dict[str, Any]) -> None:
    """`headers_dict` gives botocore's HeadersDict of the headers: the same items in the
    same order, looked up in any case, each result a table of its own."""
    from botocore.awsrequest import HeadersDict

    from chalicelib.actions.prepared import headers_dict

    for _ in range(2):  # the first call checks itself against HeadersDict; later ones not
        ours, theirs = headers_dict(headers), HeadersDict(headers)
        assert type(ours) is HeadersDict
        assert list(ours.items()) == list(theirs.items())
        for name in headers:
            for spelling in (name, name.lower(), name.upper()):
                assert ours.get(spelling) == theirs.get(spelling)
        other = headers_dict(headers)
        other["X-Added"] = "1"
        del other["X-Added"]
        ours["X-Added"] = "2"
        assert "X-Added" not in other and ours["x-added"] == "2"


@pytest.mark.parametrize(
    ("trace", "function", "header"),
    [
        pytest.param(None, "f", None, id="no trace"),
        pytest.param("Root=1-abc;Parent=def;Sampled=1", None, None, id="outside Lambda"),
        pytest.param("", "f", None, id="an empty trace"),
        pytest.param("Root=1-abc;Parent=def", "f", "Root=1-abc;Parent=def", id="in Lambda"),
        pytest.param("Root=1 ü/x", "f", "Root=1%20%C3%BC%2Fx", id="characters quoted"),
    ],
)
def test_the_trace_header_is_botocore_s(
    trace: str | None, function: str | None, header: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prepared requests carry X-Amzn-Trace-Id as botocore adds it: inside Lambda (its
    function name set) with a trace id, quoted as botocore quotes it; else none."""
    from botocore.handlers import add_recursion_detection_header

    from chalicelib.actions.prepared import trace_header

    for name, value in (("_X_AMZN_TRACE_ID", trace), ("AWS_LAMBDA_FUNCTION_NAME", function)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    params: dict[str, Any] = {"headers": {}}
    add_recursion_detection_header(params)
    assert trace_header() == header == params["headers"].get("X-Amzn-Trace-Id")


@pytest.mark.parametrize(
    "instants",
    [
        pytest.param([1_767_225_599.999, 1_767_225_600.0], id="across a year"),
        pytest.param([100.2, 100.7, 101.0, 100.9], id="within a second, then the next, then back"),
        pytest.param([0.5], id="the epoch"),
    ],
)
def test_the_request_date_is_the_current_second(
    instants: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """X-Amz-Date is the current second in UTC, as botocore formats it, at every call."""
    import time

    from chalicelib.actions.prepared import amz_date

    for now in instants:
        monkeypatch.setattr(time, "time", lambda now=now: now)
        want = datetime.datetime.fromtimestamp(int(now), datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        assert amz_date() == want


@pytest.mark.parametrize(
    "random",
    [
        pytest.param(bytes(16), id="all zeros"),
        pytest.param(b"\xff" * 16, id="all ones"),
        pytest.param(bytes(range(16)), id="counting"),
        pytest.param(bytes.fromhex("c3f1a2b4d5e6f708192a3b4c5d6e7f80"), id="mixed"),
    ],
)
def test_invocation_ids_are_uuid4s_as_text(random: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """The invocation id of a prepared call is `str(uuid.uuid4())` of the same random
    bytes: version 4, RFC 4122 variant, the same text."""
    import os
    import uuid

    from chalicelib.actions import prepared

    monkeypatch.setattr(os, "urandom", lambda n: random[:n])
    assert prepared.uuid4_text() == str(uuid.uuid4())


def _quoted(quote: Any, value: Any) -> Any:
    try:
        return quote(value)
    except UnicodeEncodeError:
        return "refused"


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet="%+ ~._-aZ09&=/\n\u00e9\u65e5\ud800")))
def test_form_text_is_quote_plus(value: str) -> None:
    """Any text, lone surrogates and escapes-looking text included: what
    `quote_plus(value, safe="")` makes of it, or the same refusal."""
    from urllib.parse import quote_plus

    from chalicelib.actions.prepared import form_text

    assert _quoted(form_text, value) == _quoted(lambda v: quote_plus(v, safe=""), value)


_values = st.one_of(
    st.text(max_size=30),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.binary(max_size=5),
    st.lists(st.text(max_size=3), max_size=2),
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=12), _values, max_size=6))
def test_form_body_is_urlencode(params: dict[str, Any]) -> None:
    """A query-protocol body of any values is `urlencode(list(items), doseq=True)`."""
    from urllib.parse import urlencode

    from chalicelib.actions.prepared import form_body

    assert _quoted(form_body, params) == _quoted(
        lambda p: urlencode(list(p.items()), doseq=True), params
    )
