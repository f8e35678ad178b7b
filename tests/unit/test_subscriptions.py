"""Subscribing log groups: patterns, loop guard, the two-filter limit, the CLI, log_group_created.

Everything runs against moto (`aws` fixture in conftest.py). moto checks that a
subscription's destination exists (a Lambda function or a Kinesis stream), so
the fixture creates Sluice's `cloudwatch_logs` function and fan-in stream.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from chalicelib import handlers
from chalicelib import subscriptions as subs
from chalicelib.pipeline import Runtime
from chalicelib.subscriptions import Destination, Patterns, SubscriptionConfig, SubscriptionError

REGION = "us-east-1"
ACCOUNT = "123456789012"
STAGE_PREFIX = "sluice-dev"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sluice-dev-cloudwatch_logs"
CREATED_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sluice-dev-log_group_created"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/sluice-fan-in"
FOREIGN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:datadog-forwarder"
T0 = 1795687621000  # 2026-11-26T10:07:01Z, the sample event's time
SLUICE_GROUPS = [
    "/aws/lambda/sluice-dev-cloudwatch_logs",
    "/aws/lambda/sluice-dev-log_group_created",
    "/aws/lambda/sluice-prod-kinesis_records",
]


@dataclass
class Ctx:
    """The Lambda context attributes `log_group_created` reads."""

    function_name: str = "sluice-dev-log_group_created"
    invoked_function_arn: str = CREATED_ARN
    aws_request_id: str = "c0ffee00-0000-4000-8000-00000000beef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def created(event: dict[str, Any], clients: Any = None) -> dict[str, Any]:
    """The `log_group_created` handler on a fresh Runtime (default clients unless given)."""
    return handlers.handle_log_group_created(event, Ctx(), Runtime(clients=clients))


@pytest.fixture
def logs(aws: Any) -> Any:
    """A CloudWatch Logs client on the mocked account, with Sluice's destinations in place."""
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="sluice-dev-cloudwatch_logs", AssumeRolePolicyDocument="{}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def cloudwatch_logs(event, context):\n    return None\n")
    lam = boto3.client("lambda", region_name=REGION)
    for name in ("sluice-dev-cloudwatch_logs", "datadog-forwarder"):
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role["Role"]["Arn"],
            Handler="app.cloudwatch_logs",
            Code={"ZipFile": buf.getvalue()},
        )
    boto3.client("kinesis", region_name=REGION).create_stream(
        StreamName="sluice-fan-in", ShardCount=1
    )
    return boto3.client("logs", region_name=REGION)


@pytest.fixture(autouse=True)
def no_settle_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backfill waits for a new filter to take effect; moto's take effect at once."""
    from chalicelib.subscriptions import created

    monkeypatch.setattr(created, "BACKFILL_SETTLE_S", 0)


