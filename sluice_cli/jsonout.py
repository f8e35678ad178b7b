"""`--json`: one JSON object per line on stdout, for `jq` and scripts.

Commands that list things print one object per item (JSON lines, like `sluice
search --json`); commands that report one outcome print one object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click
import orjson

option = click.option(
    "--json", "as_json", is_flag=True, help="JSON lines on stdout (one object per item)"
)


def line(obj: Any) -> str:
    return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def emit(obj: Any) -> None:
    """One object, one line."""
    click.echo(line(obj))


def emit_lines(objs: Iterable[Any]) -> None:
    """One line per object."""
    for obj in objs:
        click.echo(line(obj))
