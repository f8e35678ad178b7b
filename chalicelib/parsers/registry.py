"""The parser registry. A parser turns one text into record fields and never raises:
on failure it returns `{"message": text, "parse_error": "<format>: <reason>"}`.

Parsers with options (regex pattern, CSV columns) register a factory that takes
the validated options and returns the parser, so per-rule work (compiling a
pattern) happens once per rule set, not per event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from chalicelib.options import Option

Parser = Callable[[str], dict[str, Any]]
Factory = Callable[[dict[str, Any]], Parser]


class ParserSpec:
    """A registered parser, read-only. A plain class: a frozen dataclass costs ~1 ms to
    create on a cold start and its generated methods are not used (README, "Cold start")."""

    __slots__ = ("description", "factory", "name", "options")

    def __init__(
        self,
        name: str,
        factory: Factory,
        description: str,
        options: dict[str, Option] | None = None,
    ) -> None:
        self.name: Final = name
        self.factory: Final = factory
        self.description: Final = description
        self.options: Final[dict[str, Option]] = {} if options is None else options


_registry: dict[str, ParserSpec] = {}


def register(
    name: str, *, description: str, options: dict[str, Option] | None = None
) -> Callable[[Factory], Factory]:
    """Register a factory `opts -> parser` under `name`."""

    def deco(factory: Factory) -> Factory:
        if name in _registry:
            raise ValueError(f"parser {name!r} registered twice")
        _registry[name] = ParserSpec(name, factory, description, options or {})
        return factory

    return deco


def simple(name: str, *, description: str) -> Callable[[Parser], Parser]:
    """Register a parser without options."""

    def deco(fn: Parser) -> Parser:
        register(name, description=description)(lambda _opts: fn)
        return fn

    return deco


def failed(text: str, fmt: str, reason: str) -> dict[str, Any]:
    """The record of a text a parser could not parse: kept whole, flagged."""
    return {"message": text, "parse_error": f"{fmt}: {reason}"}


# Built-in parser modules: adding a format is a module here plus its name in this tuple.
BUILTIN = ("json", "lambda_platform", "logfmt", "regex", "csv_parser", "syslog", "apache", "xml")
_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import importlib

        for mod in BUILTIN:
            importlib.import_module(f"chalicelib.parsers.{mod}")


def spec(name: str) -> ParserSpec:
    _load()
    return _registry[name]


def build(name: str, opts: dict[str, Any] | None = None) -> Parser:
    """The parser `name` configured with (already validated) `opts`."""
    s = spec(name)
    return s.factory({k: (opts or {}).get(k, o.default) for k, o in s.options.items()})


def names() -> list[str]:
    _load()
    return sorted(_registry)
