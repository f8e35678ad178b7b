"""A small in-memory DynamoDB, just what Sluice's runtime asks of it, with real semantics.

The alert gates (dedupe, throttle, thresholds) decide with conditional writes and
atomic counters, so a stub that answered "OK" to everything would let every
alert through and hide the cost of the suppressed path. This store keeps items
per (table, pk, sk) and evaluates the expressions the runtime writes:
UpdateExpression `SET a = :v, ...` / `ADD a :n` (numbers and sets) / `REMOVE a` /
`DELETE a :set` (with `#names`), and
ConditionExpression with attribute_exists / attribute_not_exists / contains /
begins_with, comparisons, AND / OR / NOT and parentheses (anything else fails
loudly). A failed condition answers HTTP 400 ConditionalCheckFailedException,
which botocore turns into the modelled exception.
Answers are dicts in DynamoDB's wire shape; `stubs.py` serialises them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

Item = dict[str, dict[str, Any]]
_TOKEN = re.compile(r"\s*(<>|<=|>=|[=<>(),]|[#:]?[A-Za-z_][A-Za-z0-9_.\-]*)")


class ConditionFailed(Exception):
    pass


def _num(av: dict[str, Any]) -> Any:
    if "N" in av:
        n = av["N"]
        return float(n) if any(c in n for c in ".eE") else int(n)
    return next(iter(av.values()))


@lru_cache(maxsize=256)
def _tokens(expr: str) -> tuple[str, ...]:
    """An expression's tokens, read once per expression (the runtime sends a handful)."""
    return tuple(t for t in _TOKEN.findall(expr) if t)


