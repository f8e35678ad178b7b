"""Reads of the process environment on the per-invocation path.

`os.environ.get` of a variable that is not set costs ~1 µs (the mapping raises
KeyError inside and catches it), and an invocation reads a few that usually are not
(POWERTOOLS_DEV, POWERTOOLS_METRICS_DISABLED, and _X_AMZN_TRACE_ID outside Lambda).
`getenv` reads the mapping's own table instead: the same answer, as `os.environ`
holds it at the moment of the call (set, changed or removed through `os.environ`, as
Lambda's runtime does for the trace id of each invocation).
"""

from __future__ import annotations

import os
from typing import Any


def getenv(name: str) -> str | None:
    """`os.environ.get(name)`."""
    env: Any = os.environ
    data = getattr(env, "_data", None)
    if type(data) is not dict:  # not the standard library's mapping (a test's stand-in)
        return env.get(name)
    try:
        raw = data.get(env.encodekey(name))
        return None if raw is None else env.decodevalue(raw)
    except Exception:  # a name the mapping refuses ("=", NUL): the mapping's own answer
        return env.get(name)


# Each tuple of names given to `any_set`, as the mapping's keys (a handful of tuples).
_ENCODED: dict[tuple[str, ...], frozenset[Any]] = {}


def any_set(names: tuple[str, ...]) -> bool:
    """`any(name in os.environ for name in names)`, in one set operation."""
    env: Any = os.environ
    data = getattr(env, "_data", None)
    if type(data) is not dict:
        return any(name in env for name in names)
    keys = _ENCODED.get(names)
    if keys is None:
        try:
            keys = frozenset(env.encodekey(name) for name in names)
        except Exception:  # a name the mapping refuses: the mapping's own answer
            return any(name in env for name in names)
        if len(_ENCODED) < 64:
            _ENCODED[names] = keys
    return not data.keys().isdisjoint(keys)
