"""Evaluate the Terraform expressions Sluice's generated `*.tf.json` uses, offline.

A small evaluator for HCL's expression language, enough to compare the Terraform
output with the CloudFormation (infra/parity.py) for given variable values, without
an AWS account: string templates with nested `${...}`, references and indexes,
lists, objects, `for` expressions, `? :`, `== != < > <= >= && || !`, and the functions
the output calls (`length`, `contains`, `join`, `concat`, `split`, `merge`, `jsonencode`, `file`,
`filebase64sha256`, `lookup`). Anything else raises `HclError`, so the comparison can never
pass by skipping what it does not understand.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any


class HclError(ValueError):
    """An expression this evaluator does not accept, or a reference it cannot resolve."""


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, str | int | float):
        return str(v)
    raise HclError(f"cannot interpolate {type(v).__name__} into a string")


def _jsonencode(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "length": len,
    "contains": lambda seq, v: v in seq,
    "join": lambda sep, seq: sep.join(seq),
    "concat": lambda *seqs: [x for s in seqs for x in s],
    "split": lambda sep, text: text.split(sep),
    "lookup": lambda m, key, default: m.get(key, default),
    "merge": lambda *maps: {k: v for m in maps for k, v in m.items()},
    "jsonencode": _jsonencode,
    # Files are not read: a placeholder naming them is enough to compare.
    "file": lambda path: f"<file {path}>",
    "filebase64sha256": lambda path: f"<sha256 {path}>",
}


class _Parser:
    """Recursive descent over one expression's text, evaluating as it goes."""

    def __init__(self, text: str, scope: Mapping[str, Any]) -> None:
        self.s, self.i, self.scope = text, 0, scope

    # ------------------------------------------------------------ helpers
    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t\r\n":
            self.i += 1

    def peek(self, tok: str) -> bool:
        self.ws()
        return self.s.startswith(tok, self.i)

    def take(self, tok: str) -> bool:
        if self.peek(tok):
            self.i += len(tok)
            return True
        return False

    def expect(self, tok: str) -> None:
        if not self.take(tok):
            raise HclError(f"expected {tok!r} at {self.i} in {self.s!r}")

    def ident(self) -> str:
        self.ws()
        j = self.i
        while j < len(self.s) and (self.s[j].isalnum() or self.s[j] in "_-"):
            j += 1
        if j == self.i or self.s[self.i].isdigit():
            raise HclError(f"expected a name at {self.i} in {self.s!r}")
        name, self.i = self.s[self.i : j], j
        return name

    # ------------------------------------------------------------ grammar
    def expr(self) -> Any:
        cond = self.binary(0)
        if self.take("?"):
            yes = self.expr()
            self.expect(":")
            no = self.expr()
            return yes if cond else no
        return cond

    _LEVELS: tuple[tuple[tuple[str, Callable[[Any, Any], Any]], ...], ...] = (
        (("||", lambda a, b: a or b),),
        (("&&", lambda a, b: a and b),),
        (
            ("==", lambda a, b: a == b),
            ("!=", lambda a, b: a != b),
            (">=", lambda a, b: a >= b),
            ("<=", lambda a, b: a <= b),
            (">", lambda a, b: a > b),
            ("<", lambda a, b: a < b),
        ),
    )

    def binary(self, level: int) -> Any:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            for tok, op in self._LEVELS[level]:
                if self.take(tok):
                    left = op(left, self.binary(level + 1))
                    break
            else:
                return left

    def unary(self) -> Any:
        if self.peek("!") and not self.peek("!="):
            self.i += 1
            return not self.unary()
        return self.postfix(self.primary())

    def postfix(self, value: Any) -> Any:
        while True:
            if self.take("["):
                key = self.expr()
                self.expect("]")
                value = self.index(value, key)
            elif self.peek(".") and not self.peek(".."):
                self.i += 1
                value = self.index(value, self.ident())
            else:
                return value

    @staticmethod
    def index(value: Any, key: Any) -> Any:
        try:
            return value[key]
        except (KeyError, IndexError, TypeError) as e:
            raise HclError(f"no {key!r} in {value!r:.200}") from e

    def primary(self) -> Any:
        self.ws()
        if self.i >= len(self.s):
            raise HclError(f"unexpected end of {self.s!r}")
        c = self.s[self.i]
        if c == '"':
            self.i += 1
            return self.template('"')
        if c == "(":
            self.i += 1
            v = self.expr()
            self.expect(")")
            return v
        if c == "[":
            self.i += 1
            return self.list_or_for()
        if c == "{":
            self.i += 1
            return self.obj()
        if c.isdigit():
            j = self.i
            while j < len(self.s) and (self.s[j].isdigit() or self.s[j] == "."):
                j += 1
            text, self.i = self.s[self.i : j], j
            return float(text) if "." in text else int(text)
        name = self.ident()
        if name in ("true", "false"):
            return name == "true"
        if name == "null":
            return None
        if self.take("("):
            args = []
            while not self.take(")"):
                args.append(self.expr())
                self.take(",")
            if name not in FUNCTIONS:
                raise HclError(f"function {name}() is not supported")
            return FUNCTIONS[name](*args)
        if name not in self.scope:
            raise HclError(f"unknown reference {name!r}")
        return self.scope[name]

    def list_or_for(self) -> Any:
        if self.peek("for ") or self.peek("for\t"):
            self.i += 3
            var = self.ident()
            self.expect("in")
            seq = self.expr()
            self.expect(":")
            start, end, out, outer = self.i, None, [], self.scope
            for item in seq:
                self.scope, self.i = {**outer, var: item}, start
                out.append(self.expr())
                end = self.i
            self.scope = outer
            # Over an empty list the body is not evaluated (as in Terraform): skip it.
            self.i = self.skip(start) if end is None else end
            self.expect("]")
            return out
        items = []
        while not self.take("]"):
            items.append(self.expr())
            self.take(",")
        return items

    def obj(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while not self.take("}"):
            key = self.primary() if self.peek('"') else self.ident()
            if not (self.take("=") or self.take(":")):
                raise HclError(f"expected = in object at {self.i}")
            out[str(key)] = self.expr()
            self.take(",")
        return out

    def template(self, end: str) -> Any:
        """A string template up to `end`; a lone `${x}` keeps x's type."""
        parts: list[Any] = []
        buf: list[str] = []
        while True:
            if self.i >= len(self.s):
                if end:
                    raise HclError(f"unterminated string in {self.s!r}")
                break
            c = self.s[self.i]
            if end and c == end:
                self.i += 1
                break
            if c == "\\" and end:
                esc = self.s[self.i + 1]
                buf.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(esc, "\\" + esc))
                self.i += 2
            elif self.s.startswith("$${", self.i):
                buf.append("${")
                self.i += 3
            elif self.s.startswith("${", self.i):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                self.i += 2
                parts.append((self.expr(),))
                self.expect("}")
            elif self.s.startswith("%{", self.i):
                raise HclError("template directives (%{...}) are not supported")
            else:
                buf.append(c)
                self.i += 1
        if buf:
            parts.append("".join(buf))
        if len(parts) == 1 and isinstance(parts[0], tuple):
            return parts[0][0]
        return "".join(p if isinstance(p, str) else _show(p[0]) for p in parts)

    def skip(self, start: int) -> int:
        """The end of the expression starting at `start` (brackets and strings balanced)."""
        depth, j, quote = 0, start, False
        while j < len(self.s):
            c = self.s[j]
            if c == '"' and self.s[j - 1] != "\\":
                quote = not quote
            elif not quote and c in "[({":
                depth += 1
            elif not quote and c in "])}":
                if depth == 0:
                    return j
                depth -= 1
            j += 1
        raise HclError(f"unterminated expression in {self.s!r}")


def template(text: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate one string of a `*.tf.json` file (a template: text and `${...}`)."""
    p = _Parser(text, scope)
    return p.template("")


def evaluate(value: Any, scope: Mapping[str, Any], skip: frozenset[str] = frozenset()) -> Any:
    """Every string inside `value` evaluated as a template; keys in `skip` left alone."""
    if isinstance(value, str):
        return template(value, scope)
    if isinstance(value, list):
        return [evaluate(v, scope, skip) for v in value]
    if isinstance(value, dict):
        return {k: v if k in skip else evaluate(v, scope, skip) for k, v in value.items()}
    return value