class Invocations:
    """Stands in for the Lambda client: records asynchronous invocations (moto would run Docker)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        return {"StatusCode": 202}


def write_lines(logs: Any, group: str, stream: str, messages: list[str]) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": T0 + i, "message": m} for i, m in enumerate(messages)],
    )


def lambda_dest() -> Destination:
    return Destination.for_stage(
        STAGE_PREFIX, "lambda", partition="aws", region=REGION, account=ACCOUNT
    )


def make_groups(logs: Any, *names: str) -> None:
    for n in names:
        logs.create_log_group(logGroupName=n)


def add_foreign(logs: Any, group: str, name: str) -> None:
    logs.put_subscription_filter(
        logGroupName=group, filterName=name, filterPattern="ERROR", destinationArn=FOREIGN_ARN
    )


def filters_of(logs: Any, group: str) -> dict[str, dict[str, Any]]:
    return {
        f["filterName"]: f
        for f in logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
    }


def save_config(aws: Any, **kw: Any) -> None:
    subs.write_config(aws.dynamodb, aws.rules_table, SubscriptionConfig(**kw))


def run_cli(*args: str) -> Any:
    from sluice_cli.main import _register, cli

    _register()
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# ---------------------------------------------------------------- patterns
@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        pytest.param("/aws/lambda/*", "/aws/lambda/checkout-api", True, id="star one part"),
        pytest.param("/aws/lambda/*", "/aws/lambda/a/b", False, id="star not two parts"),
        pytest.param("/ecs/**", "/ecs/checkout/web", True, id="double star any depth"),
        pytest.param("/ecs/**", "/ecs", True, id="trailing double star zero parts"),
        pytest.param("/ecs/**", "/ecsx/a", False, id="double star keeps the slash"),
        pytest.param("/aws/**/prod", "/aws/prod", True, id="inner double star zero parts"),
        pytest.param("/aws/**/prod", "/aws/codebuild/ci/prod", True, id="inner double star many"),
        pytest.param("**", "API-Gateway-Execution-Logs_x1/prod", True, id="all groups"),
        pytest.param("/ci/job-?", "/ci/job-7", True, id="question mark one character"),
        pytest.param("/{ecs,batch}/*", "/batch/nightly", True, id="braces alternatives"),
        pytest.param("/{ecs,batch}/*", "/eks/nightly", False, id="braces nothing else"),
    ],
)
def test_pattern_semantics(pattern: str, name: str, matches: bool) -> None:
    """`*` is one path part, `**` any number (zero included), `?` one character, `{a,b}` either."""
    assert (Patterns((pattern,)).skip_reason(name) is None) is matches


@pytest.mark.parametrize(
    "pattern",
    [pytest.param("", id="empty"), pytest.param("/aws/lambda/$x", id="character not in names")],
)
def test_invalid_patterns_are_refused(pattern: str) -> None:
    """A pattern no log group name could match is an error, not a silent no-op."""
    with pytest.raises(SubscriptionError):
        Patterns((pattern,))


def test_listing_prefixes_cover_patterns_with_fewest_calls() -> None:
    """DescribeLogGroups runs once per literal prefix, nested prefixes folded into their parent."""
    p = Patterns(("/aws/lambda/*", "/aws/**/prod", "/ecs/**"))
    assert p.prefixes() == ["/aws/", "/ecs/"]
    assert Patterns(("**", "/ecs/*")).prefixes() == [""]


@pytest.mark.parametrize("name", SLUICE_GROUPS)
def test_loop_guard_beats_every_pattern(name: str) -> None:
    """Sluice's own function log groups are refused even by `**` with no excludes."""
    assert Patterns(("**",)).skip_reason(name) == "Sluice's own function logs (loop guard)"
    assert subs.is_sluice_log_group(name)


def test_excludes_win_over_patterns() -> None:
    """A group matching an include and an exclude is not subscribed, and the exclude is named."""
    p = Patterns(("/ecs/**",), ("/ecs/tmp/**",))
    assert p.skip_reason("/ecs/tmp/job-1") == "excluded by '/ecs/tmp/**'"
    assert p.skip_reason("/ecs/web") is None


# ---------------------------------------------------------------- one group
def test_subscribe_is_idempotent(logs: Any) -> None:
    """The first run subscribes; the second finds Sluice's filter as asked and changes nothing."""
    make_groups(logs, "/aws/lambda/checkout-api")
    first = subs.subscribe_group(logs, "/aws/lambda/checkout-api", lambda_dest())
    second = subs.subscribe_group(logs, "/aws/lambda/checkout-api", lambda_dest())
    assert (first.status, second.status) == ("subscribed", "unchanged")
    f = filters_of(logs, "/aws/lambda/checkout-api")
    assert list(f) == ["sluice-dev"]
    assert f["sluice-dev"]["destinationArn"] == FUNCTION_ARN


def test_changed_filter_pattern_updates_sluice_filter_in_place(logs: Any) -> None:
    """A new filter pattern rewrites Sluice's own filter rather than adding a second one."""
    make_groups(logs, "/ecs/web")
    subs.subscribe_group(logs, "/ecs/web", lambda_dest(), "")
    out = subs.subscribe_group(logs, "/ecs/web", lambda_dest(), "?ERROR ?WARN")
    assert out.status == "updated"
    f = filters_of(logs, "/ecs/web")
    assert list(f) == ["sluice-dev"] and f["sluice-dev"]["filterPattern"] == "?ERROR ?WARN"


