"""S3 PutObject on the prepared path: the archive's one request per object, without
botocore's per-call pipeline.

A botocore `put_object` costs ~1 ms of CPU (parameter validation, serialisation,
endpoint rules, ~20 event hooks, the aws-chunked CRC32 body, SigV4 through
`email.message` headers, response parsing), most of what a 10-event invocation costs.
What varies between the archive's puts is only the key and the body, so the first put
to a bucket goes through botocore as usual and teaches this module what botocore
resolved for it (the URL before the key, the signing scope, its User-Agent); later puts
build the request directly and sign it with the client's credentials (SigV4 with a
CRC32 header S3 checks: `chalicelib.actions.prepared.Signer`; over HTTPS the body is left
out of the signature, UNSIGNED-PAYLOAD, as botocore's signer decides for such a put and as
botocore's own puts do, so it is not hashed with SHA-256; over plain HTTP it is signed),
then send it through the client's own `before-send` hooks (moto, the bench, stubs) or
its HTTP session. Any answer but 200, or any error, falls back to `put_object`, which
retries and raises exactly as before: the prepared path can only be faster, never
different in outcome.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any, Final
from urllib.parse import quote

from chalicelib.actions.prepared import (
    Signer,
    amz_date,
    headers_dict,
    host_of,
    send,
    sha256_hex,
    trace_header,
    usable,
)
from chalicelib.records import record

_OPERATION = "PutObject"
_CHECKSUM = "x-amz-checksum-crc32"
# The learned request's headers that stay the same between puts (the others are this
# module's: content type and encoding, checksum, date, token, signature).
_STATIC = ("user-agent", "amz-sdk-request")


def _checksum(body: bytes) -> str:
    return base64.b64encode((zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")).decode()


# What `quote(key, safe="/~")` leaves as it is in ASCII text: letters, digits, "_.-~/".
_ASCII_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~/"


def _encoded_key(key: str) -> str:
    """The key as botocore's REST serialiser writes it in the path (`{Key+}`).

    ASCII keys are quoted by replacing each distinct character that needs it (an
    archive key has one, "="), "%" first so that no escape is escaped again: a few
    `str.replace` calls instead of urllib's loop over every character."""
    if key.isascii():
        unsafe = set(key.encode().translate(None, _ASCII_SAFE).decode())
        if "%" in unsafe:
            unsafe.discard("%")
            key = key.replace("%", "%25")
        for c in unsafe:
            key = key.replace(c, f"%{ord(c):02X}")
        return key
    return quote(key, safe="/~")


@record(frozen=True)
class _Bucket:
    """What puts to one bucket share."""

    __slots__ = ("headers", "host", "path", "prefix", "region", "service", "unsigned")

    prefix: Final[str]  # the URL before "/<key>"
    path: Final[str]  # the URL's path before "/<key>" (S3 signs the path as sent)
    host: Final[str]
    region: Final[str]
    service: Final[str]
    headers: Final[tuple[tuple[str, str], ...]]  # User-Agent, amz-sdk-request as botocore sent them
    unsigned: Final[bool]  # the body is not part of the signature (HTTPS, as botocore decides)

    def __init__(
        self,
        prefix: str,
        path: str,
        host: str,
        region: str,
        service: str,
        headers: tuple[tuple[str, str], ...],
        unsigned: bool,
    ) -> None:
        self.prefix = prefix
        self.path = path
        self.host = host
        self.region = region
        self.service = service
        self.headers = headers
        self.unsigned = unsigned


_UNSIGNED = "UNSIGNED-PAYLOAD"


def _unsigned_payload(s3: Any, url: str) -> bool:
    """Whether botocore's S3 signer leaves out of the signature the body of a PutObject to
    `url` whose CRC32 is in a header, as the prepared put's is: over HTTPS, unless the
    client's `payload_signing_enabled` says otherwise (TLS and the checksum S3 verifies
    protect the body; botocore's own puts send it unsigned too, checksum in a trailer).
    Asked of botocore's signer once per bucket; False (signed) if it cannot say."""
    try:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        probe = AWSRequest(method="PUT", url=url, data=b"", headers={_CHECKSUM: "AAAAAA=="})
        probe.context = {
            "client_config": s3.meta.config,
            "has_streaming_input": True,  # PutObject's Body
            "checksum": {"request_algorithm": {"in": "header", "name": _CHECKSUM}},
        }
        return bool(S3SigV4Auth(None, "s3", "us-east-1").payload(probe) == _UNSIGNED)
    except Exception:
        return False


