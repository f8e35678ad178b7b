"""AWS calls on a prepared path: learned from one botocore call, then built, signed and
sent without botocore's per-call pipeline.

A botocore call costs ~1 ms of CPU besides the network (parameter validation,
serialisation walking the model, endpoint rules, ~20 event hooks, SigV4 through
`email.message` headers, retry bookkeeping), several times what a 10-event invocation
spends on its events. Between a warm function's calls of one operation only the
parameters vary, so `PreparedClient` (a botocore client with the same methods):

* learns: an operation's first call goes through botocore, and a `before-send` hook
  keeps the request botocore built: its URL and the headers that do not vary between
  calls (User-Agent, X-Amz-Target, Content-Type, amz-sdk-request). The operation is
  prepared only if this module, given the same parameters and the same instant, builds
  the same request byte for byte, body, headers and SigV4 signature alike; else it
  stays on botocore for good.
* builds later calls itself: JSON protocol (DynamoDB) bodies as botocore's serialiser
  writes them (`json.dumps`, blobs in base64), query protocol (SNS) bodies by
  botocore's serialiser without re-validation; signs them with the client's own
  credentials (`sigv4`, the day's signing key cached), and sends them through the
  client's `before-send` hooks (moto, stubs, fault injection) or its HTTP session.
* answers as botocore does: a 200 is parsed by the client's own response parser (the
  dict botocore returns); a ConditionalCheckFailedException, which botocore never
  retries, is raised as botocore raises it (same class, same parsed response). Any
  other answer, or any error, falls back to the botocore call, which retries and raises
  exactly as before: the prepared path changes the cost, never the outcome (a retryable
  failure costs one attempt more than botocore alone would make).

Not carried over from botocore's pipeline: `before-call`/`after-call` hooks (a
`Stubber` answers in `before-call`, so a stubbed client never teaches an operation) and
the standard retry mode's quota refill on success.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

from chalicelib.environ import getenv
from chalicelib.records import record

# Headers botocore sets per call; this module computes them for each request.
PER_CALL = frozenset(
    {
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "amz-sdk-invocation-id",
        "content-length",
        "x-amzn-trace-id",
    }
)
# Headers that stay the same between calls of an operation: taken from the learned one.
STATIC = frozenset({"user-agent", "content-type", "x-amz-target", "amz-sdk-request"})
# Errors botocore raises without retrying, in any retry mode, that callers expect often
# (a conditional write refused): raised from the prepared answer instead of sent again.
FINAL_ERRORS = frozenset({"ConditionalCheckFailedException"})
# Shape types the JSON protocol writes as plain JSON (blobs as base64): an input of these
# only is serialised by `json.dumps` exactly as botocore's serialiser does.
_PLAIN_JSON = frozenset(
    {"structure", "list", "map", "string", "integer", "long", "boolean", "blob", "double", "float"}
)
_ALGORITHM = "AWS4-HMAC-SHA256"


def _blob(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"not plain JSON: {type(value).__name__}")  # botocore decides


# One encoder for every body. Without the circular-reference check (a dict of seen
# containers, kept up to date for each of them) a 25-item BatchWriteItem body takes
# ~30 µs instead of ~47: the output is the same, and a self-referencing input, which
# botocore cannot send either, fails with RecursionError instead of ValueError, so it
# falls back to botocore all the same.
_ENCODER = json.JSONEncoder(default=_blob, check_circular=False)


# What `quote_plus(text, safe="")` leaves as it is: ASCII letters, digits and "_.-~".
_FORM_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
_ESCAPE = [b"%%%02X" % i for i in range(256)]


def form_text(value: str) -> str:
    """`urllib.parse.quote_plus(value, safe="")`: in its UTF-8 bytes, each distinct byte
    that must be escaped is replaced in one pass (a message holds a dozen), "%" first so
    no escape is escaped again, the space last, after "+". quote_plus calls a function
    per byte: ~0.1 ms for an SNS alert's message."""
    data = value.encode()
    unsafe = set(data.translate(None, _FORM_SAFE))
    if unsafe:
        if 0x25 in unsafe:
            data = data.replace(b"%", b"%25")
        for byte in unsafe.difference((0x25, 0x20)):
            data = data.replace(bytes((byte,)), _ESCAPE[byte])
        if 0x20 in unsafe:
            data = data.replace(b" ", b"+")
    return data.decode("ascii")