def test_group_with_one_foreign_filter_gets_sluice_beside_it(logs: Any) -> None:
    """One foreign filter leaves room: Sluice's is added and the foreign one is untouched."""
    make_groups(logs, "/ecs/web")
    add_foreign(logs, "/ecs/web", "datadog")
    out = subs.subscribe_group(logs, "/ecs/web", lambda_dest())
    assert out.status == "subscribed"
    f = filters_of(logs, "/ecs/web")
    assert set(f) == {"datadog", "sluice-dev"}
    assert f["datadog"]["destinationArn"] == FOREIGN_ARN
    assert f["datadog"]["filterPattern"] == "ERROR"


def test_two_foreign_filters_block_and_stay(logs: Any) -> None:
    """A group at CloudWatch's two-filter limit is reported blocked; its filters stay."""
    make_groups(logs, "/ecs/web")
    add_foreign(logs, "/ecs/web", "datadog")
    add_foreign(logs, "/ecs/web", "splunk")
    out = subs.subscribe_group(logs, "/ecs/web", lambda_dest())
    assert out.status == "blocked"
    assert out.detail == "2 filters already: datadog, splunk"
    assert set(filters_of(logs, "/ecs/web")) == {"datadog", "splunk"}


def test_foreign_filter_already_delivering_to_sluice_is_not_duplicated(logs: Any) -> None:
    """A hand-made filter to Sluice's function counts as coverage; a second would double events."""
    make_groups(logs, "/ecs/web")
    logs.put_subscription_filter(
        logGroupName="/ecs/web", filterName="manual", filterPattern="", destinationArn=FUNCTION_ARN
    )
    out = subs.subscribe_group(logs, "/ecs/web", lambda_dest())
    assert out.status == "covered"
    assert list(filters_of(logs, "/ecs/web")) == ["manual"]


def test_dry_run_changes_nothing(logs: Any) -> None:
    """`dry_run` reports would-subscribe and leaves the group without a filter."""
    make_groups(logs, "/ecs/web")
    out = subs.subscribe_group(logs, "/ecs/web", lambda_dest(), dry_run=True)
    assert out.status == "would-subscribe"
    assert filters_of(logs, "/ecs/web") == {}


def test_deleted_group_is_reported_gone(logs: Any) -> None:
    """A transient group deleted before Sluice gets to it is `gone`, not an error."""
    assert subs.subscribe_group(logs, "/ci/build-42", lambda_dest()).status == "gone"