class PreparedPut:
    """PutObject for one client: `put(bucket, key, body, headers)`."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self._learned: dict[str, _Bucket] = {}
        self._watching: tuple[str, str] | None = None  # (bucket, key) of a learning put
        self._signer = Signer()
        self._usable = usable(s3)
        if self._usable:
            s3.meta.events.register(f"before-send.s3.{_OPERATION}", self._learn)

    def _learn(self, request: Any = None, **_: Any) -> None:
        watching = self._watching
        if watching is None or request is None:
            return
        self._watching = None
        bucket, key = watching
        url = str(request.url).split("?", 1)[0]
        tail = "/" + _encoded_key(key)
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else str(v)
            for k, v in request.headers.items()
        }
        auth = headers.get("authorization", "")
        scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
        if not url.endswith(tail) or not auth.startswith("AWS4-HMAC-SHA256 ") or len(scope) != 5:
            return
        if not headers.get("amz-sdk-request", "").startswith("attempt=1;"):
            return
        prefix = url[: -len(tail)]
        self._learned[bucket] = _Bucket(
            prefix=prefix,
            path=prefix.split("://", 1)[-1].partition("/")[2],
            host=host_of(url),
            region=scope[2],
            service=scope[3],
            headers=tuple(
                (k.decode() if isinstance(k, bytes) else str(k), headers[str(k).lower()])
                for k in request.headers
                if str(k).lower() in _STATIC
            ),
            unsigned=_unsigned_payload(self.s3, url),
        )

    def put(
        self, bucket: str, key: str, body: bytes, content_type: str, content_encoding: str
    ) -> None:
        """Write one object; raises what botocore's `put_object` raises."""
        learned = self._learned.get(bucket) if self._usable else None
        if learned is not None and self._fast(learned, key, body, content_type, content_encoding):
            return
        self._watching = (bucket, key) if self._usable else None
        try:
            self.s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ContentEncoding=content_encoding,
            )
        finally:
            self._watching = None

    def request(
        self,
        learned: _Bucket,
        key: str,
        body: bytes,
        content_type: str,
        content_encoding: str,
        date: str,
    ) -> tuple[str, dict[str, str]]:
        """(URL, headers) of the prepared put, signed as botocore's S3SigV4Auth signs it."""
        encoded = _encoded_key(key)
        credentials = self.s3._request_signer._credentials.get_frozen_credentials()
        payload_hash = _UNSIGNED if learned.unsigned else sha256_hex(body)
        checksum = _checksum(body)
        token = credentials.token
        signed = {
            "content-type": content_type,
            "content-encoding": content_encoding,
            _CHECKSUM: checksum,
            "x-amz-date": date,
            "host": learned.host,
            "x-amz-content-sha256": payload_hash,
        }
        headers = {
            "Content-Type": content_type,
            "Content-Encoding": content_encoding,
            "x-amz-checksum-crc32": checksum,
            "X-Amz-Date": date,
        }
        if token:
            headers["X-Amz-Security-Token"] = signed["x-amz-security-token"] = token
        headers["X-Amz-Content-SHA256"] = payload_hash
        headers["Authorization"] = self._signer.authorization(
            credentials,
            "PUT",
            f"/{learned.path}/{encoded}" if learned.path else f"/{encoded}",
            signed,
            payload_hash,
            learned.region,
            learned.service,
            date,
        )
        trace = trace_header()
        if trace is not None:
            headers["X-Amzn-Trace-Id"] = trace  # not signed, as botocore does
        headers.update(learned.headers)
        headers["Content-Length"] = str(len(body))
        return f"{learned.prefix}/{encoded}", headers

    def _fast(
        self,
        learned: _Bucket,
        key: str,
        body: bytes,
        content_type: str,
        content_encoding: str,
    ) -> bool:
        """The prepared request; True if S3 (or the client's hooks) answered 200."""
        try:
            from botocore.awsrequest import AWSPreparedRequest

            url, headers = self.request(
                learned, key, body, content_type, content_encoding, amz_date()
            )
            prepared = AWSPreparedRequest("PUT", url, headers_dict(headers), body, False)
            response = send(self.s3, "s3", _OPERATION, prepared)
            return int(response.status_code) == 200
        except Exception:  # anything unexpected: botocore's own path decides
            return False


_ATTRIBUTE = "_sluice_prepared_put"


def prepared_put(s3: Any) -> PreparedPut:
    """The PreparedPut of a client, kept on the client itself (a warm function's clients
    live as long as it does; a client dropped takes it along, a plain reference cycle)."""
    found = getattr(s3, _ATTRIBUTE, None)
    if not isinstance(found, PreparedPut):
        found = PreparedPut(s3)
        try:
            setattr(s3, _ATTRIBUTE, found)
        except AttributeError:  # a client that takes no attributes: no reuse
            pass
    return found
