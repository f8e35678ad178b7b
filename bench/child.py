"""A fresh function instance: import `app`, handle one payload, report, exit.

    python bench/child.py RULES.json EVENT.json OUT.json

Run by `run.py` for cold start (a one-event payload) and peak RSS (a
10,000-event payload). The process is what Lambda's runtime does on a cold
start, minus the socket: it reads the event JSON, imports the handler module
and calls it; AWS calls are answered by a `before-send` hook added to botocore's
built-in handlers, which every session registers when it is created and every
client copies, so the runtime builds its session and clients lazily exactly as it
does on AWS (and imports boto3 only if it does so itself).

Peak RSS is `ru_maxrss`. On Linux that value survives `exec` (the kernel
keeps the old image's high-water mark in the signal struct), so a child
spawned straight from the bench would report the bench's own peak; `run.py`
therefore starts this script from a forked `sh`, whose fork starts a fresh
count. `/proc/self/status` VmHWM is reported too, as a cross-check.

Times are `time.perf_counter()` values, i.e. CLOCK_MONOTONIC on Linux, shared
with the parent, so the parent can measure from before `exec` to the
handler's return. The process ends with `os._exit` right after writing the
result, so its wall time and "start to handler return" differ only by the
write (interpreter teardown, ~10-30 ms with boto3 loaded, is not counted:
Lambda freezes the instance, it does not tear it down).
"""

from __future__ import annotations

import time

T_MAIN = time.perf_counter()  # after interpreter init and `site`, before any import

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


def _vm_hwm_kb() -> int:
    """This process image's own peak RSS (Linux), to cross-check ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def main() -> None:
    rules_path, event_path, out_path = sys.argv[1:4]
    import botocore.handlers
    from stubs import AwsAnswers, LambdaContext

    with open(rules_path, "rb") as f:
        answers = AwsAnswers(json.load(f))
    # Every botocore session registers the built-in handlers when it is made: the
    # runtime's own session (botocore's or boto3's) answers from here.
    botocore.handlers.BUILTIN_HANDLERS.append(("before-send", answers))
    t_hook = time.perf_counter()

    with open(event_path, "rb") as f:  # the runtime client's json.loads of the event
        event = json.load(f)
    t_event = time.perf_counter()

    import app

    t_import = time.perf_counter()
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = app.cloudwatch_logs(event, LambdaContext())
    t_return = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu_ms = (ru.ru_utime + ru.ru_stime) * 1000
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm_kb = _vm_hwm_kb()

    out = {
        "t_main": T_MAIN,
        "t_hook": t_hook,
        "t_event": t_event,
        "t_import": t_import,
        "t_return": t_return,
        "rss_before_kb": rss_before_kb,
        "rss_kb": rss_kb,
        "cpu_ms": cpu_ms,
        "hwm_kb": hwm_kb,
        "result": result,
        "calls": dict(answers.calls),
        "archive_bytes": answers.archive_bytes,
    }
    with open(out_path, "w") as f:
        json.dump(out, f)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
