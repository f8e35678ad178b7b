"""S3 PutObject on the prepared path: the archive's one request per object, without
botocore's per-call pipeline.

A botocore `put_object` costs ~1 ms of CPU (parameter validation, serialisation,
endpoint rules, ~20 event hooks, the aws-chunked CRC32 body, response parsing), which
is most of what a 10-event invocation costs. What varies between the archive's puts
is only the key and the body, so the first put to a bucket goes through botocore as
usual and teaches this module the URL prefix and signing context botocore resolved
for it; later puts build the request directly and sign it with the client's own
signer (SigV4 with the body's SHA-256, a CRC32 header S3 checks), then send it
through the client's own `before-send` hooks (moto, the bench, stubs) or its HTTP
session. Any answer but 200, or any error, falls back to `put_object`, which retries
and raises exactly as before: the prepared path can only be faster, never different
in outcome.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any
from urllib.parse import quote

_OPERATION = "PutObject"


def _checksum(body: bytes) -> str:
    return base64.b64encode((zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")).decode()


def _encoded_key(key: str) -> str:
    """The key as botocore's REST serialiser writes it in the path (`{Key+}`)."""
    return quote(key, safe="/~")


class PreparedPut:
    """PutObject for one client: `put(bucket, key, body, headers)`."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        # bucket -> (URL prefix before the key, signing context botocore resolved)
        self._learned: dict[str, tuple[str, dict[str, Any]]] = {}
        self._watching: tuple[str, str] | None = None  # (bucket, key) of a learning put
        meta = getattr(s3, "meta", None)
        self._usable = all(hasattr(s3, a) for a in ("_request_signer", "_endpoint")) and hasattr(
            meta, "events"
        )
        if self._usable:
            s3.meta.events.register(f"request-created.s3.{_OPERATION}", self._learn)

    def _learn(self, request: Any = None, **_: Any) -> None:
        watching = self._watching
        if watching is None or request is None:
            return
        bucket, key = watching
        url = str(request.url).split("?", 1)[0]
        tail = "/" + _encoded_key(key)
        if not url.endswith(tail):
            return
        context = getattr(request, "context", {}) or {}
        keep = {k: context[k] for k in ("signing", "auth_type") if k in context}
        self._learned[bucket] = (url[: -len(tail)], keep)

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

    def _fast(
        self,
        learned: tuple[str, dict[str, Any]],
        key: str,
        body: bytes,
        content_type: str,
        content_encoding: str,
    ) -> bool:
        """The prepared request; True if S3 (or the client's hooks) answered 200."""
        from botocore.awsrequest import AWSRequest

        prefix, context = learned
        try:
            request = AWSRequest(
                method="PUT",
                url=prefix + "/" + _encoded_key(key),
                data=body,
                headers={
                    "Content-Type": content_type,
                    "Content-Encoding": content_encoding,
                    "x-amz-checksum-crc32": _checksum(body),
                },
            )
            request.context = {**context, "client_config": self.s3.meta.config}
            self.s3._request_signer.sign(_OPERATION, request)
            prepared = request.prepare()
            events = self.s3.meta.events
            _, response = events.emit_until_response(
                f"before-send.s3.{_OPERATION}", request=prepared
            )
            if response is None:
                response = self.s3._endpoint.http_session.send(prepared)
            _ = response.content  # read to the end: the connection goes back to the pool
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
