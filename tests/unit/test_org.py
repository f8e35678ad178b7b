"""One Sluice for an organization: who may send, where events came from, rules on origin,
the central template's receiving side (chalicelib/org.py, rules/origin.py, infra/)."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib import handlers, org
from chalicelib.actions.context import Offline
from chalicelib.actions.slack import SlackAction
from chalicelib.errors import RulesInvalid
from chalicelib.pipeline import route
from chalicelib.rules.compile import RuleSet
from chalicelib.rules.schema import load_document
from chalicelib.rules.store import write_document
from chalicelib.sources.s3 import parse_sqs_body, s3_origin

from .factories import SOURCE, log_event
from .infra_scripts import load as load_infra

ROOT = Path(__file__).resolve().parents[2]
MEMBER = "111111111111"
STRANGER = "999999999999"


def payload(owner: str, group: str, messages: list[str], filters: list[str] | None = None) -> dict:
    """A CloudWatch Logs subscription event as Lambda receives it."""
    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": group,
        "logStream": "2026/11/26/[$LATEST]abc",
        "subscriptionFilters": filters or ["sluice-prod"],
        "logEvents": [
            {"id": f"{i:056d}", "timestamp": 1795687621000 + i, "message": m}
            for i, m in enumerate(messages)
        ],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()}}


def doc(rules: list[dict[str, Any]], accounts: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"rules": rules}
    if accounts is not None:
        out["accounts"] = accounts
    return out


ACCOUNTS = {"shop-prod": MEMBER, "shop-staging": "222222222222"}


# ---------------------------------------------------------------- rules: account and region
def src(account: str | None, region: str | None) -> dict[str, Any]:
    return {**SOURCE, "account": account, "region": region}


MATCHES = [
    pytest.param({"account": MEMBER}, src(MEMBER, "eu-west-1"), True, id="account id"),
    pytest.param({"account": MEMBER}, src("222222222222", "eu-west-1"), False, id="other id"),
    pytest.param({"account": "shop-prod"}, src(MEMBER, "eu-west-1"), True, id="alias"),
    pytest.param(
        {"account": ["shop-staging", "3333*"]}, src("333300001111", "x-y-1"), True, id="pattern"
    ),
    pytest.param({"account": ["shop-staging", "3333*"]}, src(MEMBER, "x"), False, id="neither"),
    pytest.param({"region": "eu-*"}, src(MEMBER, "eu-central-1"), True, id="region pattern"),
    pytest.param({"region": "eu-*"}, src(MEMBER, "us-east-1"), False, id="region other"),
    pytest.param(
        {"region": ["us-east-1", "eu-west-1"]}, src(MEMBER, "eu-west-1"), True, id="region list"
    ),
    pytest.param({"account": MEMBER}, src(None, "eu-west-1"), False, id="no account"),
    pytest.param(
        {"account": "shop-prod", "region": "us-*"}, src(MEMBER, "eu-west-1"), False, id="both"
    ),
]


@pytest.mark.parametrize(("match", "source", "hit"), MATCHES)
def test_rules_match_on_account_and_region(
    match: dict[str, Any], source: dict[str, Any], hit: bool
) -> None:
    """`match.account` (ids, aliases, patterns) and `match.region` select events by origin."""
    d = load_document(doc([{"id": "r", "match": match, "actions": ["drop"]}], ACCOUNTS))
    routed = route([log_event(source=source)], RuleSet(d.rules))
    assert (routed.dropped == {"r": 1}) is hit


BAD = [
    pytest.param({"match": {"account": "shop-dev"}}, None, "match.account", id="unknown alias"),
    pytest.param({"match": {"account": "12345"}}, None, "12 digits", id="short id"),
    pytest.param({"match": {"account": 111111111111}}, None, "quote", id="unquoted id"),
    pytest.param({"match": {"account": []}}, None, "non-empty", id="empty list"),
    pytest.param({"match": {"region": "EU West"}}, None, "region name", id="bad region"),
    pytest.param({}, {"prod": 111111111111}, "12-digit", id="alias to a number"),
    pytest.param({}, {"1prod": MEMBER}, "alias", id="alias not a name"),
    pytest.param({}, {"a": MEMBER, "b": MEMBER}, "already has the alias", id="two aliases"),
    pytest.param({}, ["prod"], "mapping", id="accounts not a mapping"),
]


@pytest.mark.parametrize(("rule", "accounts", "reason"), BAD)
def test_invalid_origin_matches_and_aliases_are_refused(
    rule: dict[str, Any], accounts: Any, reason: str
) -> None:
    """A wrong account, region or alias is an error naming it, never a rule that never fires."""
    with pytest.raises(RulesInvalid) as e:
        load_document(doc([{"id": "r", **rule}], accounts if accounts is not None else ACCOUNTS))
    assert reason in str(e.value)


def test_aliases_survive_the_rules_store(aws: Any) -> None:
    """The `accounts:` section is stored with the rules and reaches the compiled rule set."""
    from chalicelib.rules.store import RuleStore, TableRules

    d = load_document(doc([{"id": "r", "match": {"account": "shop-prod"}}], ACCOUNTS))
    write_document(aws.dynamodb, aws.rules_table, d)
    rules = RuleStore(TableRules(aws.dynamodb, aws.rules_table), 60).get()
    assert rules.account_names == {MEMBER: "shop-prod", "222222222222": "shop-staging"}


# ---------------------------------------------------------------- where events came from
S3_KEYS = [
    pytest.param(
        "AWSLogs/111111111111/CloudTrail/eu-west-1/2026/11/26/x.json.gz",
        "us-east-1",
        (MEMBER, "eu-west-1"),
        id="CloudTrail layout",
    ),
    pytest.param(
        "AWSLogs/o-a1b2c3d4e5/111111111111/CloudTrail/ap-southeast-2/2026/x.json.gz",
        None,
        (MEMBER, "ap-southeast-2"),
        id="organization trail",
    ),
    pytest.param(
        "alb/AWSLogs/111111111111/elasticloadbalancing/us-gov-west-1/2026/x.log.gz",
        None,
        (MEMBER, "us-gov-west-1"),
        id="prefixed ALB layout",
    ),
    pytest.param("app/2026/11/26/web.log", "eu-west-1", (None, "eu-west-1"), id="plain key"),
    pytest.param("AWSLogs/12345/x/eu-west-1/a", "eu-west-1", (None, "eu-west-1"), id="no id"),
    pytest.param(
        "AWSLogs/111111111111/vpcflowlogs/not-a-region/x",
        "eu-north-1",
        (MEMBER, "eu-north-1"),
        id="region from the notification",
    ),
]


@pytest.mark.parametrize(("key", "region", "expected"), S3_KEYS)
def test_s3_objects_name_their_account_and_region(
    key: str, region: str | None, expected: tuple[str | None, str | None]
) -> None:
    """AWS log layouts name the account (and region) in the key; else the notification's."""
    assert s3_origin(key, region) == expected


