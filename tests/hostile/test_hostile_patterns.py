"""Log-group patterns against hostile group names.

Any workload can create a log group whose name is up to 512 characters of its choosing,
and `sluice subscribe` and `log_group_created` match every such name against the
operator's patterns. A matcher that backtracks takes polynomial time in the name for
each `*` (`*-*-*-*-prod` against a 493-character name took over 10 s, and each further
star multiplies that by the name's length), so patterns must be matched in time linear
in the name. Proved without timing anything: the cases run in a child process given a
generous deadline that a backtracking matcher overruns by hours; the matcher's answers
are checked against a reference below.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.subscriptions.patterns import Patterns

ROOT = Path(__file__).resolve().parents[2]
# Longest log group name CloudWatch Logs accepts (CreateLogGroup: 1-512 characters).
MAX_NAME = 512

# (pattern, name, subscribed?) with names built to make a backtracking matcher explode:
# many stars, a near miss at the very end.
HOSTILE = [
    ("*-*-*-*-prod", "-" * 493, False),
    ("*-*-*-*-*-*-*-*-prod", "-" * MAX_NAME, False),
    ("*-*-*-*-*-*-*-*-prod", "-" * (MAX_NAME - 4) + "prod", True),
    ("/aws/*-*-*-*-*-*-x", "/aws/" + "-" * (MAX_NAME - 5), False),
    ("**/*a*a*a*a*a*a*b", "/" + "a" * (MAX_NAME - 1), False),
    ("{*-*-*-*-*-*-a,*-*-*-*-*-*-b}", "-" * MAX_NAME, False),
    ("?*?*?*?*?*?*?*z", "q" * MAX_NAME, False),
]

CHILD = """
import json, sys
from chalicelib.subscriptions.patterns import Patterns
out = []
for pattern, name, _ in json.loads(sys.stdin.read()):
    out.append(Patterns((pattern,)).selection_reason(name) is None)
print(json.dumps(out))
"""


def test_patterns_with_many_stars_are_decided_in_linear_time() -> None:
    """Every hostile (pattern, name) pair is decided, and decided right, well inside a
    deadline (10 minutes for all of them) that a backtracking matcher misses by hours."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(HOSTILE),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=True,
    )
    assert json.loads(proc.stdout) == [want for _, _, want in HOSTILE]


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        pytest.param("*", "abc", True, id="a star takes a slash-free name"),
        pytest.param("*", "/aws/x", False, id="a star stops at a slash"),
        pytest.param("/aws/lambda/*", "/aws/lambda/api", True, id="one part"),
        pytest.param("/aws/lambda/*", "/aws/lambda/a/b", False, id="not two parts"),
        pytest.param("/aws/**", "/aws", True, id="trailing double star takes the parent"),
        pytest.param("/aws/**", "/aws/a/b/c", True, id="trailing double star takes any depth"),
        pytest.param("/aws/**", "/awsx", False, id="trailing double star keeps the slash"),
        pytest.param("**/prod", "/ecs/web/prod", True, id="leading double star"),
        pytest.param("**/prod", "prod", True, id="leading double star takes nothing"),
        pytest.param("/a/**/b", "/a/b", True, id="inner double star takes zero parts"),
        pytest.param("/a/**/b", "/a/x/y/b", True, id="inner double star takes many parts"),
        pytest.param("/a/**/b", "/a/xb", False, id="inner double star keeps part bounds"),
        pytest.param("/a**", "/abc/d", True, id="double star inside a part crosses slashes"),
        pytest.param("/ecs/?eb", "/ecs/web", True, id="question mark one character"),
        pytest.param("/ecs/?eb", "/ecs//eb", False, id="question mark never a slash"),
        pytest.param("/ecs/{web,api}-*", "/ecs/api-1", True, id="alternatives"),
        pytest.param("/ecs/{web,api}-*", "/ecs/job-1", False, id="no alternative"),
        pytest.param("/a.b#c", "/a.b#c", True, id="dot and hash are literal"),
        pytest.param("/a.b", "/axb", False, id="a dot is not a wildcard"),
        pytest.param("*-prod", "-" * 493 + "-prod", True, id="long name that matches"),
    ],
)
def test_pattern_semantics_hold(pattern: str, name: str, matches: bool) -> None:
    """The linear matcher keeps the glob meaning: `*` one part, `**` any number of parts,
    `?` one character of a part, `{a,b}` either, everything else literal."""
    assert (Patterns((pattern,)).selection_reason(name) is None) is matches
