"""Lambda function stand-ins on the local stack, so `sluice subscribe` works there.

`sluice subscribe` resolves `sluice-<stage>-cloudwatch_logs` with GetFunction and
CloudWatch Logs refuses a subscription to a function that does not exist. The
local stack runs the real handlers in process, so the functions in moto only
need to exist: each is a 200-byte zip (`def handler(event, context): return
None`) under one role, created by a background thread shortly after start so
`sluice local up` is not slower (about 0.1-0.4 s a function on moto).

moto would also *invoke* a subscribed function on every PutLogEvents, which
starts Docker; the stack delivers log events itself (`poller.LogsPoller`), so
`quiet_moto_delivery` turns moto's delivery into a no-op while a stack runs.
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.loopguard import FUNCTIONS

ROLE = "sluice-{stage}-local-stand-in"
RUNTIME = "python3.12"
_patch_lock = threading.Lock()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return None\n")
    return buf.getvalue()


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def create(
    clients: Any,
    stage: str,
    functions: tuple[str, ...] = FUNCTIONS,
    stop: threading.Event | None = None,
) -> list[str]:
    """Create `sluice-<stage>-<function>` for each function (idempotent); their ARNs.
    Returns early once `stop` is set (the stack stopping before they were all made)."""
    iam = clients.get("iam")
    name = ROLE.format(stage=stage)
    try:
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    except Exception as e:
        if _code(e) != "EntityAlreadyExists":
            raise
        role = iam.get_role(RoleName=name)["Role"]["Arn"]
    lam = clients.get("lambda")
    code = _zip()
    arns = []
    for fn in functions:
        if stop is not None and stop.is_set():
            break
        fname = f"sluice-{stage}-{fn}"
        try:
            arn = lam.create_function(
                FunctionName=fname,
                Runtime=RUNTIME,
                Role=role,
                Handler="app.handler",
                Code={"ZipFile": code},
                Description="local stack stand-in: the handler runs in `sluice local up`",
            )["FunctionArn"]
        except Exception as e:
            if _code(e) != "ResourceConflictException":
                raise
            arn = lam.get_function(FunctionName=fname)["Configuration"]["FunctionArn"]
        arns.append(str(arn))
    return arns


@contextmanager
def quiet_moto_delivery() -> Iterator[None]:
    """While the block runs, moto does not invoke Lambda destinations of subscriptions."""
    from moto.awslambda.models import LambdaBackend

    with _patch_lock:
        original = LambdaBackend.__dict__.get("send_log_event")
        LambdaBackend.send_log_event = _no_delivery  # type: ignore[method-assign]
    try:
        yield
    finally:
        with _patch_lock:
            if original is not None:
                LambdaBackend.send_log_event = original  # type: ignore[method-assign]


def _no_delivery(self: Any, *args: Any, **kwargs: Any) -> None:
    """The local stack's LogsPoller delivers log events to the handlers itself."""
