"""`java_header` gives what the token-splitting implementation it replaced gave, line for line.

The reference below is that implementation copied verbatim, with one intended difference
made explicit as its `is_pid` parameter: a Spring Boot pid is read only when it is 1 to 18
ASCII digits (`_ascii_pid`). The old test, `str.isdigit()`, accepts digits that `int()`
refuses (`²`) and digit strings too long for `int()` (over 4,300), so it raised on such a
line; and a pid of 19 digits or more is an integer orjson cannot encode. A word that is
not a pid stays a word, as any other word in that place did. Everything else -- keys,
their order, values, types, the None cases -- must be the same for every line: the
documented shapes, each variant of them, near misses, unicode digits, long lines, and
thousands of seeded random mutations of valid lines.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.parsers.lambda_runtime import java_header

RID = "6f8e2c1d-9b0a-4e7f-8a3b-5c6d7e8f9a0b"

# ---------------------------------------------------------------- the reference (verbatim)
LEVELS = frozenset("TRACE DEBUG INFO NOTICE WARN WARNING ERROR SEVERE FATAL CRITICAL".split())


def _uuid(s: str) -> bool:
    return len(s) == 36 and s[8] == s[13] == s[18] == s[23] == "-"


def _clock(s: str) -> bool:
    """`10:07:01`, `10:07:01.537`, `10:07:01,537`."""
    return len(s) >= 8 and s[2] == ":" and s[5] == ":" and s[:2].isdigit() and s[6:8].isdigit()


def _ascii_pid(s: str) -> bool:
    """The intended rule: 1 to 18 ASCII digits (fits a signed 64-bit integer)."""
    return len(s) <= 18 and s.isascii() and s.isdigit()


def ref_java_header(line: str, is_pid: Callable[[str], bool] = _ascii_pid) -> dict[str, Any] | None:
    """A JVM logger's header line: time, then within a few tokens a level, then the logger
    and ` - ` or ` : ` before the message. None unless it has that shape."""
    # The line must open with a date (`2026-`) or a clock (`10:`): every other line
    # (an access log's address, a number) is refused before any splitting.
    if not (line[2:3] == ":" or (line[4:5] == "-" and line[:4].isdigit())):
        return None
    first_line, nl, rest = line.partition("\n")
    tokens = first_line.split(" ", 5)  # time (1-2), up to 3 before the level, the rest
    i = 0
    if tokens[0][:4].isdigit() and tokens[0][4:5] == "-":  # a date
        if len(tokens) > 1 and _clock(tokens[1]):
            time = f"{tokens[0]}T{tokens[1].replace(',', '.')}"
            i = 2
        elif "T" in tokens[0]:
            time, i = tokens[0], 1
        else:
            return None
    elif _clock(tokens[0]):
        time, i = tokens[0], 1
    else:
        return None
    rec: dict[str, Any] = {"time": time}
    level = None
    # Between the time and the level: a request id, a [thread]; the pid after (Spring).
    for j in range(i, min(i + 3, len(tokens))):
        t = tokens[j]
        if t in LEVELS:
            level, i = t, j + 1
            break
        if _uuid(t):
            rec["request_id"] = t
        elif t.startswith("[") and t.endswith("]"):
            rec["thread"] = t[1:-1]
        elif t:
            return None
    if level is None:
        return None
    rec["level"] = level
    body = " ".join(tokens[i:]).lstrip(" ")
    rec["message"] = _ref_logger(body, rec, is_pid) + nl + rest
    return rec


def _ref_logger(body: str, rec: dict[str, Any], is_pid: Callable[[str], bool]) -> str:
    """`[thread] logger - message` or `pid --- [app] [thread] logger : message`: the logger
    (and thread, pid) into `rec`; the message returned. A body of another shape is the
    message whole."""
    dash, colon = body.find(" - "), body.find(" : ")
    cut = dash if colon < 0 or 0 <= dash < colon else colon
    if cut < 0:
        return body
    head = body[:cut]
    if "[ " in head:  # Spring pads the thread inside its brackets (`[           main]`)
        head = "[".join(p.lstrip(" ") for p in head.split("["))
    words = head.split()
    found: dict[str, Any] = {}
    if words and is_pid(words[0]) and words[1:2] == ["---"]:  # Spring Boot's pid
        found["pid"] = int(words[0])
        words = words[2:]
    names = []
    for w in words:
        if w.startswith("[") and w.endswith("]"):
            found["thread"] = w[1:-1]  # the last bracketed word: Spring writes [app] [thread]
        else:
            names.append(w)
    if len(names) != 1:
        return body
    rec.update(found)
    rec["logger"] = names[0]
    return body[cut + 3 :]


# ---------------------------------------------------------------- the cases
def same(line: str) -> None:
    want = ref_java_header(line)
    got = java_header(line)
    assert got == want, line
    if want is not None:
        assert got is not None
        assert list(got) == list(want), line  # key order
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()], line


SHAPES = [
    # log4j2, Lambda's pattern: date clock request-id level logger - message
    f"2026-11-26 10:07:01 {RID} ERROR Handler - payment failed",
    f"2026-11-26 10:07:01.537 {RID} INFO Handler - ok",
    f"2026-11-26 10:07:01,537 {RID} WARN c.e.Handler - slow",
    "2026-11-26 10:07:01 ERROR Handler - no request id",
    # logback default: clock [thread] level logger - message
    "10:07:01.537 [main] ERROR c.e.orders.Handler - payment failed",
    "10:07:01,537 [pool-1-thread-2] DEBUG c.e.orders.Handler - x",
    "10:07:01 [main] INFO c.e.Handler - short clock",
    "2026-11-26 10:07:01,537 WARN  [pool-1-thread-2] o.e.orders.Api - slow response 812 ms",
    "2026-11-26 10:07:00.030 WARN  [pool-3-thread-1] c.e.checkout-api.CouponService - order "
    "c35dc88e-24dc-5fd3-c06a-5e5c3cce0e26 warehouse coupon latency=136ms",
    # Spring Boot: ISO time level pid --- [app] [thread] logger : message
    "2026-11-26T10:07:01.537Z ERROR 8 --- [orders] [main] c.e.orders.Handler : payment failed",
    "2026-11-26T10:07:01.537Z  INFO 12345 --- [main] c.e.o.Handler : started",
    "2026-11-26 10:07:01.537  WARN 8 --- [           main] o.s.b.StartupInfoLogger"
    "                  : slow start",
    "2026-11-26T10:07:01.537+01:00 INFO 8 --- [main] X : offset",
    # separators: both, either order, adjacent, repeated
    "2026-11-26 10:07:01.537  WARN 8 --- [ main ] o.s.b.X : padded both sides",
    "2026-11-26 10:07:01.537  WARN 8 --- [  a b] o.s.b.X : two words padded",
    "10:07:01.537 [main] ERROR c.e.Handler - a : b",
    "10:07:01.537 [main] ERROR c.e.Handler : a - b",
    "10:07:01.537 [main] ERROR c.e.Handler : - b",
    "10:07:01.537 [main] ERROR c.e.Handler - : b",
    "10:07:01.537 [main] ERROR c.e.Handler  -  b",
    "10:07:01.537 [main] ERROR - b",
    "10:07:01.537 [main] ERROR  - b",
    "10:07:01.537 [main] ERROR a b - c",
    "10:07:01.537 [main] ERROR [t] - c",
    "10:07:01.537 [main] ERROR [t] [u] L - c",
    "10:07:01.537 [main] ERROR c.e.Handler -b",
    "10:07:01.537 [main] ERROR c.e.Handler - ",
    "10:07:01.537 [main] ERROR c.e.Handler -",
    "10:07:01.537 [main] ERROR c.e.Handler",
    "10:07:01.537 [main] ERROR",
    "10:07:01.537 [main] ERROR ",
    "10:07:01.537 ERROR",
    "2026-11-26T10:07:01Z ERROR",
    "2026-11-26T10:07:01Z ERROR\nnext",
    # multi-line messages
    "10:07:01.537 [main] ERROR c.e.Handler - boom\n\tat c.e.A.b(A.java:1)\n\tat c.e.C.d(C.java:2)",
    "10:07:01.537 [main] ERROR c.e.Handler\n - boom",
    "10:07:01.537 [main] ERROR\nc.e.Handler - boom",
    "10:07:01.537\n[main] ERROR c.e.Handler - boom",
    "2026-11-26\n10:07:01 ERROR X - y",
    "2026-11-26 10:07:01\nERROR X - y",
    "2026-11-26T10:07:01Z ERROR 8 --- [main] X : a\nb : c",
    "10:07:01.537 [main] ERROR c.e.Handler - boom\n",
    "10:07:01.537 [main] ERROR c.e.Handler - boom\r\n",
    # spaces and empty tokens
    "10:07:01.537  [main]  ERROR  c.e.Handler  -  boom  ",
    "10:07:01.537   ERROR x - y",
    "10:07:01.537    ERROR x - y",
    "10:07:01.537 [main]   ERROR x - y",
    "2026-11-26  10:07:01 ERROR x - y",
    "2026-11-26T10:07:01Z    ERROR x - y",
    "2026-11-26 10:07:01 " + " " * 10 + "ERROR x - y",
    "10:07:01.537 [main] ERROR" + " " * 40 + "x - y",
    "10:07:01.537 ",
    "10:07:01.537",
    "10:",
    "2026-",
    "2026-11-26",
    "2026-11-26 ",
    "2026-11-26T",
    "2026-11-26T ERROR",
    # tabs and other whitespace
    "10:07:01.537\t[main]\tERROR\tc.e.Handler - boom",
    "10:07:01.537 [main] ERROR c.e.Handler\t- boom",
    "10:07:01.537 [main] ERROR [main]\tc.e.Handler - boom",
    "10:07:01.537 [main] ERROR 8\t---\t[m]\tL : boom",
    "10:07:01.537 [main] ERROR 8\u3000---\u00a0[m]\x85L : boom",
    "10:07:01.537 [main] ERROR\tX - y",
    "10:07:01.537 [main]\tERROR X - y",
    # near misses
    "10:07:01.537 [main] c.e.Handler - no level",
    f"10:07:01.537 [a] [b] {RID} ERROR x - four before the level",
    "10:07:01.537 [a] [b] [c] ERROR x - three before the level",
    "10:07:01.537 [a] [b] [c] [d] ERROR x - four brackets",
    f"2026-11-26 10:07:01 {RID} [t] [u] ERROR x - y",
    f"2026-11-26 10:07:01 {RID} [t] ERROR x - y",
    f"2026-11-26 10:07:01 [t] {RID} ERROR x - y",
    f"2026-11-26 10:07:01 [t] {RID} [u] ERROR x - y",
    f"2026-11-26 10:07:01 {RID} {RID[::-1]} ERROR x - y",
    "1:07:01.537 [main] ERROR x - bad clock",
    "10:7:01.537 [main] ERROR x - bad clock",
    "10:07:1.537 [main] ERROR x - bad clock",
    "10-07-01.537 [main] ERROR x - bad clock",
    "ab:07:01 [main] ERROR x - letters",
    "10:07:ab [main] ERROR x - letters",
    "10:07:01 error x - lower case",
    "10:07:01 Error x - title case",
    "2026-11-26 payment failed",
    "2026-11-26 ERROR x - date without clock",
    "2026-11-26 10:07 ERROR x - short clock",
    "2026-11-26 10:07:01 payment failed",
    "2026-11-26 10:07:01 is when it broke",
    "2026-x1-26T10 ERROR x - y",
    "2026-11-26Tx ERROR x - y",
    "202-11-26T10:07:01Z ERROR x - y",
    "20261-1-26T10:07:01Z ERROR x - y",
    "12:00 lunch",
    "10:07:01 is when it broke",
    '203.0.113.10 - - [26/Nov/2026:10:07:01 +0000] "GET / HTTP/1.1" 200 5',
    "404 Not Found",
    "",
    " ",
    "\n",
    "1",
    "12",
    "12:",
    "1234-",
    " 2026-11-26 10:07:01 ERROR x - leading space",
    "\n10:07:01 ERROR x - leading newline",
    "10:07:01 [ERROR] x - bracketed level",
    "10:07:01 [] ERROR x - empty thread",
    "10:07:01 [ ERROR x - open bracket",
    "10:07:01 ] ERROR x - close bracket",
    "10:07:01 [[x]] ERROR x - nested",
    "10:07:01 ERROR [] - empty thread in body",
    "10:07:01 ERROR [] [] - two empty",
    "10:07:01 ERROR [a] [b] L - last bracket wins",
    "10:07:01 [h] ERROR [b] L - header thread then body thread",
    "10:07:01 ERROR x[  y] - inner padding",
    "10:07:01 ERROR [  y]x - trailing",
    "10:07:01 ERROR [ - y",
    "10:07:01 ERROR x[ - y",
    # Spring pids: ASCII, zero, padded, missing, unicode, too long
    "2026-11-26T10:07:01Z ERROR 0 --- [main] X : zero",
    "2026-11-26T10:07:01Z ERROR 007 --- [main] X : leading zeros",
    "2026-11-26T10:07:01Z ERROR --- [main] X : no pid",
    "2026-11-26T10:07:01Z ERROR 8 -- [main] X : two dashes",
    "2026-11-26T10:07:01Z ERROR 8 ---- [main] X : four dashes",
    "2026-11-26T10:07:01Z ERROR 8 --- X : no thread",
    "2026-11-26T10:07:01Z ERROR 8 --- : nothing",
    "2026-11-26T10:07:01Z ERROR 8 : pid alone",
    "2026-11-26T10:07:01Z ERROR -8 --- [main] X : negative",
    "2026-11-26T10:07:01Z ERROR 8.5 --- [main] X : decimal",
    "2026-11-26T10:07:01Z ERROR x8 --- [main] X : letter",
    "2026-11-26T10:07:01Z ERROR " + "9" * 18 + " --- [main] X : eighteen digits",
    "2026-11-26T10:07:01Z ERROR " + "9" * 19 + " --- [main] X : nineteen digits",
    "2026-11-26T10:07:01Z ERROR " + "1" * 5000 + " --- [main] X : 5000 digits",
    "2026-11-26T10:07:01Z ERROR ² --- [main] X : superscript",
    "2026-11-26T10:07:01Z ERROR 1² --- [main] X : superscript",
    "2026-11-26T10:07:01Z ERROR \u0668 --- [main] X : arabic-indic",
    "2026-11-26T10:07:01Z ERROR \uff18 --- [main] X : fullwidth",
    "2026-11-26T10:07:01Z ERROR ① --- [main] X : circled",
    # unicode digits in date and clock positions
    "²⁰²⁶-11-26 10:07:01 ERROR x - y",
    "\u0662\u0660\u0662\u0666-11-26 10:07:01 ERROR x - y",
    "2026-11-26 \u0661\u0660:\u0660\u0667:\u0660\u0661 ERROR x - y",
    "2026-11-26 ¹⁰:07:⁰¹ ERROR x - y",
    "\u0661\u0660:\u0660\u0667:\u0660\u0661.537 [main] ERROR x - y",
    "²²:07:01 [main] ERROR x - y",
    "10:07:²¹ [main] ERROR x - y",
    "\uff11\uff10:07:01 [main] ERROR x - y",
    "2026-11-26 10:07:01,\uff15\uff13\uff17 ERROR x - y",
    # commas in odd places
    "2026-1,-26 10:07:01,537 ERROR x - y",
    "2026-11-26T10:07:01,537Z ERROR x - y",
    "10:07:01,5,3,7 [main] ERROR x - y",
    # very long lines
    "10:07:01.537 [main] ERROR c.e.Handler - " + "x" * 100_000,
    "10:07:01.537 [main] ERROR " + "x" * 100_000 + " - y",
    "10:07:01.537 [main] ERROR " + "a " * 50_000 + "- y",
    "10:07:01.537 [main] ERROR " + " " * 100_000 + "x - y",
    "10:07:01.537 [main] ERROR c.e.Handler - y" + "\n\tat x" * 10_000,
    "2026-11-26 10:07:01 " + "[" * 100_000,
]


@pytest.mark.parametrize("line", SHAPES)
def test_each_shape_and_variant_reads_as_the_reference_read_it(line):
    """Each documented shape, variant and near miss gives the reference's record (keys,
    order, values, types) or its None."""
    same(line)


def test_the_module_docstring_shapes_are_read():
    """The shapes the module documents give a logger and a level, so the equivalence above
    is not an agreement on None."""
    for line in SHAPES[:13]:
        rec = java_header(line)
        assert rec is not None and "level" in rec and "logger" in rec, line


@pytest.mark.parametrize(
    "line, pid",
    [
        pytest.param("2026-11-26T10:07:01Z ERROR ² --- [m] X : y", None, id="superscript"),
        pytest.param("2026-11-26T10:07:01Z ERROR \u0668 --- [m] X : y", None, id="arabic-indic"),
        pytest.param("2026-11-26T10:07:01Z ERROR \uff18 --- [m] X : y", None, id="fullwidth"),
        pytest.param(
            "2026-11-26T10:07:01Z ERROR " + "1" * 5000 + " --- [m] X : y",
            None,
            id="beyond int() digits",
        ),
        pytest.param(
            "2026-11-26T10:07:01Z ERROR " + "9" * 19 + " --- [m] X : y", None, id="beyond 64 bits"
        ),
        pytest.param(
            "2026-11-26T10:07:01Z ERROR " + "9" * 18 + " --- [m] X : y",
            10**18 - 1,
            id="eighteen digits",
        ),
        pytest.param("2026-11-26T10:07:01Z ERROR 8 --- [m] X : y", 8, id="ascii"),
    ],
)
def test_a_pid_is_ascii_digits_and_a_line_never_raises(line, pid):
    """The one intended difference: a pid is 1-18 ASCII digits; any other word there
    leaves the body as the message (no logger), where the old code raised or kept it."""
    rec = java_header(line)
    assert rec is not None
    assert rec.get("pid") == pid
    assert ("logger" in rec) == (pid is not None)


@pytest.mark.parametrize(
    "line",
    [
        "2026-11-26T10:07:01Z ERROR ² --- [m] X : y",
        "2026-11-26T10:07:01Z ERROR " + "1" * 5000 + " --- [m] X : y",
    ],
)
def test_the_old_pid_test_raised(line):
    """The reference with the old pid test (`str.isdigit`) raises on these lines: the
    defect the intended difference removes."""
    with pytest.raises(ValueError):
        ref_java_header(line, is_pid=str.isdigit)


# ---------------------------------------------------------------- seeded mutations
ALPHABET = [
    " ", " ", " ", "-", ":", "[", "]", "\n", "\t", ",", ".", "T", "Z",
    "0", "1", "7", "9", "a", "x", "E", "ERROR", "INFO", "WARN", " - ", " : ", "---",
    "²", "\u0663", "\u3000", RID,
]  # fmt: skip


def mutations(seed: int, count: int) -> list[str]:
    """Valid lines with 1-4 random inserts, deletes or replaces from a small alphabet."""
    rng = random.Random(seed)
    bases = SHAPES[:13] + [s for s in SHAPES if len(s) < 200]
    out = []
    for _ in range(count):
        s = rng.choice(bases)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(3)
            k = rng.randrange(len(s) + 1)
            if op == 0:
                s = s[:k] + rng.choice(ALPHABET) + s[k:]
            elif op == 1:
                s = s[:k] + s[k + rng.randint(1, 3) :]
            else:
                s = s[:k] + rng.choice(ALPHABET) + s[k + 1 :]
        out.append(s)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_random_mutations_of_valid_lines_read_as_the_reference_read_them(seed):
    """Thousands of seeded mutations of valid lines (spaces, dashes, colons, brackets,
    newlines, digits of other scripts, levels, request ids) give the reference's output."""
    for line in mutations(seed, 2500):
        same(line)


def test_the_mutations_reach_every_outcome():
    """The generated lines include records with and without logger, pid, thread and
    request id, and None: the comparison covers every branch's output."""
    seen: set[str] = set()
    for line in mutations(0, 2500):
        rec = ref_java_header(line)
        if rec is None:
            seen.add("none")
            continue
        seen.update(k for k in ("logger", "pid", "thread", "request_id") if k in rec)
        if "logger" not in rec:
            seen.add("no logger")
    assert seen == {"none", "logger", "pid", "thread", "request_id", "no logger"}