def test_an_eventbridge_notification_names_the_bucket_account() -> None:
    """An EventBridge Object Created event gives its account and region to the object."""
    body = json.dumps(
        {
            "detail-type": "Object Created",
            "account": MEMBER,
            "region": "eu-west-1",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "app/x.log", "etag": "e"}},
        }
    )
    (ref,) = parse_sqs_body(body)
    assert (ref.account, ref.region) == (MEMBER, "eu-west-1")


FILTERS = [
    pytest.param(["sluice-org-eu-west-1"], "eu-west-1", id="member subscription"),
    pytest.param(["other", "sluice-org-us-gov-east-1"], "us-gov-east-1", id="second filter"),
    pytest.param(["sluice-prod"], None, id="central filter"),
    pytest.param(["sluice-org-nowhere"], None, id="not a region"),
    pytest.param("sluice-org-eu-west-1", None, id="not a list"),
]


@pytest.mark.parametrize(("filters", "region"), FILTERS)
def test_a_member_subscription_names_its_region(filters: Any, region: str | None) -> None:
    """CloudWatch data carries no region: a member's filter name `sluice-org-<region>` does."""
    assert org.region_from_filters(filters) == region


DESTINATIONS = [
    pytest.param(
        "arn:aws:logs:eu-west-1:123456789012:destination:sluice-prod", "eu-west-1", None, id="ok"
    ),
    pytest.param(
        "arn:aws:logs:us-east-1:123456789012:destination:sluice-prod",
        "eu-west-1",
        "is in us-east-1, the log groups in eu-west-1",
        id="wrong region",
    ),
    pytest.param(
        "arn:aws:kinesis:eu-west-1:123456789012:stream/sluice-fan-in",
        "eu-west-1",
        "not a CloudWatch Logs destination",
        id="a stream",
    ),
]


