"""AWS and Slack answered in process, below the SDKs, so the handler path stays real.

AWS: a `before-send` handler on each botocore client (or on the session, before
clients exist, for the fresh-process measurements) returns a
`botocore.awsrequest.AWSResponse` with a real-shaped body. Botocore still
serialises the request, computes the S3 CRC32 trailer, signs with SigV4, parses
the response and runs its retry/checksum handlers: only the socket is skipped.
The S3 body is read the way urllib3 would send it (16 KiB blocks through
botocore's aws-chunked wrapper), so the checksum cost is counted, and it is
unwrapped and CRC-checked so the bench can prove what was archived.

Slack: a loopback HTTP server answering `chat.postMessage` with `{"ok": true}`;
`SLUICE_SLACK_API_URL` points slack_sdk at it.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import itertools
import threading
import uuid
import zlib
from collections import Counter
from typing import Any

import orjson
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from ddb import ConditionFailed, MemoryDynamoDB

ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION = "cloudwatch_logs"
SLACK_TOKEN = "xoxb-0000000000-bench-not-a-token"
# urllib3 2.x sends a file-like body in 16 KiB blocks (HTTPConnection.blocksize).
SEND_BLOCK = 16384


def lambda_env(slack_api_url: str, rules_ttl_s: int = 3600) -> dict[str, str]:
    """The function's environment as `.chalice/config.json` and Lambda would set it.

    Credentials are fake (every request is answered by a hook, nothing leaves the
    process); config/credential files are pointed at /dev/null and IMDS is off so
    botocore never looks anywhere else. The rules TTL is raised from 60 s to an
    hour only so that no reload lands inside one timed repetition.
    """
    return {
        "SLUICE_RULES_TABLE": "sluice-rules",
        "SLUICE_STATE_TABLE": "sluice-state",
        "SLUICE_ARCHIVE_BUCKET": f"sluice-archive-{ACCOUNT}",
        "SLUICE_DLQ_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/sluice-dlq",
        "SLUICE_SLACK_SECRET": "sluice/slack-bot-token",
        "SLUICE_SLACK_API_URL": slack_api_url,
        "SLUICE_RULES_TTL": str(rules_ttl_s),
        "POWERTOOLS_SERVICE_NAME": "sluice",
        "POWERTOOLS_METRICS_NAMESPACE": "Sluice",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIABENCHNOTAREALKEY",
        "AWS_SECRET_ACCESS_KEY": "bench/not/a/real/secret/key/000000000000",
        "AWS_SESSION_TOKEN": "bench-session-token-not-real",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }


# Variables that would send botocore elsewhere (a developer's shell may set them).
SCRUB = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
)


# Request ids of the answers: counted, as opaque as AWS's and without a `uuid4` each.
_REQUEST_IDS = itertools.count(1)


class _Body:
    """The `raw` an AWSResponse reads: `.stream()` like urllib3's response."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


def _read_like_urllib3(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):  # query-protocol services (SNS) send a form string
        return body.encode()
    parts = []
    while block := body.read(SEND_BLOCK):
        parts.append(block)
    return b"".join(parts)


def unchunk(wire: bytes) -> tuple[bytes, dict[str, str]]:
    """aws-chunked framing -> (payload, trailers)."""
    out: list[bytes] = []
    pos = 0
    while True:
        eol = wire.index(b"\r\n", pos)
        size = int(wire[pos:eol], 16)
        pos = eol + 2
        if size == 0:
            break
        out.append(wire[pos : pos + size])
        pos += size + 2
    trailers: dict[str, str] = {}
    for line in wire[pos:].split(b"\r\n"):
        if line:
            k, _, v = line.decode().partition(":")
            trailers[k.strip().lower()] = v.strip()
    return b"".join(out), trailers