def test_kinesis_destination_carries_the_role(logs: Any) -> None:
    """Kinesis fan-in: the filter targets the stream with the role CloudWatch Logs assumes."""
    make_groups(logs, "/ecs/web")
    dest = Destination.for_stage(
        STAGE_PREFIX, "kinesis", partition="aws", region=REGION, account=ACCOUNT
    )
    assert subs.subscribe_group(logs, "/ecs/web", dest).status == "subscribed"
    f = filters_of(logs, "/ecs/web")["sluice-dev"]
    assert f["destinationArn"] == STREAM_ARN
    assert f["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/sluice-dev-logs-to-kinesis"


def test_unsubscribe_removes_only_sluice_filter(logs: Any) -> None:
    """Unsubscribing deletes `sluice-<stage>` and leaves every other filter in place."""
    make_groups(logs, "/ecs/web")
    add_foreign(logs, "/ecs/web", "datadog")
    subs.subscribe_group(logs, "/ecs/web", lambda_dest())
    out = subs.unsubscribe_group(logs, "/ecs/web", "sluice-dev")
    assert (out.status, out.filters) == ("removed", ["datadog"])
    assert list(filters_of(logs, "/ecs/web")) == ["datadog"]
    assert subs.unsubscribe_group(logs, "/ecs/web", "sluice-dev").status == "absent"


def test_logs_permission_is_added_once(logs: Any) -> None:
    """CloudWatch Logs gets invoke permission on the function once; a second call adds nothing."""
    lam = boto3.client("lambda", region_name=REGION)
    assert subs.ensure_logs_permission(lam, FUNCTION_ARN) is True
    assert subs.ensure_logs_permission(lam, FUNCTION_ARN) is False
    policy = json.loads(lam.get_policy(FunctionName=FUNCTION_ARN)["Policy"])
    (st,) = policy["Statement"]
    assert st["Principal"] == {"Service": "logs.amazonaws.com"}
    assert st["Condition"]["ArnLike"]["AWS:SourceArn"] == (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:*"
    )


# ---------------------------------------------------------------- CLI
def test_cli_subscribes_matching_groups_across_pages(logs: Any) -> None:
    """120 groups (three DescribeLogGroups pages) are subscribed; others and excludes not."""
    make_groups(logs, *(f"/ecs/svc-{i:03d}" for i in range(120)))
    make_groups(logs, "/aws/lambda/checkout-api", "/aws/lambda/tmp-x", "/other/app")
    result = run_cli(
        "subscribe",
        "--pattern",
        "/aws/lambda/*",
        "--pattern",
        "/ecs/**",
        "--exclude",
        "/aws/lambda/tmp-*",
    )
    assert result.exit_code == 0, result.output
    assert "subscribed" in result.output
    subscribed = [
        g["logGroupName"]
        for page in logs.get_paginator("describe_log_groups").paginate()
        for g in page["logGroups"]
        if "sluice-dev" in filters_of(logs, g["logGroupName"])
    ]
    assert len(subscribed) == 121
    assert "/aws/lambda/tmp-x" not in subscribed and "/other/app" not in subscribed


def test_cli_reports_blocked_groups_and_why(logs: Any) -> None:
    """The summary lists a group at the two-filter limit with both foreign filter names."""
    make_groups(logs, "/ecs/web", "/ecs/api")
    add_foreign(logs, "/ecs/web", "datadog")
    add_foreign(logs, "/ecs/web", "splunk")
    result = run_cli("subscribe", "--pattern", "/ecs/**")
    assert result.exit_code == 0
    assert "blocked" in result.output and "2 filters already: datadog, splunk" in result.output
    assert set(filters_of(logs, "/ecs/web")) == {"datadog", "splunk"}
    assert "sluice-dev" in filters_of(logs, "/ecs/api")


def test_cli_dry_run_writes_nothing(logs: Any, aws: Any) -> None:
    """`--dry-run --save` neither subscribes nor saves the patterns."""
    make_groups(logs, "/ecs/web")
    result = run_cli("subscribe", "--pattern", "/ecs/**", "--dry-run", "--save")
    assert result.exit_code == 0
    assert "would-subscribe" in result.output
    assert filters_of(logs, "/ecs/web") == {}
    assert subs.read_config(aws.dynamodb, aws.rules_table) is None


def test_cli_save_keeps_settings_for_log_group_created(logs: Any, aws: Any) -> None:
    """`--save` stores patterns, excludes, filter pattern and destination in the rules table."""
    make_groups(logs, "/ecs/web")
    result = run_cli(
        "subscribe",
        "--pattern",
        "/ecs/**",
        "--exclude",
        "/ecs/tmp/*",
        "--filter-pattern",
        "",
        "--save",
    )
    assert result.exit_code == 0, result.output
    cfg = subs.read_config(aws.dynamodb, aws.rules_table)
    assert cfg is not None
    assert (cfg.patterns, cfg.excludes, cfg.destination) == (
        ("/ecs/**",),
        ("/ecs/tmp/*",),
        "lambda",
    )


def test_cli_adds_logs_permission_to_the_function(logs: Any) -> None:
    """Subscribing to Lambda first lets CloudWatch Logs invoke the function, once."""
    make_groups(logs, "/ecs/web")
    run_cli("subscribe", "--pattern", "/ecs/**")
    lam = boto3.client("lambda", region_name=REGION)
    policy = json.loads(lam.get_policy(FunctionName="sluice-dev-cloudwatch_logs")["Policy"])
    assert [s["Principal"]["Service"] for s in policy["Statement"]] == ["logs.amazonaws.com"]


def test_cli_unsubscribe_leaves_foreign_filters(logs: Any) -> None:
    """`sluice unsubscribe` removes Sluice's filters everywhere and no one else's."""
    make_groups(logs, "/ecs/web", "/ecs/api")
    add_foreign(logs, "/ecs/web", "datadog")
    run_cli("subscribe", "--pattern", "/ecs/**")
    result = run_cli("unsubscribe")
    assert result.exit_code == 0
    assert filters_of(logs, "/ecs/api") == {}
    assert list(filters_of(logs, "/ecs/web")) == ["datadog"]


def test_cli_coverage_counts_each_state(logs: Any) -> None:
    """`sluice subscriptions` tells subscribed, not-subscribed, blocked and excluded apart."""
    make_groups(logs, "/ecs/a", "/ecs/b", "/ecs/c", *SLUICE_GROUPS)
    subs.subscribe_group(logs, "/ecs/a", lambda_dest())
    add_foreign(logs, "/ecs/c", "datadog")
    add_foreign(logs, "/ecs/c", "splunk")
    result = run_cli("subscriptions", "--pattern", "**", "--show", "all")
    assert result.exit_code == 0
    rows = {
        line.split()[1]: line.split()[0]
        for line in result.output.splitlines()
        if line.split() and line.split()[1:2] and line.split()[1].startswith("/")
    }
    assert rows["/ecs/a"] == "subscribed"
    assert rows["/ecs/b"] == "not-subscribed"
    assert rows["/ecs/c"] == "blocked"
    assert all(rows[g] == "excluded" for g in SLUICE_GROUPS)


# ---------------------------------------------------------------- loop guard
def test_subscribing_everything_does_not_loop(logs: Any, aws: Any, load_event: Any) -> None:
    """With `**` saved, neither the CLI nor log_group_created puts a filter on any Sluice group.

    A loop needs Sluice's own log output to reach Sluice: its groups get no filter
    from either path, CreateLogGroup calls made by its own roles are ignored, and
    a payload that still arrives from one of its groups is recognisable.
    """
    make_groups(logs, "/ecs/web", *SLUICE_GROUPS)
    assert run_cli("subscribe", "--pattern", "**", "--save").exit_code == 0
    for group in SLUICE_GROUPS:
        event = copy.deepcopy(load_event("log_group_created"))
        event["detail"]["requestParameters"]["logGroupName"] = group
        out = created(event)
        assert out["status"] == "skipped" and "loop guard" in out["detail"]
    by_sluice = copy.deepcopy(load_event("log_group_created"))
    by_sluice["detail"]["userIdentity"]["arn"] = (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/sluice-dev-s3_objects/sluice-dev-s3_objects"
    )
    by_sluice["detail"]["requestParameters"]["logGroupName"] = "/aws/lambda/renamed-stack-fn"
    assert created(by_sluice)["status"] == "skipped"
    for group in SLUICE_GROUPS:
        assert filters_of(logs, group) == {}
        assert subs.is_sluice_log_group(group)
    assert "sluice-dev" in filters_of(logs, "/ecs/web")


# ---------------------------------------------------------------- log_group_created
def test_new_matching_group_is_subscribed(logs: Any, aws: Any, load_event: Any) -> None:
    """The sample CreateLogGroup for /aws/lambda/checkout-api subscribes it to cloudwatch_logs."""
    save_config(aws, patterns=("/aws/lambda/*",))
    logs.create_log_group(logGroupName="/aws/lambda/checkout-api")
    out = created(load_event("log_group_created"))
    assert (out["status"], out["log_group"]) == ("subscribed", "/aws/lambda/checkout-api")
    assert filters_of(logs, "/aws/lambda/checkout-api")["sluice-dev"]["destinationArn"] == (
        FUNCTION_ARN
    )


def test_new_group_through_the_chalice_handler(logs: Any, aws: Any, load_event: Any) -> None:
    """app.py's `log_group_created` hands Chalice's CloudWatchEvent to the same code."""
    from app import app

    save_config(aws, patterns=("/aws/lambda/*",), filter_pattern="?ERROR")
    logs.create_log_group(logGroupName="/aws/lambda/checkout-api")
    out = app.handler_map["log_group_created"](load_event("log_group_created"), Ctx())
    assert out["status"] == "subscribed"
    assert filters_of(logs, "/aws/lambda/checkout-api")["sluice-dev"]["filterPattern"] == "?ERROR"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        pytest.param(
            {"requestParameters": {"logGroupName": "/ecs/web"}},
            "no pattern matches",
            id="group matches no pattern",
        ),
        pytest.param(
            {"errorCode": "ResourceAlreadyExistsException"},
            "CreateLogGroup failed: ResourceAlreadyExistsException",
            id="failed API call",
        ),
        pytest.param(
            {"requestParameters": {}},
            "event carries no requestParameters.logGroupName",
            id="no group name",
        ),
    ],
)
def test_events_that_subscribe_nothing(
    logs: Any, aws: Any, load_event: Any, change: dict[str, Any], detail: str
) -> None:
    """Non-matching groups, failed calls and nameless events are skipped with the reason."""
    save_config(aws, patterns=("/aws/lambda/*",))
    make_groups(logs, "/aws/lambda/checkout-api", "/ecs/web")
    event = copy.deepcopy(load_event("log_group_created"))
    event["detail"].update(change)
    out = created(event)
    assert (out["status"], out["detail"]) == ("skipped", detail)
    assert filters_of(logs, "/ecs/web") == {}
    assert filters_of(logs, "/aws/lambda/checkout-api") == {}