@pytest.mark.parametrize(("arn", "region", "problem"), DESTINATIONS)
def test_a_destination_in_another_region_is_refused_clearly(
    arn: str, region: str, problem: str | None
) -> None:
    """Subscribing to a destination of another region says so, and what to do."""
    got = org.destination_region_problem(arn, region)
    assert (got is None) if problem is None else (problem in str(got))


# ---------------------------------------------------------------- senders and last seen
def test_data_from_an_account_outside_the_list_is_dead_lettered_with_the_account(
    aws: Any, monkeypatch: pytest.MonkeyPatch, archive: Any, dlq: Any, lambda_context: Any
) -> None:
    """With allowed accounts set, a payload whose owner is not one is dead-lettered naming
    the account, never archived; an allowed member's is archived with its account."""
    monkeypatch.setenv("SLUICE_ALLOWED_ACCOUNTS", f"123456789012,{MEMBER}")
    from chalicelib.aws import Clients
    from chalicelib.pipeline import Runtime
    from chalicelib.settings import Settings

    rt = Runtime(Settings.from_env(), Clients())
    refused = handlers.handle_cloudwatch_logs(
        payload(STRANGER, "/aws/lambda/intruder", ["a", "b"]), lambda_context, rt
    )
    accepted = handlers.handle_cloudwatch_logs(
        payload(MEMBER, "/aws/lambda/checkout", ["c"], ["sluice-org-eu-west-1"]),
        lambda_context,
        rt,
    )
    assert (refused["received"], refused["dead_lettered"], refused["archived"]) == (2, 2, 0)
    assert (accepted["received"], accepted["archived"]) == (1, 1)
    (letter,) = dlq.messages()
    assert STRANGER in letter["reason"] and letter["stage"] == org.REFUSED_STAGE
    (line,) = archive.lines()
    assert (line["source"]["account"], line["source"]["region"]) == (MEMBER, "eu-west-1")
    assert (line["account"], line["region"]) == (MEMBER, "eu-west-1")


def test_without_a_list_every_sender_is_accepted(
    aws: Any, runtime: Any, lambda_context: Any
) -> None:
    """No SLUICE_ALLOWED_ACCOUNTS: the destination policy alone admits senders."""
    out = handlers.handle_cloudwatch_logs(payload(STRANGER, "/x", ["a"]), lambda_context, runtime)
    assert (out["archived"], out["dead_lettered"]) == (1, 0)


def test_last_seen_is_written_once_per_invocation_and_never_backwards(aws: Any) -> None:
    """One write per (account, region) per invocation, and per minute in one container; an
    older time never replaces a newer."""
    calls: list[dict[str, Any]] = []

    class Counting:
        def update_item(self, **kw: Any) -> Any:
            calls.append(kw)
            return aws.dynamodb.update_item(**kw)

    counting = Counting()
    seen = org.LastSeen(counting, aws.state_table)
    assert seen.note({(MEMBER, "eu-west-1"), (MEMBER, "us-east-1")}, "f", now_ms=2000) == 2
    assert seen.note({(MEMBER, "eu-west-1")}, "f", now_ms=3000) == 0
    assert len(calls) == 2
    # The next invocation of the same container, within a minute: no write either.
    assert org.LastSeen(counting, aws.state_table).note({(MEMBER, "eu-west-1")}, "f", 30_000) == 0
    assert len(calls) == 2
    # Another container (another client), with an older clock.
    org.LastSeen(aws.dynamodb, aws.state_table).note({(MEMBER, "eu-west-1")}, "g", now_ms=1000)
    got = org.read_last_seen(aws.dynamodb, aws.state_table)
    assert got[(MEMBER, "eu-west-1")] == {"last_ms": 2000, "via": "f"}
    assert set(got) == {(MEMBER, "eu-west-1"), (MEMBER, "us-east-1")}