def form_body(params: dict[str, Any]) -> str:
    """`urlencode(list(params.items()), doseq=True)` of a query-protocol body (text and
    integer values; anything else is left to `urlencode`)."""
    parts = []
    for key, value in params.items():
        kind = type(value)
        if type(key) is not str or (kind is not str and kind is not int):
            return urlencode(list(params.items()), doseq=True)
        parts.append(f"{form_text(key)}={form_text(value if kind is str else str(value))}")
    return "&".join(parts)


def uuid4_text() -> str:
    """`str(uuid.uuid4())`: 16 random bytes with the version and variant bits set, as
    text, without the UUID object (~1 µs instead of ~4 per call)."""
    n = int.from_bytes(os.urandom(16), "big")
    n = (n & ~(0xC000 << 48) | (0x8000 << 48)) & ~(0xF000 << 64) | (4 << 76)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def json_body(params: dict[str, Any]) -> bytes:
    """The JSON protocol's body, byte for byte as botocore's serialiser writes it for
    inputs of plain types (its `json.dumps` with default separators, blobs in base64)."""
    return _ENCODER.encode(params).encode()


def host_of(url: str) -> str:
    """The Host SigV4 signs: lowercase, without a default port or user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{port}"
    return host


_SHA256 = hashlib.sha256()  # copied for each hash: cheaper than a new one (OpenSSL 3's fetch)


def sha256_hex(data: bytes) -> str:
    """`hashlib.sha256(data).hexdigest()`."""
    h = _SHA256.copy()
    h.update(data)
    return h.hexdigest()


class _Hmac:
    """HMAC-SHA256 under one key, its inner and outer pads hashed once (RFC 2104): each
    message costs two hash copies instead of `hmac.new`'s key set-up."""

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:  # SHA-256's block
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self.inner = hashlib.sha256(key.translate(_IPAD))
        self.outer = hashlib.sha256(key.translate(_OPAD))

    def hexdigest(self, message: bytes) -> str:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class Signer:
    """AWS Signature Version 4, as botocore's SigV4Auth (and S3SigV4Auth, given the
    already-encoded path) computes it, with the signing key of each day cached."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str, str, str], _Hmac] = {}

    def _key(self, secret: str, day: str, region: str, service: str) -> _Hmac:
        found = self._keys.get((secret, day, region, service))
        if found is None:
            k = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
            for part in (region, service, "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            if len(self._keys) > 16:  # a new day, rotated credentials: start afresh
                self._keys.clear()
            found = self._keys[(secret, day, region, service)] = _Hmac(k)
        return found

    def authorization(
        self,
        credentials: Any,
        method: str,
        path: str,
        signed: dict[str, str],
        payload_hash: str,
        region: str,
        service: str,
        amz_date: str,
    ) -> str:
        """The Authorization header. `signed`: lowercase name -> value of every header
        signed (host included); `path`: the canonical (encoded) path; no query string."""
        names = sorted(signed)
        canonical = "".join([f"{n}:{' '.join(signed[n].split())}\n" for n in names])
        signed_names = ";".join(names)
        request = f"{method}\n{path}\n\n{canonical}\n{signed_names}\n{payload_hash}"
        day = amz_date[:8]
        scope = f"{day}/{region}/{service}/aws4_request"
        to_sign = f"{_ALGORITHM}\n{amz_date}\n{scope}\n{sha256_hex(request.encode())}"
        key = self._key(credentials.secret_key, day, region, service)
        signature = key.hexdigest(to_sign.encode())
        return (
            f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature}"
        )


def amz_date() -> str:
    """X-Amz-Date of now (`%Y%m%dT%H%M%SZ` in UTC), formatted once a second."""
    global _last_date
    second = int(time.time())
    if _last_date[0] != second:
        _last_date = (second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second)))
    return _last_date[1]


_last_date: tuple[int, str] = (-1, "")


def trace_header() -> str | None:
    """X-Amzn-Trace-Id as botocore adds it inside Lambda (recursion detection)."""
    trace = getenv("_X_AMZN_TRACE_ID")
    if trace and getenv("AWS_LAMBDA_FUNCTION_NAME") is not None:
        return quote(trace, safe="-=;:+&[]{}\"',")
    return None


def unsigned_headers() -> frozenset[str]:
    from botocore.auth import SIGNED_HEADERS_BLACKLIST

    return frozenset(SIGNED_HEADERS_BLACKLIST)


def usable(client: Any) -> bool:
    """A botocore client signing with SigV4 (a test double, or an unsigned or
    bearer-token client, keeps botocore's own path)."""
    signer = getattr(client, "_request_signer", None)
    return (
        signer is not None
        and getattr(signer, "_credentials", None) is not None
        and getattr(signer, "signature_version", None) in ("v4", "s3v4")
        and hasattr(client, "_endpoint")
        and hasattr(getattr(client, "meta", None), "events")
    )


def send(client: Any, service_id: str, operation: str, request: Any) -> Any:
    """Send a prepared request as botocore's endpoint does: the client's `before-send`
    handlers first (the first answer wins), else its HTTP session. The whole body is
    read, so the connection goes back to the pool."""
    responses = client.meta.events.emit(f"before-send.{service_id}.{operation}", request=request)
    response = next((r for _, r in responses if r is not None), None)
    if response is None:
        response = client._endpoint.http_session.send(request)
    _ = response.content
    return response


# botocore's case-insensitive header key of each header name sent so far (a handful: the
# same names on every request), made once instead of once per header per request.
_HEADER_KEYS: dict[str, Any] = {}
_MAX_HEADER_KEYS = 256
_headers_checked: bool | None = None  # whether `headers_dict` builds what HeadersDict does


def headers_dict(headers: dict[str, Any]) -> Any:
    """`botocore.awsrequest.HeadersDict(headers)`: the same items in the same order, the
    keys case-insensitive as botocore's, at a third of the cost (HeadersDict's
    constructor goes through MutableMapping.update and makes a key object per header)."""
    global _headers_checked
    from botocore.awsrequest import HeadersDict, _HeaderKey

    if _headers_checked is False:
        return HeadersDict(headers)
    keys = _HEADER_KEYS
    table: dict[Any, Any] = {}
    for name, value in headers.items():
        key = keys.get(name)
        if key is None:
            if len(keys) >= _MAX_HEADER_KEYS:
                keys.clear()
            key = keys[name] = _HeaderKey(name)
        table[key] = value
    out = HeadersDict.__new__(HeadersDict)  # its __init__ would only make an empty table
    out._dict = table
    if _headers_checked is None:  # once: botocore keeps its headers as it did
        reference = HeadersDict(headers)
        _headers_checked = type(getattr(reference, "_dict", None)) is dict and list(
            out.items()
        ) == list(reference.items())
        if not _headers_checked:
            return reference
    return out


@record(frozen=True)
class Learned:
    """What one operation's requests share: URL, canonical path, Host, signing scope and
    the static headers (in botocore's order, values as botocore sent them)."""

    __slots__ = ("after", "before", "headers", "host", "path", "region", "service", "signed", "url")

    url: Final[str]
    path: Final[str]
    host: Final[str]
    region: Final[str]
    service: Final[str]
    headers: Final[tuple[tuple[str, str], ...]]

    def __init__(
        self,
        url: str,
        path: str,
        host: str,
        region: str,
        service: str,
        headers: tuple[tuple[str, str], ...],
    ) -> None:
        self.url = url
        self.path = path
        self.host = host
        self.region = region
        self.service = service
        self.headers = headers
        # Derived once from `headers` for `_build` (not fields: not compared or shown):
        # the static headers botocore sends before the per-call ones, those it sends
        # after them (amz-sdk-request), and the signed ones with Host (lowercase names).
        late = {"amz-sdk-request"}
        unsigned = unsigned_headers()
        before = tuple((k, v) for k, v in headers if k.lower() not in late)
        self.before: Final = before
        self.after: Final = tuple((k, v.encode()) for k, v in headers if k.lower() in late)
        signed = tuple((k.lower(), v) for k, v in before if k.lower() not in unsigned)
        self.signed: Final = (*signed, ("host", host))


class PreparedClient:
    """A botocore client whose JSON- and query-protocol operations take the prepared path
    once learned; every other attribute is the client's own (`exceptions`, `meta`...)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        meta = client.meta
        self._model = meta.service_model
        self._protocol = self._model.protocol
        self._service_id = self._model.service_id.hyphenize()
        self._api = dict(meta.method_to_api_mapping)
        self._signer = Signer()
        self._learned: dict[str, Learned] = {}
        self._refused: set[str] = set()
        self._watch = threading.local()  # (operation, params) of a learning call
        meta.events.register(f"before-send.{self._service_id}", self._observe)

    def __getattr__(self, name: str) -> Any:
        client = self.__dict__.get("_client")
        if client is None:
            raise AttributeError(name)
        attr = getattr(client, name)
        operation = self._api.get(name)
        if operation is None or not callable(attr) or not self._preparable(operation):
            return attr

        def call(**params: Any) -> Any:
            return self.call(name, operation, params)

        self.__dict__[name] = call  # looked up once per name
        return call

    # -- which operations ---------------------------------------------------------------
    def _preparable(self, operation: str) -> bool:
        if self._protocol not in ("json", "query"):
            return False
        op = self._model.operation_model(operation)
        if (
            op.has_streaming_input
            or op.has_streaming_output
            or op.has_event_stream_output
            or op.endpoint  # a host prefix
            or op.http.get("method", "POST") != "POST"
        ):
            return False
        shape = op.input_shape
        return shape is None or self._protocol == "query" or _plain(shape, set())

    # -- learning -----------------------------------------------------------------------
    def _observe(self, request: Any, event_name: str = "", **_: Any) -> None:
        """`before-send` of botocore's calls: learn from a watched call's first attempt."""
        watch = getattr(self._watch, "call", None)
        if watch is None or not event_name.endswith("." + watch[0]):
            return
        self._watch.call = None
        operation, params = watch
        try:
            learned = self._learn(operation, params, request)
        except Exception:  # anything unexpected: this operation stays on botocore
            learned = None
        if learned is None:
            self._refused.add(operation)
        else:
            self._learned[operation] = learned

    def _learn(self, operation: str, params: dict[str, Any], request: Any) -> Learned | None:
        """The operation's Learned if this module builds the very request botocore sent."""
        url = str(request.url)
        if "?" in url or "#" in url:
            return None
        sent = {
            k: v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()
        }
        lower = {k.lower(): v for k, v in sent.items()}
        if not set(lower) <= STATIC | PER_CALL or "amz-sdk-request" not in lower:
            return None
        if not lower["amz-sdk-request"].startswith("attempt=1;"):
            return None
        auth = lower.get("authorization", "")
        if not auth.startswith(_ALGORITHM + " Credential="):
            return None
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            return None
        from botocore.utils import normalize_url_path

        path = quote(normalize_url_path(urlsplit(url).path), safe="/~")
        learned = Learned(
            url=url,
            path=path,
            host=host_of(url),
            region=scope[2],
            service=scope[3],
            headers=tuple((k, v) for k, v in sent.items() if k.lower() in STATIC),
        )
        body = request.body
        body = body.encode() if isinstance(body, str) else bytes(body or b"")
        ours_headers, ours_body = self._build(
            learned, operation, params, lower["x-amz-date"], lower.get("amz-sdk-invocation-id")
        )
        ours = {k: v.decode() if isinstance(v, bytes) else v for k, v in ours_headers.items()}
        return learned if ours == sent and ours_body == body else None

    # -- building -----------------------------------------------------------------------
    def _body(self, operation: str, params: dict[str, Any]) -> bytes:
        if self._protocol == "json":
            return json_body(params)
        serializer = self._client._serializer
        raw = getattr(serializer, "_serializer", serializer)  # without re-validation
        serialized = raw.serialize_to_request(params, self._model.operation_model(operation))
        body = serialized["body"]
        if isinstance(body, dict):
            return form_body(body).encode()
        return body if isinstance(body, bytes) else str(body).encode()

    def _build(
        self,
        learned: Learned,
        operation: str,
        params: dict[str, Any],
        date: str,
        invocation_id: str | None = None,
    ) -> tuple[dict[str, Any], bytes]:
        """(headers, body) of the request, as botocore's endpoint hands it to
        `before-send`: values as bytes, then Content-Length."""
        body = self._body(operation, params)
        credentials = self._client._request_signer._credentials.get_frozen_credentials()
        headers = dict(learned.before)
        signed = dict(learned.signed)
        trace = trace_header()
        if trace is not None:
            headers["X-Amzn-Trace-Id"] = trace  # never signed (botocore's list)
        headers["X-Amz-Date"] = signed["x-amz-date"] = date
        if credentials.token:
            headers["X-Amz-Security-Token"] = signed["x-amz-security-token"] = credentials.token
        headers["Authorization"] = self._signer.authorization(
            credentials,
            "POST",
            learned.path,
            signed,
            sha256_hex(body),
            learned.region,
            learned.service,
            date,
        )
        headers["amz-sdk-invocation-id"] = invocation_id or uuid4_text()
        out: dict[str, Any] = {k: v.encode() for k, v in headers.items()}
        out.update(learned.after)
        out["Content-Length"] = str(len(body))
        return out, body

    # -- calling ------------------------------------------------------------------------
    def call(self, method: str, operation: str, params: dict[str, Any]) -> Any:
        """`client.<method>(**params)`, on the prepared path when the operation is learned."""
        learned = self._learned.get(operation)
        if learned is None:
            return self._through_botocore(method, operation, params)
        try:
            from botocore.awsrequest import AWSPreparedRequest

            headers, body = self._build(learned, operation, params, amz_date())
            request = AWSPreparedRequest("POST", learned.url, headers_dict(headers), body, False)
            response = send(self._client, self._service_id, operation, request)
        except Exception:  # not sent, or no answer (a connection error): botocore decides
            return getattr(self._client, method)(**params)
        status = int(response.status_code)
        if status == 200 and (self._protocol != "json" or _crc_ok(response)):
            parsed = self._read(operation, response)
            if parsed is _UNSET:  # botocore's parser says what it makes of it
                parsed, _, _ = self._parse(operation, response)
            return _first_attempt(parsed)  # as botocore, a 200 it cannot parse raises
        if status == 400:
            try:
                error = self._final_error(operation, response)
            except Exception:  # unexpected: the refused request changed nothing
                error = None
            if error is not None:
                raise error
        return getattr(self._client, method)(**params)

    def _through_botocore(self, method: str, operation: str, params: dict[str, Any]) -> Any:
        if operation not in self._refused:
            self._watch.call = (operation, params)
        try:
            return getattr(self._client, method)(**params)
        finally:
            self._watch.call = None

    def _reader(self) -> JsonReader | QueryReader | None:
        """The answers' reader, for a client parsing with botocore's own JSONParser or
        QueryParser (not a subclass of either); None for any other."""
        reader = self.__dict__.get("_answer_reader", _UNSET)
        if reader is _UNSET:
            from botocore.parsers import JSONParser, QueryParser

            parser = self._client._response_parser
            kind = {JSONParser: JsonReader, QueryParser: QueryReader}.get(type(parser))
            reader = self.__dict__["_answer_reader"] = None if kind is None else kind(parser)
        return reader

    def _read(self, operation: str, response: Any) -> Any:
        """The answer as the reader reads it; _UNSET where botocore's parser must."""
        reader = self._reader()
        if reader is None:
            return _UNSET
        try:
            return reader.parse(self._model.operation_model(operation), response)
        except Exception:  # a union member this botocore does not know, a malformed answer
            return _UNSET

    def _parse(self, operation: str, response: Any) -> tuple[dict[str, Any], Any, Any]:
        """The answer as botocore's endpoint parses it: (parsed, response_dict, model)."""
        from botocore.endpoint import convert_to_response_dict

        op = self._model.operation_model(operation)
        response_dict = convert_to_response_dict(response, op)
        parsed = self._client._response_parser.parse(response_dict, op.output_shape)
        return parsed, response_dict, op

    def _final_error(self, operation: str, response: Any) -> Exception | None:
        """The exception botocore raises for an error it never retries; None for others."""
        parsed, response_dict, op = self._parse(operation, response)
        code = parsed.get("Error", {}).get("Code")
        if code not in FINAL_ERRORS:
            return None
        parser = self._client._response_parser
        self._client._endpoint._add_modeled_error_fields(response_dict, parsed, op, parser)
        error: Exception = self._client.exceptions.from_code(code)(
            _first_attempt(parsed), operation
        )
        return error


_UNSET: Any = object()


def _botocore_only(value: Any) -> Any:
    raise LookupError("read by botocore's parser")


class JsonReader:
    """What botocore's JSONParser makes of a successful JSON-protocol answer, by functions
    made once per output shape: a structure reads the members it has (a tagged union,
    DynamoDB's AttributeValue, its one member after the same checks), a map or list its
    entries, a blob or timestamp through the parser's own converters, anything else is
    the JSON value itself. botocore's parser asks each node for a handler by name and
    checks a union by copying it (~40 µs for an UpdateItem answer, here). Any exception
    leaves the answer to botocore's parser (tests/unit/test_prepared_reader.py compares both
    over generated answers of every output shape of the services Sluice calls)."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self._cells: dict[tuple[str, str], list[Any]] = {}

    def parse(self, operation: Any, response: Any) -> Any:
        """botocore's `parser.parse(convert_to_response_dict(response, operation),
        operation.output_shape)` for a 200 answer."""
        shape = operation.output_shape
        body = response.content
        if shape is None:
            parsed: Any = {}
        else:
            if not body:
                doc: Any = {}
            else:
                text = body.decode("utf-8")
                try:
                    doc = json.loads(text)
                except ValueError:
                    doc = {"message": text}
            convert = self._cell(shape)[0]
            parsed = doc if convert is None else convert(doc)
        headers = lower_headers(response.headers)
        if "x-amzn-requestid" in headers:
            parsed.setdefault("ResponseMetadata", {})["RequestId"] = headers["x-amzn-requestid"]
        if isinstance(parsed, dict):
            metadata = parsed.get("ResponseMetadata", {})
            metadata["HTTPStatusCode"] = response.status_code
            metadata["HTTPHeaders"] = headers
            parsed["ResponseMetadata"] = metadata
        return parsed

    def _cell(self, shape: Any) -> list[Any]:
        """[the converter of `shape`, None where the value is kept as it is], made once
        per shape; the cell exists before a structure's members are made, so a shape
        that holds itself (AttributeValue in a map of AttributeValues) refers to it."""
        key = (shape.type_name, shape.name)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = [None]
            cell[0] = self._make(shape)
        return cell

    def _make(self, shape: Any) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return None if shape.is_document_type else self._structure(shape)
        if kind == "map":
            return self._map(self._cell(shape.key), self._cell(shape.value))
        if kind == "list":
            return self._list(self._cell(shape.member))
        if kind == "blob":
            return self.parser._blob_parser
        if kind == "timestamp":
            return self.parser._timestamp_parser
        return None

    def _structure(self, shape: Any) -> Any:
        members = [
            (member.serialization.get("name", name), name, self._cell(member))
            for name, member in shape.members.items()
        ]
        if not shape.is_tagged_union:

            def convert(value: Any) -> Any:
                if value is None:
                    return None
                out = {}
                get = value.get
                for json_name, name, cell in members:
                    raw = get(json_name)
                    if raw is not None:
                        c = cell[0]
                        out[name] = raw if c is None else c(raw)
                return out

            return convert
        by_json = {json_name: (name, cell) for json_name, name, cell in members}
        if "__type" in by_json:
            return _botocore_only

        def union(value: Any) -> Any:
            if value is None:
                return None
            present = [k for k, v in value.items() if v is not None and k != "__type"]
            # Not one member, or one this botocore does not know: botocore's parser says
            # what it makes of it (its error, or its unknown-member answer and log line).
            found = by_json.get(present[0]) if len(present) == 1 else None
            if found is None:
                raise LookupError(present)
            name, cell = found
            raw = value[present[0]]
            c = cell[0]
            return {name: raw if c is None else c(raw)}

        return union

    @staticmethod
    def _map(keys: list[Any], values: list[Any]) -> Any:
        def convert(value: Any) -> Any:
            kc, vc = keys[0], values[0]
            if kc is None and vc is None:
                return {k: v for k, v in value.items()}
            out = {}
            for k, v in value.items():
                k = k if kc is None else kc(k)
                out[k] = v if vc is None else vc(v)
            return out

        return convert

    @staticmethod
    def _list(member: list[Any]) -> Any:
        def convert(value: Any) -> Any:
            c = member[0]
            if c is None:
                return [x for x in value]
            return [None if x is None else c(x) for x in value]

        return convert


def lower_headers(headers: Any) -> dict[str, Any]:
    """`botocore.utils.lowercase_dict(headers)` (the answer's `HTTPHeaders`): for
    botocore's HeadersDict, read from its table of keys that already hold their lower
    case (its own iteration makes each key's text and looks each value up again)."""
    from botocore.awsrequest import HeadersDict
    from botocore.utils import lowercase_dict

    table = getattr(headers, "_dict", None) if type(headers) is HeadersDict else None
    if type(table) is not dict:
        return lowercase_dict(headers)
    return {key._lower: value for key, value in table.items()}


class QueryReader:
    """What botocore's QueryParser makes of a successful query-protocol answer (SNS) whose
    output is a structure of text members (Publish: MessageId, SequenceNumber), with
    botocore's own XML parser and names: the members found under the result wrapper,
    then ResponseMetadata's children. Anything else (another output shape, a repeated
    element, XML botocore refuses) is left to botocore's parser: `parse` raises and the
    caller hands the answer over (tests/unit/test_prepared_reader.py compares both)."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        # output shape name -> its plan; None: not one this reader reads
        self._plans: dict[str, tuple[str | None, tuple[tuple[str, str], ...]] | None] = {}

    def parse(self, operation: Any, response: Any) -> Any:
        shape = operation.output_shape
        if shape is None:
            raise LookupError("no output shape")
        if shape.name not in self._plans:
            self._plans[shape.name] = self._plan(shape)
        plan = self._plans[shape.name]
        if plan is None:
            raise LookupError(f"{shape.name}: not a structure of text members")
        wrapper, members = plan
        parser = self.parser
        root = parser._parse_xml_string_to_dom(response.content)
        top = self._children(root)
        start = top[wrapper] if wrapper is not None else root
        found = self._children(start)
        parsed: dict[str, Any] = {}
        for name, xml_name in members:
            node = found.get(xml_name)
            if node is not None:
                text = node.text
                parsed[name] = "" if text is None else text
        meta = top.get("ResponseMetadata")
        metadata = {} if meta is None else {k: v.text for k, v in self._children(meta).items()}
        metadata["HTTPStatusCode"] = response.status_code
        metadata["HTTPHeaders"] = lower_headers(response.headers)
        parsed["ResponseMetadata"] = metadata
        return parsed

    def _children(self, node: Any) -> dict[str, Any]:
        """botocore's name -> node table of `node`'s children; a repeated name (which
        botocore reads as a list) raises."""
        tag = self.parser._node_tag
        out: dict[str, Any] = {}
        for child in node:
            key = tag(child)
            if key in out:
                raise LookupError(f"repeated element {key}")
            out[key] = child
        return out

    @staticmethod
    def _plan(shape: Any) -> tuple[str | None, tuple[tuple[str, str], ...]] | None:
        """(the result wrapper, (member name, element name) of each member) of a
        structure of plain text members; None for any other shape."""
        if (
            shape.type_name != "structure"
            or shape.is_tagged_union
            or shape.metadata.get("exception")
            or shape.serialization.get("eventstream")
        ):
            return None
        members = []
        for name, member in shape.members.items():
            s = member.serialization
            if (
                member.type_name != "string"
                or name == "ResponseMetadata"
                or s.get("location")
                or s.get("eventheader")
                or s.get("xmlAttribute")
            ):
                return None
            members.append((name, s.get("name") or name))
        return shape.serialization.get("resultWrapper"), tuple(members)


def _first_attempt(parsed: dict[str, Any]) -> dict[str, Any]:
    """What botocore's endpoint adds to an answer of its first attempt."""
    if "ResponseMetadata" in parsed:
        parsed["ResponseMetadata"]["RetryAttempts"] = 0
    return parsed


def _crc_ok(response: Any) -> bool:
    """DynamoDB's x-amz-crc32 of the body, when sent, matches (botocore checks it too)."""
    import zlib

    want = response.headers.get("x-amz-crc32")
    return want is None or int(want) == zlib.crc32(response.content) & 0xFFFFFFFF


def _plain(shape: Any, seen: set[str]) -> bool:
    """The shape and everything in it is written as plain JSON by botocore's serialiser."""
    if shape.name in seen:
        return True
    seen.add(shape.name)
    if shape.type_name not in _PLAIN_JSON or shape.serialization.get("jsonvalue"):
        return False
    if shape.type_name == "structure":
        if getattr(shape, "is_document_type", False):
            return False
        for name, member in shape.members.items():
            if member.serialization.get("name", name) != name:
                return False
            if member.metadata.get("idempotencyToken") or member.metadata.get("hostLabel"):
                return False
            if not _plain(member, seen):
                return False
        return True
    if shape.type_name == "list":
        return _plain(shape.member, seen)
    if shape.type_name == "map":
        return _plain(shape.key, seen) and _plain(shape.value, seen)
    return True


_ATTRIBUTE = "_sluice_prepared_client"


def prepared_client(client: Any) -> Any:
    """The client's PreparedClient, kept on the client itself (a warm function's clients
    live as long as it does); a client that is not a SigV4 botocore client, as it is."""
    found = getattr(client, _ATTRIBUTE, None)
    if isinstance(found, PreparedClient):
        return found
    if isinstance(client, PreparedClient) or not usable(client):
        return client
    try:
        found = PreparedClient(client)
    except Exception:  # a client unlike botocore's: its own path
        return client
    try:
        setattr(client, _ATTRIBUTE, found)
    except AttributeError:  # a client that takes no attributes: no reuse
        pass
    return found