def test_nothing_is_subscribed_before_config_is_saved(logs: Any, load_event: Any) -> None:
    """Until `sluice subscribe --save` has run, new groups are left alone and the log says why."""
    logs.create_log_group(logGroupName="/aws/lambda/checkout-api")
    out = created(load_event("log_group_created"))
    assert out["status"] == "skipped" and "--save" in out["detail"]


def test_new_group_with_two_foreign_filters_is_blocked(
    logs: Any, aws: Any, load_event: Any
) -> None:
    """A group that already has two filters by the time Sluice sees it is reported blocked."""
    save_config(aws, patterns=("/aws/lambda/*",))
    logs.create_log_group(logGroupName="/aws/lambda/checkout-api")
    add_foreign(logs, "/aws/lambda/checkout-api", "a")
    add_foreign(logs, "/aws/lambda/checkout-api", "b")
    out = created(load_event("log_group_created"))
    assert out["status"] == "blocked"
    assert set(filters_of(logs, "/aws/lambda/checkout-api")) == {"a", "b"}


def test_saved_kinesis_destination_targets_the_stream(logs: Any, aws: Any, load_event: Any) -> None:
    """With `destination: kinesis` saved, new groups feed the fan-in stream."""
    save_config(aws, patterns=("**",), destination="kinesis")
    logs.create_log_group(logGroupName="/aws/lambda/checkout-api")
    out = created(load_event("log_group_created"))
    assert out["status"] == "subscribed"
    f = filters_of(logs, "/aws/lambda/checkout-api")["sluice-dev"]
    assert f["destinationArn"] == STREAM_ARN