# ---------------------------------------------------------------- alerts name the origin
def test_alerts_name_the_account_alias_and_region_and_link_the_console() -> None:
    """A Slack alert shows the account's alias and id, the region, and a console link there."""
    ev = log_event(source=src(MEMBER, "eu-west-1"))
    org.name_accounts([ev], {MEMBER: "shop-prod"})
    assert SOURCE.get("account_name") is None  # shared sources are not changed
    act = SlackAction("r", {"channel": "#ops", "text": "{message}"}, Offline())
    blocks, _ = act.build([ev])
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert "*Account*\nshop-prod (111111111111)" in fields
    assert "*Region*\neu-west-1" in fields
    context = blocks[-1]["elements"][0]["text"]
    assert "<https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#" in context


# ---------------------------------------------------------------- the central template


def central(params: dict[str, str]) -> Any:
    cfn, package = load_infra("cfn"), load_infra("package")
    return cfn.Stack(package.load_cfn(ROOT / "infra" / "resources.yaml"), params)


def resource(stack: Any, lid: str) -> dict[str, Any] | None:
    if not stack.exists(lid):
        return None
    props: dict[str, Any] = stack.eval(stack.template["Resources"][lid]["Properties"])
    return props


def test_the_receiving_side_is_off_by_default() -> None:
    """No organization, no account list: no destination, no role, no member statement."""
    stack = central({"EnableKinesis": "true"})
    assert resource(stack, "OrgDestination") is None
    assert resource(stack, "OrgDestinationRole") is None
    policy = resource(stack, "ObjectsQueuePolicy")
    assert policy is not None
    sids = [s["Sid"] for s in policy["PolicyDocument"]["Statement"]]
    assert sids == ["S3NotificationsFromThisAccount", "TlsOnly"]


def test_the_destination_admits_the_organization_only() -> None:
    """OrganizationId: the destination policy admits subscriptions by principals of that
    organization; CloudWatch Logs may assume its role for that organization's sources."""
    stack = central({"EnableKinesis": "true", "OrganizationId": "o-a1b2c3d4e5"})
    dest = resource(stack, "OrgDestination")
    assert dest is not None
    assert dest["TargetArn"] == "arn:aws:kinesis:eu-west-1:123456789012:stream/sluice-fan-in"
    (st,) = json.loads(dest["DestinationPolicy"])["Statement"]
    assert st["Principal"] == "*"
    assert st["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    assert sorted(st["Action"]) == ["logs:PutAccountPolicy", "logs:PutSubscriptionFilter"]
    assert st["Resource"] == "arn:aws:logs:eu-west-1:123456789012:destination:sluice-dev"
    role = resource(stack, "OrgDestinationRole")
    assert role is not None
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {"StringEquals": {"aws:SourceOrgID": "o-a1b2c3d4e5"}}
    (put,) = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert put["Action"] == "kinesis:PutRecord"
    queue = resource(stack, "ObjectsQueuePolicy")
    assert queue is not None
    member = queue["PolicyDocument"]["Statement"][1]
    assert member["Condition"] == {
        "ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"},
        "StringEquals": {"aws:SourceOrgID": "o-a1b2c3d4e5"},
    }
    assert stack.eval(stack.template["Outputs"]["AllowedAccounts"]["Value"]) == ""


def test_the_destination_admits_listed_accounts_only() -> None:
    """MemberAccounts: those accounts as principals; the functions get them as the list
    of allowed senders (with the central account)."""
    accounts = f"{MEMBER},222222222222"
    stack = central({"EnableKinesis": "true", "MemberAccounts": accounts})
    dest = resource(stack, "OrgDestination")
    assert dest is not None
    (st,) = json.loads(dest["DestinationPolicy"])["Statement"]
    assert st["Principal"] == {"AWS": [MEMBER, "222222222222"]}
    assert "Condition" not in st
    queue = resource(stack, "ObjectsQueuePolicy")
    assert queue is not None
    member = queue["PolicyDocument"]["Statement"][1]
    assert member["Condition"]["StringEquals"] == {"aws:SourceAccount": [MEMBER, "222222222222"]}
    allowed = stack.eval(stack.template["Outputs"]["AllowedAccounts"]["Value"])
    assert allowed == f"123456789012,{accounts}"


