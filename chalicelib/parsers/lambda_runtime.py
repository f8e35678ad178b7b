"""Text lines of Lambda's managed runtimes (and the JVM loggers functions use).

Each runtime writes its own text format (AWS docs, "Logging ... functions" per runtime):
    Python   [ERROR]\\t2026-11-26T10:07:01.537Z\\t<request id>\\t<message>
    Node.js  2026-11-26T10:07:01.537Z\\t<request id>\\tERROR\\t<message>
    .NET     2026-11-26T10:07:01.537Z\\t<request id>\\tfail\\t<message>   (trce dbug info warn
             fail crit, the Microsoft.Extensions.Logging labels)
    Ruby     E, [2026-11-26T10:07:01.537123 #8] ERROR -- <request id>: <message>
    Java     log4j2 / logback pattern layouts, a header then the message:
             2026-11-26 10:07:01 <request id> ERROR Handler - <message>   (Lambda's log4j2)
             10:07:01.537 [main] ERROR c.e.orders.Handler - <message>        (logback default)
             2026-11-26T10:07:01.537Z ERROR 8 --- [main] c.e.o.Handler : <message>  (Spring)
    timeout  2026-11-26T10:07:04.012Z <request id> Task timed out after 3.00 seconds
Every record gets `level` (upper-case, one vocabulary), `time` as written, `request_id`
when the line has one, and `message`. Only string methods: a prefix test decides before
any splitting, and nothing here is a regex (log text is untrusted).
"""

from __future__ import annotations

from typing import Any

LEVELS = frozenset("TRACE DEBUG INFO NOTICE WARN WARNING ERROR SEVERE FATAL CRITICAL".split())
# .NET's labels (Amazon.Lambda.RuntimeSupport writes Microsoft.Extensions.Logging's).
_DOTNET = {
    "trce": "TRACE",
    "dbug": "DEBUG",
    "info": "INFO",
    "warn": "WARN",
    "fail": "ERROR",
    "crit": "CRITICAL",
}
_RUBY = {"D": "DEBUG", "I": "INFO", "W": "WARN", "E": "ERROR", "F": "FATAL", "A": "UNKNOWN"}
_DIGITS = frozenset("0123456789")
_THREE = (1, 2, 3)  # the words a JVM header may have between its time and its level


def parse_runtime_text(message: str) -> dict[str, Any] | None:
    """A runtime's text line -> fields, or None when it is none of them (cheap to say)."""
    c = message[:1]
    if c in _DIGITS:
        if len(message) > 20 and message[4] == "-" and message[10] == "T":
            rec = _tabbed(message) or _timed_out(message)
            if rec is not None:
                return rec
        return java_header(message)
    if c in _RUBY and message[1:4] == ", [":
        return _ruby(message)
    return None


def _tabbed(message: str) -> dict[str, Any] | None:
    """Node.js and .NET: `<ISO time>\\t<request id>\\t<level>\\t<message>`."""
    parts = message.split("\t", 3)
    if len(parts) != 4:
        return None
    time, request_id, label, text = parts
    level = label if label in LEVELS else _DOTNET.get(label)
    if level is None or " " in time:
        return None
    rec: dict[str, Any] = {"time": time, "level": level}
    if request_id and request_id != "undefined":  # Node.js outside an invocation
        rec["request_id"] = request_id
    rec["message"] = text
    return rec


def _timed_out(message: str) -> dict[str, Any] | None:
    """`<ISO time> <request id> Task timed out after 3.00 seconds` (written by Lambda)."""
    parts = message.split(" ", 2)
    if len(parts) == 3 and parts[2].startswith("Task timed out after "):
        return {
            "time": parts[0],
            "level": "ERROR",
            "request_id": parts[1],
            "lambda_event": "timeout",
            "message": parts[2],
        }
    return None


def _ruby(message: str) -> dict[str, Any] | None:
    """Ruby's Logger: `E, [<time> #<pid>] ERROR -- <progname>: <message>`; the Lambda
    examples log with the request id as progname."""
    close = message.find("] ", 4)
    sep = message.find(" -- ", close)
    if close < 0 or sep < 0:
        return None
    stamp, _, pid = message[4:close].partition(" #")
    level = message[close + 2 : sep].strip()
    if level not in LEVELS and level not in ("ANY", "UNKNOWN"):
        return None
    prog, colon, text = message[sep + 4 :].partition(": ")
    if not colon:
        return None
    rec: dict[str, Any] = {"time": stamp, "level": level}
    if _pid_like(pid):
        rec["pid"] = int(pid)
    if prog:
        rec["request_id" if _uuid(prog) else "progname"] = prog
    rec["message"] = text
    return rec