def test_group_not_yet_visible_is_retried(logs: Any, aws: Any, load_event: Any) -> None:
    """A group CloudWatch Logs does not show yet is retried a few times before being called gone."""
    save_config(aws, patterns=("/aws/lambda/*",))
    naps: list[float] = []

    def sleep(s: float) -> None:
        naps.append(s)
        if len(naps) == 2:  # the group becomes visible after the second wait
            logs.create_log_group(logGroupName="/aws/lambda/checkout-api")

    out = subs.on_log_group_created(
        load_event("log_group_created"),
        CREATED_ARN,
        logs=logs,
        ddb=aws.dynamodb,
        rules_table=aws.rules_table,
        sleep=sleep,
    )
    assert out.status == "subscribed" and naps == [0.5, 1.0]


def test_saved_config_rejects_unknown_keys(aws: Any) -> None:
    """A hand-edited config item with a misspelt key is an error naming the key."""
    aws.dynamodb.put_item(
        TableName=aws.rules_table,
        Item={
            "pk": {"S": "config"},
            "sk": {"S": "subscriptions"},
            "body": {"S": json.dumps({"patterns": ["**"], "exclude": ["/x"]})},
        },
    )
    with pytest.raises(SubscriptionError, match="exclude"):
        subs.read_config(aws.dynamodb, aws.rules_table)