def test_without_the_stream_only_the_s3_path_is_open() -> None:
    """An organization without EnableKinesis: member buckets may notify; no destination."""
    stack = central({"OrganizationId": "o-a1b2c3d4e5"})
    assert resource(stack, "OrgDestination") is None
    queue = resource(stack, "ObjectsQueuePolicy")
    assert queue is not None and len(queue["PolicyDocument"]["Statement"]) == 3


# ---------------------------------------------------------------- per-group members
REGION = "us-east-1"
DEST = f"arn:aws:logs:{REGION}:123456789012:destination:sluice-prod"


def member_hub(aws: Any, account: str = MEMBER) -> Any:
    """A member account's logs client (assumed role, moto) with CloudWatch's destinations
    (sluice_cli/org_local.py), and the central destination in front of a stream."""
    import boto3

    from sluice_cli.org_local import LocalDestinations

    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName="sluice-fan-in", ShardCount=1)
    central = boto3.client("logs", region_name=REGION)
    central.put_destination(
        destinationName="sluice-prod",
        targetArn=f"arn:aws:kinesis:{REGION}:123456789012:stream/sluice-fan-in",
        roleArn="arn:aws:iam::123456789012:role/sluice-prod-org-destination",
    )
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/sluice-org-subscriber-{REGION}",
        RoleSessionName="sluice-test",
    )["Credentials"]
    logs = boto3.client(
        "logs",
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return LocalDestinations(central, kinesis).add_member(account, REGION, logs)


def test_per_group_subscribes_member_groups_to_the_central_destination(aws: Any) -> None:
    """`sluice org subscribe`'s work: matching member groups get `sluice-org-<region>` to
    the destination with the member's delivery role; Sluice's own groups never; again is
    unchanged."""
    from chalicelib.subscriptions.patterns import Patterns
    from sluice_cli.org import subscribe_member

    logs = member_hub(aws)
    for g in ("/ecs/orders", "/ecs/web", "/aws/lambda/sluice-prod-cloudwatch_logs"):
        logs.create_log_group(logGroupName=g)
    sel = Patterns(("/ecs/*", "/aws/lambda/*"))
    first = subscribe_member(logs, MEMBER, REGION, DEST, patterns=sel)
    assert sorted((o.log_group, o.status) for o in first) == [
        ("/ecs/orders", "subscribed"),
        ("/ecs/web", "subscribed"),
    ]
    (f,) = logs.describe_subscription_filters(logGroupName="/ecs/orders")["subscriptionFilters"]
    assert (f["filterName"], f["destinationArn"]) == (org.filter_name(REGION), DEST)
    assert f["roleArn"] == f"arn:aws:iam::{MEMBER}:role/sluice-org-delivery-{REGION}"
    again = subscribe_member(logs, MEMBER, REGION, DEST, patterns=sel)
    assert {o.status for o in again} == {"unchanged"}


def test_a_destination_in_another_region_fails_at_subscribe_time(aws: Any) -> None:
    """Per group, and log_group_created in a member: a destination of another region is
    refused before any call, naming both regions."""
    from chalicelib.subscriptions.created import on_log_group_created
    from chalicelib.subscriptions.patterns import Patterns, SubscriptionError
    from sluice_cli.org import subscribe_member

    logs = member_hub(aws)
    logs.create_log_group(logGroupName="/ecs/orders")
    wrong = DEST.replace(REGION, "eu-west-1")
    with pytest.raises(SubscriptionError, match="is in eu-west-1, the log groups in us-east-1"):
        subscribe_member(logs, MEMBER, REGION, wrong, patterns=Patterns(("/ecs/*",)))
    assert (
        logs.describe_subscription_filters(logGroupName="/ecs/orders")["subscriptionFilters"] == []
    )

    from chalicelib.subscriptions.config import SubscriptionConfig, write_config

    write_config(aws.dynamodb, aws.rules_table, SubscriptionConfig(patterns=("/ecs/*",)))
    event = {"detail": {"requestParameters": {"logGroupName": "/ecs/orders"}}}
    fn = f"arn:aws:lambda:{REGION}:{MEMBER}:function:sluice-prod-log_group_created"
    kw = {
        "logs": logs,
        "ddb": aws.dynamodb,
        "rules_table": aws.rules_table,
        "sleep": lambda s: None,
    }
    out = on_log_group_created(event, fn, central=(wrong, None), **kw)
    assert out.status == "failed" and "eu-west-1" in out.detail
    role = f"arn:aws:iam::{MEMBER}:role/sluice-org-delivery-{REGION}"
    out = on_log_group_created(event, fn, central=(DEST, role), **kw)
    assert out.status == "subscribed"
    (f,) = logs.describe_subscription_filters(logGroupName="/ecs/orders")["subscriptionFilters"]
    assert (f["destinationArn"], f["roleArn"]) == (DEST, role)


# ---------------------------------------------------------------- loop guard across accounts
def test_a_member_deployment_of_sluice_is_never_routed_back(
    aws: Any, runtime: Any, archive: Any, lambda_context: Any
) -> None:
    """CloudWatch data from a member's own Sluice functions (any stage) arriving through the
    fan-in stream is dropped by the loop guard, counted; the member's other groups archive."""
    from sluice_cli import payloads

    def record(group: str, seq: int) -> dict[str, Any]:
        doc = payloads.log_document(
            group,
            "s1",
            [{"id": str(seq), "timestamp": 1795687621000, "message": "ledger"}],
            owner=MEMBER,
            filters=[org.filter_name("eu-west-1")],
        )
        return payloads.kinesis_record(
            payloads.gzip_bytes(json.dumps(doc).encode()),
            sequence=payloads.sample_sequence(seq),
            partition_key=group,
            arrival=1795687621.0,
        )

    event = {
        "Records": [
            record("/aws/lambda/sluice-staging-cloudwatch_logs", 1),
            record("/aws/lambda/checkout", 2),
        ]
    }
    out = handlers.handle_kinesis_records(event, lambda_context, runtime)
    assert out == {"batchItemFailures": []}
    (line,) = archive.lines()
    assert line["source"]["log_group"] == "/aws/lambda/checkout"
    assert (line["account"], line["region"]) == (MEMBER, "eu-west-1")


ORIGIN_OPTIONS = [
    pytest.param((MEMBER,), (), [{"field": "account", "in": [MEMBER]}], id="one account"),
    pytest.param(
        ("1111*",),
        ("eu-west-1",),
        [{"field": "account", "regex": "^(?:1111.*)$"}, {"field": "region", "in": ["eu-west-1"]}],
        id="pattern and region",
    ),
]


@pytest.mark.parametrize(("accounts", "regions", "conds"), ORIGIN_OPTIONS)
def test_search_filters_by_account_and_region(
    accounts: tuple[str, ...], regions: tuple[str, ...], conds: list[dict[str, Any]]
) -> None:
    """`sluice search --account/--region` are the rules' origin conditions over the source."""
    from sluice_cli.search import origin_conditions

    assert list(origin_conditions(accounts, regions)) == conds


def test_search_refuses_a_bad_account_naming_it() -> None:
    """A short id is a usage error that names it."""
    import click

    from sluice_cli.search import origin_conditions

    with pytest.raises(click.BadParameter, match="'12345': an account id has 12 digits"):
        origin_conditions(("12345",), ())


def test_rules_test_explains_an_origin_that_does_not_match() -> None:
    """`sluice rules test` says a rule failed on the event's account, as the pipeline does."""
    from sluice_cli.explain import explain

    d = load_document(doc([{"id": "r", "match": {"account": "shop-prod"}}], ACCOUNTS))
    rules = RuleSet(d.rules)
    (other,) = explain(log_event(source=src("222222222222", "eu-west-1")), rules).verdicts
    assert not other.matched and f"account in ['{MEMBER}']" in other.reason
    (same,) = explain(log_event(source=src(MEMBER, "eu-west-1")), rules).verdicts
    assert same.matched
