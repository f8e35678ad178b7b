"""The loop guard: Sluice's own logs are never routed back into it, and nobody else's are
mistaken for them.

Sluice's functions are deployed as `<app>-<stage>-<function>` (`sluice-dev-cloudwatch_logs`)
and log to `/aws/lambda/<that name>`. The guard knows the deployment from the running
function's own name (or SLUICE_APP_NAME / SLUICE_STAGE): every group of its own stage
(`/aws/lambda/sluice-dev-*`) and Sluice's function names in any stage (two stages
subscribing each other's groups loop just the same), nothing broader: a customer's
`sluice-gate` is an ordinary function. It is checked per event, so a Kinesis record
mixing groups (a KPL aggregate of several subscription documents) drops exactly
Sluice's own lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.handlers import handle_cloudwatch_logs, handle_kinesis_records
from chalicelib.loopguard import FUNCTIONS, LoopGuard, loop_guard
from chalicelib.subscriptions import Patterns
from chalicelib.subscriptions.created import on_log_group_created

from .harness import Account, load_make, mocked_account

make = load_make()
OWN = "/aws/lambda/sluice-dev-cloudwatch_logs"
CUSTOMER = "/aws/lambda/checkout-api"


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with mocked_account() as acct:
        yield acct


def subscription(group: str, n: int) -> dict[str, Any]:
    return {"cloudwatch": {"group": group, "messages": [f"{group} line {i}" for i in range(n)]}}


@pytest.mark.parametrize(
    ("parts", "archived_groups", "guarded"),
    [
        pytest.param([(CUSTOMER, 2), (OWN, 4)], {CUSTOMER: 2}, 4, id="customer first"),
        pytest.param([(OWN, 4), (CUSTOMER, 2)], {CUSTOMER: 2}, 4, id="Sluice first"),
        pytest.param(
            [(CUSTOMER, 1), (OWN, 2), ("/aws/lambda/sluice-gate", 3)],
            {CUSTOMER: 1, "/aws/lambda/sluice-gate": 3},
            2,
            id="with a customer's sluice-gate",
        ),
    ],
)
def test_mixed_kpl_record_drops_exactly_sluices_own_lines(
    account: Account,
    parts: list[tuple[str, int]],
    archived_groups: dict[str, int],
    guarded: int,
) -> None:
    """A KPL aggregate of subscription documents from several groups: each event is
    judged by its own group, so Sluice's lines are dropped by the loop guard and every
    other line is archived, whatever the order."""
    recipe = {"kpl": [[f"pk{i}", {"gzip": subscription(g, n)}] for i, (g, n) in enumerate(parts)]}
    got = account.run(handle_kinesis_records, make.kinesis_event({"records": [recipe]}))
    total = sum(n for _, n in parts)
    assert got.ledger == (total, total - guarded, guarded, 0)
    assert got.ledgers[-1].dropped_by == {"loop_guard": guarded}
    seen: dict[str, int] = {}
    for line in got.lines:
        seen[line["source"]["log_group"]] = seen.get(line["source"]["log_group"], 0) + 1
    assert seen == archived_groups


@pytest.mark.parametrize(
    "group",
    [
        "/aws/lambda/sluice-gate",
        "/aws/lambda/sluice",
        "/aws/lambda/sluice-gateway-prod",
        "/aws/lambda/sluice-dev",
        "/aws/lambda/sluice-dev-",
        "/aws/lambda/sluice-dev-x/y",
        "/aws/lambda/xsluice-dev-cloudwatch_logs",
        "/ecs/sluice-dev-cloudwatch_logs",
        "/aws/lambda/sluice-devx-checkout",
    ],
)
def test_customer_groups_named_like_sluice_are_archived(account: Account, group: str) -> None:
    """A group that is not one of Sluice's deployed functions is routed like any other,
    however close its name comes."""
    got = account.run(handle_cloudwatch_logs, make.cloudwatch_event(group=group, messages=["m"]))
    assert got.ledger == (1, 1, 0, 0)


@pytest.mark.parametrize(
    "group",
    [
        "/aws/lambda/sluice-dev-cloudwatch_logs",
        "/aws/lambda/sluice-dev-kinesis_records",
        "/aws/lambda/sluice-dev-hostile",  # the running function itself
        "/aws/lambda/sluice-dev-anything",  # its stage's whole namespace
        "/aws/lambda/sluice-prod-kinesis_records",  # another stage's Sluice function
        "/aws/lambda/sluice-eu-prod-log_group_created",
    ],
)
def test_sluice_groups_are_dropped_by_the_guard(account: Account, group: str) -> None:
    """Groups of the running deployment's stage, and Sluice's function names in any
    stage, are dropped by the loop guard and never archived."""
    got = account.run(handle_cloudwatch_logs, make.cloudwatch_event(group=group, messages=["m"]))
    assert got.ledger == (1, 0, 1, 0)
    assert got.lines == []


@pytest.mark.parametrize(
    ("function", "env", "group", "own"),
    [
        pytest.param(
            "sluice-dev-cloudwatch_logs", {}, "/aws/lambda/sluice-dev-new", True, id="stage"
        ),
        pytest.param(
            "sluice-dev-cloudwatch_logs", {}, "/aws/lambda/sluice-qa-new", False, id="other"
        ),
        pytest.param(
            "sluice-my-stage-s3_objects", {}, "/aws/lambda/sluice-my-stage-x", True, id="dashes"
        ),
        pytest.param(
            "logs-prod-kinesis_records",
            {"SLUICE_APP_NAME": "logs"},
            "/aws/lambda/logs-prod-absence_check",
            True,
            id="another app name",
        ),
        pytest.param(
            "logs-prod-kinesis_records",
            {"SLUICE_APP_NAME": "logs"},
            "/aws/lambda/sluice-prod-absence_check",
            False,
            id="not the default app name then",
        ),
        pytest.param(None, {"SLUICE_STAGE": "qa"}, "/aws/lambda/sluice-qa-x", True, id="setting"),
        pytest.param(None, {}, "/aws/lambda/sluice-gate", False, id="no deployment known"),
        pytest.param(None, {}, "/aws/lambda/sluice-x-cloudwatch_logs", True, id="names known"),
    ],
)
def test_deployment_comes_from_the_function_name_or_settings(
    function: str | None, env: dict[str, str], group: str, own: bool
) -> None:
    """The guard's app and stage come from the running function's name (`<app>-<stage>-
    <function>`), or SLUICE_APP_NAME / SLUICE_STAGE."""
    from chalicelib.settings import Settings

    base = {"SLUICE_RULES_TABLE": "r", "SLUICE_ARCHIVE_BUCKET": "b", "SLUICE_DLQ_URL": "q"}
    guard = loop_guard(Settings.from_env({**base, **env}), function)
    assert guard.owns(group) is own


def test_subscriptions_use_the_same_guard() -> None:
    """`sluice subscribe` and log_group_created refuse Sluice's own groups and subscribe a
    customer's `sluice-gate`; a CreateLogGroup made by a customer role named sluice-* is
    not mistaken for Sluice's own."""
    guard = LoopGuard(app="sluice", stage="dev")
    patterns = Patterns(("**",), guard=guard)
    assert patterns.skip_reason("/aws/lambda/sluice-gate") is None
    assert patterns.skip_reason(OWN) == "Sluice's own function logs (loop guard)"
    assert guard.caused_by_sluice(
        {"userIdentity": {"arn": "arn:aws:sts::1:assumed-role/sluice-dev-log_group_created/x"}}
    )
    assert not guard.caused_by_sluice(
        {"userIdentity": {"arn": "arn:aws:sts::1:assumed-role/sluice-gate-role/x"}}
    )
    out = on_log_group_created(
        {"detail": {"requestParameters": {"logGroupName": OWN}}},
        "arn:aws:lambda:us-east-1:1:function:sluice-dev-cloudwatch_logs",
        logs=None,
        ddb=None,
        rules_table="t",
        own_function="sluice-dev-log_group_created",
    )
    assert (out.status, out.detail) == ("skipped", "Sluice's own function logs (loop guard)")


def test_function_names_are_the_apps() -> None:
    """The guard's list of Sluice's function names is app.py's, exactly."""
    from app import app

    assert set(FUNCTIONS) == set(app.handler_map)
