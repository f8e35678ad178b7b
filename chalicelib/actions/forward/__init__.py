"""`forward`: send a rule's events to another system, through one of the sinks.

    actions:
      - forward: {to: kinesis, stream: app-logs, partition_key: "{tag}"}
      - forward: {to: firehose, delivery_stream: logs-to-s3}
      - forward: {to: http, url: "https://search.example", format: opensearch, secret: sluice/os}
      - forward: {to: http, url: "https://otel.example:4318", format: otlp}

`to` (and, for HTTP, `format`) chooses the sink: one module of this package each,
registered with `@register` and declaring its own options (see sink.py). This module
only dispatches: its option table is the sinks' tables together, and the rules
schema learns from it which option belongs to which sink. Batches respect each
destination's limits, what fails is retried with jittered backoff inside the
invocation's time (common.py), and only the events still undelivered are named in
the ActionError, so only they are dead-lettered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from chalicelib.actions.base import Action, Option, register
from chalicelib.actions.context import ActionContext, Delivery
from chalicelib.actions.forward import sink as sinks
from chalicelib.actions.forward.common import Retry
from chalicelib.actions.forward.sink import Sink
from chalicelib.event import LogEvent
from chalicelib.options import check_options


def _check_retries(v: int) -> str | None:
    return None if 0 <= v <= 10 else "0-10"


def _choice(what: str, names: list[str]) -> str:
    return f"{what}: {', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]


def _one_of(names: list[str]) -> Any:
    def check(v: str) -> str | None:
        return None if v in names else f"one of {', '.join(names)}"

    return check


def _merged(key: str, declared: list[Option]) -> Option:
    """One entry of the action's table for an option several sinks declare: the type
    (checks and requirements stay with each sink, applied once the sink is known)."""
    first = declared[0]
    if all(o == first for o in declared):
        return Option(first.type, first.description, default=first.default)
    types: list[type] = []
    for o in declared:
        for t in o.type if isinstance(o.type, tuple) else (o.type,):
            if t not in types:
                types.append(t)
    descriptions = "; ".join(dict.fromkeys(o.description for o in declared))
    return Option(tuple(types) if len(types) > 1 else types[0], descriptions)


def _table() -> dict[str, Option]:
    """The action's options: `to`, `format`, `max_retries` and every sink's own."""
    tos = sinks.destinations()
    with_formats = [to for to in tos if sinks.formats(to)]
    all_formats = [f for to in with_formats for f in sinks.formats(to)]
    declared: dict[str, list[Option]] = {}
    for s in sinks.sinks():
        for key, option in s.options.items():
            declared.setdefault(key, []).append(option)
    table = {
        "to": Option(str, _choice("destination", tos), required=True, check=_one_of(tos)),
        "format": Option(
            str,
            _choice("HTTP body", all_formats),
            default=sinks.default_format(with_formats[0]) if with_formats else None,
            check=_one_of(all_formats),
        ),
        "max_retries": Option(
            int, "retries of what failed (default 3)", default=3, check=_check_retries
        ),
    }
    for key, options in declared.items():
        table[key] = _merged(key, options)
    return table


class _OptionTable(Mapping[str, Option]):
    """The action's option table, built on first use: building it imports every sink
    module (HTTP, OTLP, the AWS sinks), which a function whose rules forward nothing
    never needs on its cold start."""

    def __init__(self) -> None:
        self._table: dict[str, Option] | None = None

    def _get(self) -> dict[str, Option]:
        if self._table is None:
            self._table = _table()
        return self._table

    def reset(self) -> None:
        self._table = None

    def __getitem__(self, key: str) -> Option:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def _owners(key: str) -> list[type[Sink]]:
    return [s for s in sinks.sinks() if key in s.options]


def chosen(opts: dict[str, Any]) -> type[Sink]:
    """The sink a rule's (valid) options name."""
    to = opts["to"]
    fmt = opts.get("format") or sinks.default_format(to)
    found = sinks.find(to, fmt if sinks.formats(to) else None)
    if found is None:
        raise KeyError(f"no forward sink for to: {to}, format: {fmt}")
    return found


@register
class ForwardAction(Action):
    name = "forward"
    options: ClassVar[Mapping[str, Option]] = _OptionTable()

    @classmethod
    def validate_options(cls, opts: dict[str, Any]) -> list[tuple[str, str]]:
        """What the action's table cannot see: the options of the chosen sink (each
        checked by the sink's own declaration), options that belong to another
        destination or format, and the sink's own cross-option rules."""
        to = opts["to"]
        fmts = sinks.formats(to)
        fmt = opts.get("format")
        if fmt is not None and not fmts:
            takers = [t for t in sinks.destinations() if sinks.formats(t)]
            return [("format", f"applies to to: {' or '.join(takers)} only")]
        if fmt is not None and fmt not in fmts:
            return [("format", f"one of {', '.join(fmts)} with to: {to}")]
        sink = chosen(opts)
        problems: list[tuple[str, str]] = []
        for key, option in sink.options.items():
            if option.required and key not in opts:
                same_to = all(key in s.options for s in sinks.sinks() if s.to == to)
                where = f"to: {to}" if same_to else f"format: {sink.format}"
                problems.append((key, f"required with {where}"))
        for key in sorted(opts):
            if key in cls._COMMON or key in sink.options:
                continue
            owners = _owners(key)
            if any(s.to == to for s in owners):
                names = [str(s.format) for s in owners if s.to == to]
                problems.append((key, f"applies to format: {' or '.join(names)} only"))
            else:
                names = list(dict.fromkeys(s.to for s in owners))
                problems.append((key, f"applies to to: {' or '.join(names)} only"))
        if problems:
            return problems
        own = {k: v for k, v in opts.items() if k in sink.options}
        problems = [(f.split(".", 1)[1], why) for f, why in check_options(own, sink.options, "_")]
        return problems or sink.validate(opts)

    _COMMON: ClassVar[frozenset[str]] = frozenset({"to", "format", "max_retries"})

    def __init__(self, rule_id: str, opts: dict[str, Any], ctx: ActionContext) -> None:
        super().__init__(rule_id, opts, ctx)
        self._given = dict(opts)
        self._sink: Sink | None = None

    def sink(self) -> Sink:
        """The destination, built on first use (it builds its clients when it sends)."""
        if self._sink is None:
            cls = chosen(self.opts)
            opts = {k: self._given.get(k, o.default) for k, o in cls.options.items()}
            self._sink = cls(opts, self.ctx)
        return self._sink

    def deliver(self, batch: Delivery) -> int:
        """Forward the batch; return the number of events delivered."""
        if not batch.events:
            return 0
        sink = self.sink()
        out = sink.send(
            batch.events, Retry(self.opts["max_retries"], batch.invocation.remaining_ms)
        )
        if out.failed:
            raise out.error(self.name, sink.name)
        return out.delivered

    def preview(self, events: list[LogEvent]) -> str:
        """What the destination would receive for the first event (no I/O)."""
        return self.sink().preview(events)


def _rebuild() -> None:
    """A sink registered after import (an extension, a test) joins the option table."""
    table = ForwardAction.options
    if isinstance(table, _OptionTable):
        table.reset()


sinks.on_change(_rebuild)
