"""chalicelib.rules.regexsyntax: rule patterns are read in RE2's syntax, never by Python's `re`,
and every plan or literal read from them gives RE2's answer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chalicelib.rules.regexplan import required_literal, string_plan
from chalicelib.rules.regexsyntax import parse

ROOT = Path(__file__).resolve().parents[2]
_BANNED = {"re", "sre_parse", "sre_compile", "sre_constants"}


def _runtime_sources() -> list[Path]:
    return [
        ROOT / "app.py",
        *(ROOT / "chalicelib").rglob("*.py"),
        *(ROOT / "sluice_cli").rglob("*.py"),
    ]


def _imports_of(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value).split(".")[0])
    return found


def test_runtime_and_cli_never_import_pythons_re():
    """Log text and rule patterns are untrusted: no module of the functions or the CLI
    imports Python's `re` (or its parser), not even to read a pattern's structure."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports_of(ast.parse(path.read_text())) & _BANNED)
        for path in _runtime_sources()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize(
    ("pattern", "structure"),
    [
        pytest.param("abc", ("", [[("lit", "a"), ("lit", "b"), ("lit", "c")]]), id="literal"),
        pytest.param(
            "(?i)(?m)^a$", ("im", [[("bol",), ("lit", "a"), ("eol",)]]), id="leading flags"
        ),
        pytest.param(
            r"a\.\d[0-2][x]",
            (
                "",
                [[("lit", "a"), ("lit", "."), ("set", "0123456789"), ("set", "012"), ("lit", "x")]],
            ),
            id="escapes and classes",
        ),
        pytest.param(
            "(?:ab|c)+?d{2,}",
            (
                "",
                [
                    [
                        ("rep", 1, None, ("group", [[("lit", "a"), ("lit", "b")], [("lit", "c")]])),
                        ("rep", 2, None, ("lit", "d")),
                    ]
                ],
            ),
            id="groups and repeats",
        ),
        pytest.param(
            "(?P<n>a)|[^a]|.",
            ("", [[("group", [[("lit", "a")]])], [("set", None)], [("other",)]]),
            id="alternatives",
        ),
        pytest.param("[a-]", ("", [[("set", "a-")]]), id="a dash last is a character"),
        pytest.param("(?U)a*", ("U", [[("rep", 0, None, ("lit", "a"))]]), id="ungreedy flag"),
        pytest.param(
            "[" + "ab" * 200 + "]", ("", [[("set", None)]]), id="a class too long to spell"
        ),
    ],
)
def test_structure(pattern, structure):
    assert parse(pattern) == structure


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("x{,3}", id="a literal to RE2, a repeat to Python"),
        pytest.param("a{b", id="a literal brace"),
        pytest.param("a{" + "9" * 5000 + "}", id="a count too long for a number: text to RE2"),
        pytest.param("a{1," + "9" * 30 + "}", id="an upper count too long: text to RE2"),
        pytest.param("a]b", id="a literal bracket"),
        pytest.param("^[[:digit:]]$", id="POSIX class"),
        pytest.param("[:alpha:]", id="a class that looks like POSIX"),
        pytest.param(r"\Qa.b\E", id="quoted text"),
        pytest.param(r"\pL+", id="Unicode class"),
        pytest.param(r"\x41", id="hex escape"),
        pytest.param("ab(?i)cd", id="flags inside"),
        pytest.param("(?i:ab)cd", id="scoped flags"),
        pytest.param("[]a]", id="a bracket first in a class"),
        pytest.param("a**", id="a repeat of a repeat"),
        pytest.param("(" * 100 + "a" + ")" * 100, id="nesting past the bound"),
        pytest.param("a)", id="a parenthesis never opened"),
        pytest.param("(a", id="a group never closed"),
        pytest.param("a\\", id="a trailing backslash"),
    ],
)
def test_shapes_outside_the_subset_are_left_to_re2(pattern):
    """Anything read differently by RE2 and other regex dialects, or outside the shapes the
    plans use, is not read at all: no plan, no literal, RE2 alone."""
    assert parse(pattern) is None
    assert string_plan(pattern) is None and required_literal(pattern) is None


def test_a_long_pattern_is_read_without_recursion_per_item():
    """Alternatives and groups side by side are read in a loop: tens of thousands of them
    need no more stack than one."""
    pattern = "ab|" * 20_000 + "c" + "(?:x)" * 10_000
    flags, alts = parse(pattern)
    assert len(alts) == 20_001 and flags == ""
