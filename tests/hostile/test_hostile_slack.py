"""Slack alerts from hostile log text, end to end: the cloudwatch_logs handler over moto, the
real slack_sdk client, and the local Slack Web API endpoint recording what arrives.

Log text is data. Mentions, broadcasts, links and formatting marks arrive entity-encoded
or defused, the samples' code block cannot be closed from inside, every block stays
within Slack's limits, a flood of matches is one summary with at most MAX_SAMPLES
samples, and the archive keeps every message exactly as written. Nothing in the runtime
can run a shell: no module outside the CLI imports one or evaluates text.
Cases: tests/data/hostile/slack.json.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.actions.slack import MAX_SAMPLES, SECTION_CHARS
from chalicelib.handlers import handle_cloudwatch_logs
from sluice_cli.slack_server import SlackServer

from .harness import SLACK_TOKEN, Account, Outcome, load_make, mocked_account

make = load_make()
CASES = make.cases("slack")
RUNBOOK = "https://wiki.example/alerts"
RULES = {
    "rules": [
        {
            "id": "hostile-alerts",
            "match": {
                "tag": "aws.lambda.slack*",
                "where": [{"field": "message", "regex": "^ALERT"}],
            },
            "actions": [
                {"slack": {"channel": "#ops", "text": "{tag}: {message}", "runbook": RUNBOOK}}
            ],
        }
    ]
}
CHALICELIB = Path(__file__).resolve().parents[2] / "chalicelib"


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[Account, SlackServer, Any]]:
    with mocked_account() as acct, SlackServer(SLACK_TOKEN) as server:
        settings = dataclasses.replace(acct.runtime.settings, slack_api_url=server.url)
        runtime = type(acct.runtime)(settings, acct.runtime.clients)
        acct.runtime = runtime
        acct.apply_rules(RULES)
        yield acct, server, runtime


@pytest.fixture(scope="module")
def outcomes(setup: Any) -> dict[str, tuple[list[str], Outcome, list[dict[str, Any]]]]:
    """Each case's messages in one payload from its own log group, with ids of its own
    (alerts are deduplicated by event id): case id -> (messages, outcome, Slack messages)."""
    account, server, _ = setup
    out = {}
    for n, case in enumerate(CASES):
        events = make.log_events(case["messages"], t0=make.T0 + n * 100_000)
        for i, ev in enumerate(events):
            ev["id"] = f"slack-{n}-{i}"
        server.reset()
        got = account.run(
            handle_cloudwatch_logs,
            make.cloudwatch_event(group=f"/aws/lambda/slack{n}", events=events),
        )
        out[case["id"]] = ([e["message"] for e in events], got, server.messages())
    return out


def texts(msg: dict[str, Any]) -> list[str]:
    """Every text Slack would render: fallback, block texts, fields, context elements."""
    out = [msg["text"]]
    for b in msg["blocks"]:
        if isinstance(b.get("text"), dict):
            out.append(b["text"]["text"])
        out.extend(f["text"] for f in b.get("fields", []))
        out.extend(e["text"] for e in b.get("elements", []))
    return out


def samples_block(msg: dict[str, Any]) -> str:
    (block,) = [
        b["text"]["text"]
        for b in msg["blocks"]
        if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("```")
    ]
    return str(block)


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in CASES])
def test_hostile_text_reaches_slack_inert_and_the_archive_verbatim(
    case: dict[str, Any], outcomes: dict[str, Any]
) -> None:
    """One Slack message per case, in which no mention, broadcast, link or formatting mark
    from the log text survives as markup (only the operator's runbook is a link), every
    block within Slack's limits; each event archived exactly as written; ledger balanced."""
    messages, got, slack = outcomes[case["id"]]
    assert got.balanced() and got.dead_letters == []
    assert got.ledger == (len(messages), len(messages), 0, 0)
    assert got.ledgers[0].alerts == 1
    assert sorted(line["record"]["message"] for line in got.lines) == sorted(messages)
    (msg,) = slack
    assert (msg["params"]["link_names"], msg["params"]["parse"]) == (False, "none")
    all_texts = texts(msg)
    for text in all_texts:
        for raw in case["never"]:
            assert raw not in text, (raw, text[:200])
    links = [m for t in all_texts for m in re.findall(r"<([^>]*)>", t)]
    # Only Sluice's own links: the rule's runbook, the archived object's console page and
    # the log group's console page in the event's region.
    assert links[0] == f"{RUNBOOK}|Runbook"
    assert len(links) == 3
    assert links[1].startswith("https://s3.console.aws.amazon.com/s3/object/")
    assert links[1].endswith("|Archived")
    assert links[2].startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/home?")
    assert links[2].endswith("|Console")
    headline = msg["blocks"][1]["text"]["text"]
    for escaped in case.get("headline_has", []):
        assert escaped in headline, (escaped, headline)
    if "samples_fence_count" in case:
        block = samples_block(msg)
        assert block.count("```") == case["samples_fence_count"]
        assert block.startswith("```") and block.endswith("```")
    if case.get("within_limits"):
        assert len(msg["blocks"]) <= 50
        assert len(msg["blocks"][0]["text"]["text"]) <= 150
        assert all(len(t) <= 3000 for t in all_texts[1:])
        assert len(headline) <= SECTION_CHARS
    if "samples" in case:
        assert case["header_has"] in msg["blocks"][0]["text"]["text"]
        block = samples_block(msg)
        end = block.rindex("```")
        assert len(block[3:end].splitlines()) == case["samples"] == MAX_SAMPLES
        assert block[end + 3 :] == "\n" + case["more"]


# ---------------------------------------------------------------- no shell in the runtime
SHELL_MODULES = {"subprocess", "pty", "pexpect", "commands", "popen2"}
SHELL_CALLS = {"system", "popen", "spawnl", "spawnlp", "spawnv", "spawnvp", "execl", "execv"}
EVAL_BUILTINS = {"eval", "exec", "compile", "__import__"}


def runtime_modules() -> list[Path]:
    """Every module the functions can import: all of chalicelib (the CLI lives outside it)."""
    return sorted(CHALICELIB.rglob("*.py"))


def shell_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in SHELL_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in SHELL_MODULES:
                found.append(node.module)
            if node.module == "os":
                found += [f"os.{a.name}" for a in node.names if a.name in SHELL_CALLS]
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in EVAL_BUILTINS:
                found.append(f"{f.id}()")
            elif isinstance(f, ast.Attribute) and f.attr in SHELL_CALLS:
                if isinstance(f.value, ast.Name) and f.value.id == "os":
                    found.append(f"os.{f.attr}()")
            found += ["shell=True" for k in node.keywords if k.arg == "shell"]
    return [f"{path.relative_to(CHALICELIB.parent)}: {x}" for x in found]


# The one place the runtime compiles code: rules compiled per tag into generated source that
# holds identifiers this module makes and fixed code only, never a rules file's or a log's
# text (tests/unit/test_rules_straight.py compiles hostile rules and checks the source).
GENERATED_CODE = {"chalicelib/rules/straight.py": ["compile()", "exec()"]}


def test_no_runtime_module_can_run_a_shell_or_evaluate_text() -> None:
    """In the runtime (chalicelib) nothing imports subprocess (or pty), calls os.system/popen/
    spawn/exec, passes shell=True, or calls eval/exec/compile/__import__: log text has
    nothing to be executed by. The single exception is the rules compiler's generated
    source, which no rules or log text can enter."""
    modules = runtime_modules()
    assert len(modules) > 30
    found = [use for p in modules for use in shell_uses(p)]
    allowed = [f"{path}: {use}" for path, uses in GENERATED_CODE.items() for use in uses]
    assert sorted(found) == sorted(allowed)
    text = "\n".join(p.read_text("utf-8") for p in modules)
    assert re.search(r"\b(subprocess|os\.system|os\.popen)\b", text) is None