class _Cond:
    """Recursive descent over a ConditionExpression, evaluated against one item."""

    def __init__(self, expr: str, names: dict[str, str], values: Item, item: Item | None) -> None:
        self.toks = _tokens(expr)
        self.i = 0
        self.names, self.values, self.item = names, values, item or {}

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        t = self.toks[self.i]
        self.i += 1
        return t

    def path(self, t: str) -> str:
        return self.names.get(t, t)

    def operand(self, t: str) -> Any:
        if t.startswith(":"):
            return _num(self.values[t])
        av = self.item.get(self.path(t))
        return None if av is None else _num(av)

    def expr(self) -> bool:
        v = self.conj()
        while (self.peek() or "").upper() == "OR":
            self.take()
            v = self.conj() or v
        return v

    def conj(self) -> bool:
        v = self.unary()
        while (self.peek() or "").upper() == "AND":
            self.take()
            v = self.unary() and v
        return v

    def unary(self) -> bool:
        t = self.take()
        if t.upper() == "NOT":
            return not self.unary()
        if t == "(":
            v = self.expr()
            assert self.take() == ")"
            return v
        if t in ("contains", "begins_with"):
            assert self.take() == "("
            a = self.item.get(self.path(self.take()))
            assert self.take() == ","
            b = self.operand(self.take())
            assert self.take() == ")"
            if a is None:
                return False
            have = next(iter(a.values()))
            if t == "begins_with":
                return isinstance(have, str) and have.startswith(b)
            return b in have  # a substring of S, or a member of SS/NS/BS
        if t in ("attribute_exists", "attribute_not_exists"):
            assert self.take() == "("
            p = self.path(self.take())
            assert self.take() == ")"
            return (p in self.item) == (t == "attribute_exists")
        op = self.take()
        a, b = self.operand(t), self.operand(self.take())
        if a is None or b is None:
            return op == "<>" and a != b
        return {"=": a == b, "<>": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


@lru_cache(maxsize=256)
def _clauses(expr: str) -> tuple[tuple[str, str, str], ...]:
    """`SET a = :v, b = :w ADD c :n` -> ((clause, lhs, rhs), ...), read once per expression
    (rhs "" for REMOVE)."""
    out = []
    for clause, body in re.findall(
        r"(SET|ADD|REMOVE|DELETE)\s+(.*?)(?=\s+(?:SET|ADD|REMOVE|DELETE)\s|$)", expr, re.S
    ):
        for part in (p.strip() for p in body.split(",")):
            if clause == "SET":
                lhs, rhs = (x.strip() for x in part.split("=", 1))
            elif clause in ("ADD", "DELETE"):
                lhs, rhs = part.split()
            else:
                lhs, rhs = part, ""
            out.append((clause, lhs, rhs))
    return tuple(out)


def _update(item: Item, expr: str, names: dict[str, str], values: Item) -> set[str]:
    """Apply `SET a = :v, b = :w ADD c :n` to item; return the attribute names touched."""
    touched: set[str] = set()
    for clause, lhs, rhs in _clauses(expr):
        name = names.get(lhs, lhs)
        if clause == "SET":
            item[name] = values[rhs]
            touched.add(name)
        elif clause == "ADD":
            add = values[rhs]
            kind = next(iter(add))
            if kind in ("SS", "NS", "BS"):  # set union, first-seen order
                have = item.get(name, {kind: []})[kind]
                item[name] = {kind: list(dict.fromkeys([*have, *add[kind]]))}
            else:
                old = _num(item[name]) if name in item else 0
                item[name] = {"N": str(old + _num(add))}
            touched.add(name)
        elif clause == "DELETE":
            kind = next(iter(values[rhs]))
            gone = set(values[rhs][kind])
            left = [x for x in item.get(name, {kind: []})[kind] if x not in gone]
            if left:
                item[name] = {kind: left}
            else:
                item.pop(name, None)
            touched.add(name)
        else:
            item.pop(name, None)
    return touched


class MemoryDynamoDB:
    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[str, str], Item]] = {}

    def _key(self, key: Item) -> tuple[str, str]:
        return key["pk"]["S"], key.get("sk", {}).get("S", "")

    def _check(self, q: dict[str, Any], item: Item | None) -> None:
        expr = q.get("ConditionExpression")
        if not expr:
            return
        names = q.get("ExpressionAttributeNames", {})
        cond = _Cond(expr, names, q.get("ExpressionAttributeValues", {}), item)
        ok = cond.expr()
        # Anything left unparsed is an expression this store does not understand: fail
        # loudly (the bench's gates then see a dead-lettered alert), never guess.
        if cond.peek() is not None:
            raise KeyError(f"condition not understood: {expr!r}")
        if not ok:
            raise ConditionFailed

    @staticmethod
    def _project(item: Item, q: dict[str, Any]) -> Item:
        proj = q.get("ProjectionExpression")
        if not proj:
            return item
        names = q.get("ExpressionAttributeNames", {})
        keep = {names.get(p.strip(), p.strip()) for p in proj.split(",")}
        return {k: v for k, v in item.items() if k in keep}

    def put_item(self, q: dict[str, Any], table: dict[tuple[str, str], Item]) -> dict[str, Any]:
        k = self._key(q["Item"])
        old = table.get(k)
        self._check(q, old)
        table[k] = dict(q["Item"])
        return {"Attributes": old} if old and q.get("ReturnValues") == "ALL_OLD" else {}

    def get_item(self, q: dict[str, Any], table: dict[tuple[str, str], Item]) -> dict[str, Any]:
        item = table.get(self._key(q["Key"]))
        return {"Item": self._project(item, q)} if item else {}

    def delete_item(self, q: dict[str, Any], table: dict[tuple[str, str], Item]) -> dict[str, Any]:
        k = self._key(q["Key"])
        self._check(q, table.get(k))
        old = table.pop(k, None)
        return {"Attributes": old} if old and q.get("ReturnValues") == "ALL_OLD" else {}

    def update_item(self, q: dict[str, Any], table: dict[tuple[str, str], Item]) -> dict[str, Any]:
        k = self._key(q["Key"])
        old = table.get(k)
        self._check(q, old)
        item = dict(old) if old else dict(q["Key"])
        touched = _update(
            item,
            q.get("UpdateExpression", ""),
            q.get("ExpressionAttributeNames", {}),
            q.get("ExpressionAttributeValues", {}),
        )
        table[k] = item
        rv = q.get("ReturnValues", "NONE")
        if rv == "ALL_NEW":
            return {"Attributes": item}
        if rv == "UPDATED_NEW":
            return {"Attributes": {a: item[a] for a in touched if a in item}}
        if rv == "ALL_OLD" and old:
            return {"Attributes": old}
        return {}

    def call(self, op: str, q: dict[str, Any]) -> dict[str, Any]:
        """One operation; raises ConditionFailed, KeyError for what it does not know."""
        if op == "BatchGetItem":
            out: dict[str, list[Item]] = {}
            for name, spec in q["RequestItems"].items():
                t = self.tables.setdefault(name, {})
                out[name] = [
                    self._project(t[self._key(k)], spec) for k in spec["Keys"] if self._key(k) in t
                ]
            return {"Responses": out, "UnprocessedKeys": {}}
        if op == "BatchWriteItem":
            for name, reqs in q["RequestItems"].items():
                t = self.tables.setdefault(name, {})
                for r in reqs:
                    if "PutRequest" in r:
                        t[self._key(r["PutRequest"]["Item"])] = dict(r["PutRequest"]["Item"])
                    else:
                        t.pop(self._key(r["DeleteRequest"]["Key"]), None)
            return {"UnprocessedItems": {}}
        table = self.tables.setdefault(q["TableName"], {})
        return {
            "PutItem": self.put_item,
            "GetItem": self.get_item,
            "DeleteItem": self.delete_item,
            "UpdateItem": self.update_item,
        }[op](q, table)