class AwsAnswers:
    """One `before-send` handler for every AWS call the runtime makes.

    Counts calls per operation and archive bytes; `keep_bodies` keeps the S3
    objects so the bench can decompress and check them (off while timing).
    """

    def __init__(self, rule_items: list[dict[str, Any]]) -> None:
        self.rule_items = rule_items
        self.calls: Counter[str] = Counter()
        self.archive_bytes = 0
        self.keep_bodies = False
        self.bodies: list[tuple[str, bytes]] = []
        self._published: list[bytes] = []  # Publish bodies, read when asked for
        self.ddb = MemoryDynamoDB()

    def install(self, client: Any) -> None:
        client.meta.events.register("before-send", self)

    def install_on_session(self, session: Any) -> None:
        """Clients copy the session's emitter when created, so this covers them all."""
        session.events.register("before-send", self)

    def __call__(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse:
        op = event_name.removeprefix("before-send.")
        self.calls[op] += 1
        if op.startswith("dynamodb.") and op != "dynamodb.Query":
            status, headers, body = self._dynamodb(op.removeprefix("dynamodb."), request)
            headers.setdefault("Content-Length", str(len(body)))
            return AWSResponse(request.url, status, headers, _Body(body))
        answer = getattr(self, "_" + op.replace(".", "_").replace("-", "_"), None)
        if answer is None:
            raise AssertionError(f"bench: unexpected AWS call {op} {request.url}")
        status, headers, body = answer(request)
        headers.setdefault("Content-Length", str(len(body)))
        return AWSResponse(request.url, status, headers, _Body(body))

    # -- services --------------------------------------------------------------
    @staticmethod
    def _json(
        doc: Any, version: str = "1.0", crc: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        body = orjson.dumps(doc)
        headers = {
            "Content-Type": f"application/x-amz-json-{version}",
            "x-amzn-RequestId": f"{next(_REQUEST_IDS):032x}",
        }
        if crc:  # DynamoDB sends it and botocore verifies it
            headers["x-amz-crc32"] = str(zlib.crc32(body) & 0xFFFFFFFF)
        return 200, headers, body

    def _dynamodb_Query(self, request: AWSPreparedRequest) -> tuple[int, dict[str, str], bytes]:
        q = orjson.loads(_read_like_urllib3(request.body))
        assert q["ExpressionAttributeValues"][":pk"] == {"S": "rules"}, q
        n = len(self.rule_items)
        return self._json({"Items": self.rule_items, "Count": n, "ScannedCount": n}, crc=True)

    def _dynamodb(self, op: str, request: AWSPreparedRequest) -> tuple[int, dict[str, str], bytes]:
        """Everything but the rules Query: the in-memory store (state table, config items)."""
        q = orjson.loads(_read_like_urllib3(request.body))
        try:
            return self._json(self.ddb.call(op, q), crc=True)
        except ConditionFailed:
            _, headers, body = self._json(
                {
                    "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                    "message": "The conditional request failed",
                },
                crc=True,
            )
            return 400, headers, body
        except KeyError as e:
            raise AssertionError(f"bench: DynamoDB {op} not emulated ({e})") from e

    def _s3_PutObject(self, request: AWSPreparedRequest) -> tuple[int, dict[str, str], bytes]:
        """S3's answer, after checking the body's CRC32 against its header or trailer.
        Request ids are counted, not random: S3's are opaque, and a `uuid4` per call
        (~5 µs) would be the bench's cost in a 10-event invocation, not Sluice's."""
        wire = _read_like_urllib3(request.body)
        headers = request.headers  # botocore's HeadersDict: case-insensitive
        encoding = headers.get("Content-Encoding") or ""
        if isinstance(encoding, bytes):
            encoding = encoding.decode()
        if "aws-chunked" in encoding:
            payload, trailers = unchunk(wire)
            checksum = trailers.get("x-amz-checksum-crc32", "")
            crc = zlib.crc32(payload) & 0xFFFFFFFF
            want = base64.b64encode(crc.to_bytes(4, "big")).decode()
            assert checksum == want, f"bench: CRC32 trailer {checksum} != {want}"
        else:
            payload = wire
            crc = zlib.crc32(payload) & 0xFFFFFFFF
            checksum = headers.get("x-amz-checksum-crc32") or ""
            if isinstance(checksum, bytes):
                checksum = checksum.decode()
            if checksum:  # the prepared path's header (chalicelib/actions/s3put.py)
                want = base64.b64encode(crc.to_bytes(4, "big")).decode()
                assert checksum == want, f"bench: CRC32 header {checksum} != {want}"
                self.calls["s3.PutObject (prepared)"] += 1
        self.archive_bytes += len(payload)
        if self.keep_bodies:
            self.bodies.append((request.url, payload))
        n = next(_REQUEST_IDS)
        return (
            200,
            {
                # Real S3 sends the body's MD5; botocore does not check it on PutObject, and
                # an MD5 of a 60 KB body (~100 µs) would be the bench's cost, not Sluice's.
                "ETag": f'"{crc:08x}{len(payload):024x}"',
                "x-amz-request-id": f"{n:016X}",
                "x-amz-id-2": f"{n:032x}",
                "x-amz-server-side-encryption": "AES256",
                "x-amz-checksum-crc32": checksum,
            },
            b"",
        )

    def _sqs_SendMessage(self, request: AWSPreparedRequest) -> tuple[int, dict[str, str], bytes]:
        m = orjson.loads(_read_like_urllib3(request.body))
        md5 = hashlib.md5(m["MessageBody"].encode(), usedforsecurity=False).hexdigest()
        return self._json({"MD5OfMessageBody": md5, "MessageId": str(uuid.uuid4())})

    @property
    def published(self) -> list[dict[str, Any]]:
        """The SNS messages published so far, each as its form's fields."""
        from urllib.parse import parse_qs

        return [{k: v[0] for k, v in parse_qs(b.decode()).items()} for b in self._published]

    def _sns_Publish(self, request: AWSPreparedRequest) -> tuple[int, dict[str, str], bytes]:
        """SNS's answer; the form is kept as sent and read only when `published` is asked
        for. Message and request ids are counted: decoding every alert's form and three
        `uuid4`s (~0.15 ms a Publish) would be SNS's work charged to Sluice."""
        self._published.append(_read_like_urllib3(request.body))
        n = next(_REQUEST_IDS)
        request_id = str(uuid.UUID(int=n | 1 << 127))  # the header's and the body's, as SNS's
        body = (
            '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
            f"<PublishResult><MessageId>{uuid.UUID(int=n)}</MessageId></PublishResult>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId>"
            "</ResponseMetadata></PublishResponse>"
        ).encode()
        return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body

    def _secrets_manager_GetSecretValue(
        self, request: AWSPreparedRequest
    ) -> tuple[int, dict[str, str], bytes]:
        q = orjson.loads(_read_like_urllib3(request.body))
        name = q["SecretId"]
        return self._json(
            {
                "ARN": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf",
                "Name": name,
                "VersionId": str(uuid.uuid4()),
                "SecretString": orjson.dumps({"token": SLACK_TOKEN}).decode(),
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": 1764000000.0,
            },
            version="1.1",
        )


# -- Slack -----------------------------------------------------------------------
class SlackServer:
    """`chat.postMessage` on 127.0.0.1, answering like Slack; counts posts."""

    def __init__(self) -> None:
        owner = self
        self.posts: list[bytes] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                owner.posts.append(body)
                method = self.path.rsplit("/", 1)[-1]
                reply = orjson.dumps(
                    {
                        "ok": method == "chat.postMessage",
                        "channel": "C0BENCH0001",
                        "ts": "1764151621.000100",
                        "message": {"type": "message"},
                    }
                    if method == "chat.postMessage"
                    else {"ok": False, "error": "unknown_method"}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SlackServer:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


class LambdaContext:
    """What Lambda passes as `context` (the attributes Sluice reads)."""

    function_name = "sluice-dev-" + FUNCTION
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sluice-dev-{FUNCTION}"
    memory_limit_in_mb = 512
    log_group_name = f"/aws/lambda/sluice-dev-{FUNCTION}"
    log_stream_name = "2026/11/26/[$LATEST]0123456789abcdef0123456789abcdef"

    def __init__(self) -> None:
        # New per invocation: archive keys derive from it, so objects never collide.
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 300_000