def test_destination_follows_the_function_arn() -> None:
    """log_group_created derives stage, account and region of its destination from its own ARN."""
    arn = "arn:aws-cn:lambda:cn-north-1:210987654321:function:sluice-prod-log_group_created"
    d = Destination.from_function_arn(arn, "lambda")
    assert d.filter_name == "sluice-prod"
    assert d.arn == "arn:aws-cn:lambda:cn-north-1:210987654321:function:sluice-prod-cloudwatch_logs"
    with pytest.raises(SubscriptionError):
        Destination.from_function_arn("arn:aws:lambda:us-east-1:1:function:other", "lambda")


# ---------------------------------------------------------------- backfill
def test_lines_written_before_the_subscription_are_backfilled(
    logs: Any, aws: Any, load_event: Any
) -> None:
    """A job's first lines, logged before its group was subscribed, reach cloudwatch_logs."""
    from chalicelib.aws import Clients
    from chalicelib.sources import cloudwatch

    save_config(aws, patterns=("/aws/lambda/*",))
    logs.create_log_group(logGroupName="/aws/lambda/checkout-api")
    write_lines(logs, "/aws/lambda/checkout-api", "2026/11/26/[$LATEST]a", ["START", "charged"])
    write_lines(logs, "/aws/lambda/checkout-api", "2026/11/26/[$LATEST]b", ["declined"])
    clients, lam = Clients(), Invocations()
    clients.set("lambda", lam)
    out = created(load_event("log_group_created"), clients)
    assert (out["status"], out["backfilled"]) == ("subscribed", 3)
    assert {c["FunctionName"] for c in lam.calls} == {FUNCTION_ARN}
    assert {c["InvocationType"] for c in lam.calls} == {"Event"}
    batches = [cloudwatch.decode(json.loads(c["Payload"]), REGION) for c in lam.calls]
    by_stream = {b.source["log_stream"]: [e.record["message"] for e in b.events] for b in batches}
    assert by_stream == {
        "2026/11/26/[$LATEST]a": ["START", "charged"],
        "2026/11/26/[$LATEST]b": ["declined"],
    }
    assert all(b.source["subscription_filters"] == ["sluice-dev-backfill"] for b in batches)


def test_backfill_splits_payloads_under_the_async_limit(logs: Any) -> None:
    """Large backlogs go out in several payloads, each under the 256 KB async invoke quota."""
    make_groups(logs, "/ci/build-7")
    write_lines(logs, "/ci/build-7", "s", [f"{i:05d} " + "x" * 2000 for i in range(400)])
    sent: list[dict[str, Any]] = []
    n, truncated = subs.backfill(logs, "/ci/build-7", sent.append, owner=ACCOUNT, filter_name="f")
    assert (n, truncated) == (400, False)
    assert len(sent) > 1
    assert all(len(json.dumps(p)) < 256 * 1024 for p in sent)


def test_backfill_stops_at_its_cap_and_says_so(logs: Any) -> None:
    """A group that wrote more than the cap is backfilled up to it and reported truncated."""
    make_groups(logs, "/ci/build-8")
    write_lines(logs, "/ci/build-8", "s", [f"line {i}" for i in range(30)])
    sent: list[dict[str, Any]] = []
    n, truncated = subs.backfill(
        logs, "/ci/build-8", sent.append, owner=ACCOUNT, filter_name="f", max_events=10
    )
    assert (n, truncated) == (10, True)


def test_nothing_is_backfilled_into_a_group_not_subscribed(
    logs: Any, aws: Any, load_event: Any
) -> None:
    """A blocked group's lines are not read back: Sluice does not cover it."""
    from chalicelib.aws import Clients

    save_config(aws, patterns=("/aws/lambda/*",))
    logs.create_log_group(logGroupName="/aws/lambda/checkout-api")
    write_lines(logs, "/aws/lambda/checkout-api", "s", ["hello"])
    add_foreign(logs, "/aws/lambda/checkout-api", "a")
    add_foreign(logs, "/aws/lambda/checkout-api", "b")
    clients, lam = Clients(), Invocations()
    clients.set("lambda", lam)
    out = created(load_event("log_group_created"), clients)
    assert (out["status"], out["backfilled"], lam.calls) == ("blocked", 0, [])