def _uuid(s: str) -> bool:
    return len(s) == 36 and s[8] == s[13] == s[18] == s[23] == "-"


def _pid_like(s: str) -> bool:
    """1 to 18 ASCII digits: an integer every JSON reader takes (64 bits). `isdigit()`
    alone admits digits `int()` refuses (`²`) and more than `int()` converts (4,300)."""
    return len(s) <= 18 and s.isascii() and s.isdigit()


def _clock(s: str) -> bool:
    """`10:07:01`, `10:07:01.537`, `10:07:01,537`."""
    return len(s) >= 8 and s[2] == ":" and s[5] == ":" and s[:2].isdigit() and s[6:8].isdigit()


def java_header(line: str) -> dict[str, Any] | None:
    """A JVM logger's header line: time, then within a few words a level, then the logger
    and ` - ` or ` : ` before the message. None unless it has that shape.

    One left-to-right scan of the first line with `str.find`, word by word (a word ends
    at a space): the time (`<date> <clock>`, an ISO time, or a clock), up to three words
    before the level (a request id, a `[thread]`, empty words of repeated spaces), the
    level; then `_logger` reads the words before the first ` - ` or ` : `. The message
    is the rest of the line from there, later lines included: nothing is split or joined.
    """
    # The line must open with a date (`2026-`) or a clock (`10:`): every other line
    # (an access log's address, a number) is refused before any scanning.
    date = line[4:5] == "-" and line[:4].isdigit()
    if not (date or line[2:3] == ":"):
        return None
    end = line.find("\n") if "\n" in line else -1  # most lines have one line: `in` is cheaper
    first = line if end < 0 else line[:end]  # its offsets are the line's
    sp = first.find(" ")
    if sp < 0:  # the time alone: no level
        return None
    pos = sp + 1
    if date:
        after = first.find(" ", pos)
        if after < 0:
            after = len(first)
        clock = first[pos:after]
        if _clock(clock):
            if "," in clock:
                clock = clock.replace(",", ".")
            time = f"{first[:sp]}T{clock}"
            pos = after + 1
        elif "T" in first[:sp]:  # an ISO time in one word
            time = first[:sp]
        else:
            return None
    else:
        time = first[:sp]
        if not _clock(time):
            return None
    rec: dict[str, Any] = {"time": time}
    # Between the time and the level: a request id, a [thread]; the pid after (Spring).
    for _ in _THREE:
        sp = first.find(" ", pos)
        word = first[pos:] if sp < 0 else first[pos:sp]
        if word in LEVELS:
            break
        if sp < 0:  # no words left
            return None
        pos = sp + 1
        if not word:  # spaces repeated (Spring pads the level: `  INFO`)
            continue
        if _uuid(word):
            rec["request_id"] = word
        elif word[0] == "[" and word[-1] == "]":
            rec["thread"] = word[1:-1]
        else:
            return None
    else:
        return None
    rec["level"] = word
    body = "" if sp < 0 else first[sp + 1 :].lstrip(" ")
    message = _logger(body, rec)
    rec["message"] = message if end < 0 else message + line[end:]
    return rec


def _logger(body: str, rec: dict[str, Any]) -> str:
    """`[thread] logger - message` or `pid --- [app] [thread] logger : message`: the logger
    (and thread, pid) into `rec`; the message returned. A body of another shape is the
    message whole."""
    cut = body.find(" - ")
    if cut < 0:
        cut = body.find(" : ")
        if cut < 0:
            return body
        head = body[:cut]
    else:
        head = body[:cut]
        if " :" in head:  # a ` : ` before the ` - ` comes first (it may end at the ` - `)
            colon = body.find(" : ", 0, cut + 2)
            if colon >= 0:
                cut = colon
                head = body[:cut]
    if "[ " in head:  # Spring pads the thread inside its brackets (`[           main]`)
        head = "[".join([p.lstrip(" ") for p in head.split("[")])
    words = head.split()
    pid = None
    if len(words) > 1 and words[1] == "---" and _pid_like(words[0]):  # Spring Boot's pid
        pid = int(words[0])
        words = words[2:]
    thread = logger = None
    for w in words:
        if w[0] == "[" and w[-1] == "]":  # (split's words are never empty)
            thread = w[1:-1]  # the last bracketed word: Spring writes [app] [thread]
        elif logger is None:
            logger = w
        else:  # two names: not a logger
            return body
    if logger is None:
        return body
    if pid is not None:
        rec["pid"] = pid
    if thread is not None:
        rec["thread"] = thread
    rec["logger"] = logger
    return body[cut + 3 :]
