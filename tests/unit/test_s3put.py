"""chalicelib.actions.s3put: the archive's PutObject on the prepared path writes what
botocore's `put_object` writes, and falls back to it whenever the answer is not 200."""

from __future__ import annotations

import base64
import os
import zlib
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from chalicelib.actions.s3put import PreparedPut

BUCKET = "sluice-archive-test"  # tests/conftest.py ARCHIVE_BUCKET

KEYS = [
    pytest.param("archive/tag=aws.lambda.app/dt=2026-11-26/hour=10/r-0.jsonl.gz", id="layout"),
    pytest.param("archive/tag=a b+c/dt=x/hour=00/id%2F-1.jsonl.gz", id="space plus percent"),
    pytest.param("archive/tag=ünïcødé.日本/x~y/-0.jsonl.gz", id="non-ASCII and tilde"),
    pytest.param("archive/tag=q?x&y=1#z/'\"/-0.jsonl.gz", id="query and fragment characters"),
    pytest.param("archive//double//slash.jsonl.gz", id="empty path segments"),
]


class Sent:
    """The requests a client sends (a `before-send` hook that answers nothing)."""

    def __init__(self, s3: Any, answer: int | None = None) -> None:
        self.prepared = 0
        self.answer = answer
        s3.meta.events.register_first("before-send.s3.PutObject", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        encoding = request.headers.get("Content-Encoding") or ""
        encoding = encoding.decode() if isinstance(encoding, bytes) else encoding
        if "x-amz-checksum-crc32" in request.headers and "aws-chunked" not in encoding:
            self.prepared += 1
            if self.answer is not None:
                return AWSResponse(request.url, self.answer, {}, None)
        return None


def _object(aws: Any, key: str) -> dict[str, Any]:
    got = aws.s3.get_object(Bucket=BUCKET, Key=key)
    return {
        "body": got["Body"].read(),
        "type": got["ContentType"],
        "encoding": got["ContentEncoding"],
    }


@pytest.mark.parametrize("key", KEYS)
def test_prepared_puts_write_what_put_object_writes(aws: Any, key: str) -> None:
    """After a first put to the bucket, puts take the prepared path and the object (key,
    body, content type and encoding) is the one botocore's `put_object` writes."""
    from chalicelib.aws import Clients

    s3 = Clients().get("s3")
    sent = Sent(s3)
    put = PreparedPut(s3)
    put.put(BUCKET, "archive/first.jsonl.gz", b"learn", "application/x-ndjson", "gzip")
    assert sent.prepared == 0  # the first put goes through botocore and learns the bucket
    body = os.urandom(3000)
    put.put(BUCKET, key, body, "application/x-ndjson", "gzip")
    assert sent.prepared == 1
    aws.s3.put_object(
        Bucket=BUCKET,
        Key=key + ".reference",
        Body=body,
        ContentType="application/x-ndjson",
        ContentEncoding="gzip",
    )
    ours, reference = _object(aws, key), _object(aws, key + ".reference")
    assert ours == reference and ours["body"] == body
    keys = {o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert key in keys


def test_the_checksum_is_the_body_s_crc32(aws: Any) -> None:
    """The prepared request carries the body's CRC32 (which S3 checks) in its header."""
    from chalicelib.aws import Clients

    s3 = Clients().get("s3")
    seen: list[str] = []
    s3.meta.events.register_first(
        "before-send.s3.PutObject",
        lambda request, **_: seen.append(request.headers.get("x-amz-checksum-crc32")),
    )
    put = PreparedPut(s3)
    body = b"x" * 100_000
    for k in ("a", "b"):
        put.put(BUCKET, k, body, "application/x-ndjson", "gzip")
    want = base64.b64encode((zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")).decode()
    assert seen[-1] == want


@pytest.mark.parametrize("status", [403, 500, 503])
def test_a_refused_prepared_put_falls_back_to_put_object(aws: Any, status: int) -> None:
    """A prepared put S3 answers with anything but 200 is sent again by `put_object`
    (with botocore's retries): the object is written all the same."""
    from chalicelib.aws import Clients

    s3 = Clients().get("s3")
    sent = Sent(s3, answer=status)
    put = PreparedPut(s3)
    put.put(BUCKET, "first", b"1", "application/x-ndjson", "gzip")
    put.put(BUCKET, "second", b"2", "application/x-ndjson", "gzip")
    assert sent.prepared == 1
    assert _object(aws, "second")["body"] == b"2"


def test_errors_are_botocore_s_own(aws: Any) -> None:
    """A bucket that does not exist fails as `put_object` fails (ClientError NoSuchBucket),
    on the first put and on later ones alike."""
    from chalicelib.aws import Clients

    put = PreparedPut(Clients().get("s3"))
    put.put(BUCKET, "first", b"1", "application/x-ndjson", "gzip")
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            put.put("no-such-bucket-here", "k", b"1", "application/x-ndjson", "gzip")
        assert e.value.response["Error"]["Code"] == "NoSuchBucket"


def test_clients_without_botocore_internals_use_put_object() -> None:
    """A stand-in client (a test double) gets plain `put_object` calls."""

    class Fake:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def put_object(self, **kw: Any) -> None:
            self.calls.append(kw)

    fake = Fake()
    put = PreparedPut(fake)
    for k in ("a", "b"):
        put.put(BUCKET, k, b"1", "t", "gzip")
    assert [c["Key"] for c in fake.calls] == ["a", "b"]


def test_a_client_no_longer_used_is_not_kept_alive() -> None:
    """The prepared path remembered for a client does not keep the client alive."""
    import gc
    import weakref

    import boto3

    from chalicelib.actions.s3put import prepared_put

    s3 = boto3.Session(
        region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    ).client("s3")
    prepared_put(s3)
    ref = weakref.ref(s3)
    del s3
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("key", KEYS)
def test_the_prepared_put_is_signed_as_botocore_signs_it(
    aws: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prepared put's headers and signature are those botocore's S3 signer gives the
    same request at the same instant (what the prepared path sent when it signed with it)."""
    import datetime

    import botocore.auth
    from botocore.awsrequest import AWSRequest

    from chalicelib.aws import Clients

    s3 = Clients().get("s3")
    put = PreparedPut(s3)
    put.put(BUCKET, "archive/first.jsonl.gz", b"learn", "application/x-ndjson", "gzip")
    now = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: now)
    body = os.urandom(5000)
    url, headers = put.request(
        put._learned[BUCKET], key, body, "application/x-ndjson", "gzip", "20260304T050607Z"
    )
    reference = AWSRequest(
        method="PUT",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
            "x-amz-checksum-crc32": headers["x-amz-checksum-crc32"],
        },
    )
    reference.context = {  # as botocore describes a put with its checksum in a header
        "client_config": s3.meta.config,
        "has_streaming_input": True,
        "checksum": {"request_algorithm": {"in": "header", "name": "x-amz-checksum-crc32"}},
    }
    credentials = s3._request_signer._credentials
    botocore.auth.S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(reference)
    signed = {k: v for k, v in reference.headers.items()}
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256", "X-Amz-Security-Token"):
        assert headers[name] == signed[name], name


def test_prepared_puts_reach_a_server_over_http(aws_env: dict[str, str]) -> None:
    """Against moto's server on 127.0.0.1 prepared puts go through the client's HTTP
    session and write the objects put_object writes."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = boto3.Session().client("s3", endpoint_url=f"http://{host}:{port}")
        s3.create_bucket(Bucket=BUCKET)
        built_by_botocore: list[bool] = []  # botocore's requests carry their context
        s3.meta.events.register_first(
            "before-send.s3.PutObject",
            lambda request, **_: built_by_botocore.append(bool(request.context)),
        )
        put = PreparedPut(s3)
        bodies = {f"archive/tag=a b/k-{i}.jsonl.gz": os.urandom(100 + i) for i in range(3)}
        for k, body in bodies.items():
            put.put(BUCKET, k, body, "application/x-ndjson", "gzip")
        assert built_by_botocore == [True, False, False]
        for k, body in bodies.items():
            got = s3.get_object(Bucket=BUCKET, Key=k)
            assert (got["Body"].read(), got["ContentEncoding"]) == (body, "gzip")
    finally:
        server.stop()


@pytest.mark.parametrize(
    "key",
    [
        *KEYS,
        pytest.param("".join(chr(c) for c in range(128)), id="every ASCII character"),
        pytest.param("archive/tag=x/dt=2026-01-01/hour=00/ab%2Fcd-0.jsonl.gz", id="percent"),
        pytest.param("a%3D=b%%==%25 %20+", id="escapes and the characters they stand for"),
        pytest.param("%", id="a percent alone"),
        pytest.param("", id="empty"),
    ],
)
def test_keys_are_encoded_as_botocore_encodes_them(key: str) -> None:
    """The key in the prepared put's path is the one botocore's REST serialiser writes
    (`quote(key, safe="/~")`), ASCII or not."""
    from urllib.parse import quote

    from chalicelib.actions.s3put import _encoded_key

    assert _encoded_key(key) == quote(key, safe="/~")


@pytest.mark.parametrize(
    ("endpoint", "signing", "unsigned"),
    [
        pytest.param(None, None, True, id="https: body left out of the signature"),
        pytest.param(None, True, False, id="https, payload_signing_enabled: body signed"),
        pytest.param(None, False, True, id="https, payload signing off"),
        pytest.param("http://127.0.0.1:9", None, False, id="plain http: body signed"),
    ],
)
def test_the_body_is_signed_where_botocore_signs_it(
    aws: Any,
    endpoint: str | None,
    signing: bool | None,
    unsigned: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The prepared put is signed as botocore's S3 signer signs a PutObject whose CRC32 is
    in a header: over HTTPS the body is left out of the signature (UNSIGNED-PAYLOAD: TLS
    and the checksum S3 verifies protect it, as for botocore's own puts, whose checksum
    goes in a trailer), unless the client asks for payload signing; over plain HTTP it
    is signed. Where the body is signed, the signature is that of botocore's own
    `put_object` of the same object with its CRC32 given, at the same instant."""
    import datetime

    import boto3
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config

    config = Config(s3={"payload_signing_enabled": signing}) if signing is not None else None
    s3 = boto3.Session().client("s3", region_name="us-east-1", endpoint_url=endpoint, config=config)
    sent: list[Any] = []

    class Empty:
        def stream(self, *_: Any, **__: Any) -> Any:
            yield b""

    def keep(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {}, Empty())

    s3.meta.events.register_first("before-send.s3.PutObject", keep)
    put = PreparedPut(s3)
    put.put(BUCKET, "archive/first.jsonl.gz", b"learn", "application/x-ndjson", "gzip")
    assert put._learned[BUCKET].unsigned is unsigned
    now = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: now)
    body, key = os.urandom(3000), "archive/tag=a b/k-0.jsonl.gz"
    url, ours = put.request(
        put._learned[BUCKET], key, body, "application/x-ndjson", "gzip", "20260304T050607Z"
    )
    crc = ours["x-amz-checksum-crc32"]
    # botocore's S3 signer, given this request as botocore describes a put with its
    # checksum in a header:
    reference = AWSRequest(
        method="PUT",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
            "x-amz-checksum-crc32": crc,
        },
    )
    reference.context = {
        "client_config": s3.meta.config,
        "has_streaming_input": True,
        "checksum": {"request_algorithm": {"in": "header", "name": "x-amz-checksum-crc32"}},
    }
    credentials = s3._request_signer._credentials
    botocore.auth.S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(reference)
    for name in ("Authorization", "X-Amz-Content-SHA256", "X-Amz-Date", "X-Amz-Security-Token"):
        assert ours[name] == reference.headers[name], name
    assert (ours["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD") is unsigned
    if not unsigned:  # and botocore's own put of the same object, its CRC32 given
        s3.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=body,
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
            ChecksumCRC32=crc,
        )
        assert sent[-1].url == url
        assert sent[-1].headers["Authorization"].decode() == ours["Authorization"]
