"""One Sluice for an organization, on the local stack: three member accounts (moto keeps
several accounts in one server; each is reached by assuming a role into it), the central
destination in front of the fan-in stream, member data through `kinesis_records` and the
objects queue, a rule on the account, an alert naming it, and `sluice org status`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from chalicelib import org
from chalicelib.loopguard import FUNCTIONS
from sluice_cli import payloads
from sluice_cli.local import LocalStack
from sluice_cli.org import status
from sluice_cli.org_local import LocalDestinations
from sluice_cli.poller import REGION

CENTRAL = "123456789012"  # moto's default account: the stack's own
SHOP_PROD = "111111111111"  # account-level subscription policy
SHOP_STAGING = "222222222222"  # per-group filters; one group blocked by two others
SANDBOX = "333333333333"  # nothing subscribed yet
STRANGER = "999999999999"  # outside the organization
DESTINATION = f"arn:aws:logs:{REGION}:{CENTRAL}:destination:sluice-prod"
RULES = {
    "accounts": {"shop-prod": SHOP_PROD, "shop-staging": SHOP_STAGING},
    "rules": [
        {
            "id": "prod-payments",
            "match": {
                "tag": "aws.lambda.**",
                "account": "shop-prod",
                "region": "us-*",
                "where": [{"field": "message", "contains": "payment failed"}],
            },
            "actions": [{"slack": {"channel": "#ops", "text": "{message}"}}],
        }
    ],
}


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """A local stack whose functions accept CloudWatch data from the organization's
    accounts only (what the template sets from MemberAccounts)."""
    allowed = ",".join((CENTRAL, SHOP_PROD, SHOP_STAGING, SANDBOX))
    monkeypatch.setenv("SLUICE_ALLOWED_ACCOUNTS", allowed)
    with LocalStack(poll_interval_s=0.05, kinesis_streams=("sluice-fan-in",)) as s:
        yield s


def member(stack: LocalStack, account: str, service: str) -> Any:
    """A client acting as `account` (moto: the assumed role's credentials are that account's)."""
    creds = stack.clients.get("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/sluice-org-reader-{REGION}",
        RoleSessionName="sluice-test",
    )["Credentials"]
    return boto3.client(
        service,
        endpoint_url=stack.endpoint,
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def log(logs: Any, group: str, *messages: str) -> None:
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s1",
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )


def selection(*more: str) -> str:
    own = [f"/aws/lambda/sluice-prod-{fn}" for fn in FUNCTIONS]
    return "LogGroupName NOT IN [" + ", ".join(json.dumps(g) for g in [*own, *more]) + "]"


def test_an_organization_sends_to_one_sluice(stack: LocalStack) -> None:
    """Member log groups reach the centre through the destination and kinesis_records with
    their account and region; a rule on the account alerts naming the alias; a member
    bucket's object arrives through the central queue; a stranger's data is dead-lettered;
    `sluice org status` reports each account's coverage and when it last sent data."""
    assert stack.slack is not None and stack.resources is not None
    stack.apply_rules(RULES)
    fan_in = f"arn:aws:kinesis:{REGION}:{CENTRAL}:stream/sluice-fan-in"
    stack.clients.get("logs").put_destination(
        destinationName="sluice-prod",
        targetArn=fan_in,
        roleArn=f"arn:aws:iam::{CENTRAL}:role/sluice-prod-org-destination",
    )
    hub = LocalDestinations(stack.clients.get("logs"), stack.clients.get("kinesis"))

    # shop-prod: an account-level policy, as the member template deploys it. Its own
    # Sluice deployment's logs are excluded by the policy (and the centre's loop guard).
    prod = hub.add_member(SHOP_PROD, REGION, member(stack, SHOP_PROD, "logs"))
    log(prod, "/aws/lambda/checkout", "payment failed: card declined", "order placed")
    log(prod, "/aws/lambda/sluice-prod-cloudwatch_logs", "ledger line of the member's Sluice")
    policy_doc = {"DestinationArn": DESTINATION, "FilterPattern": "", "Distribution": "Random"}
    prod.put_account_policy(
        policyName=org.filter_name(REGION),
        policyType="SUBSCRIPTION_FILTER_POLICY",
        policyDocument=json.dumps(policy_doc),
        selectionCriteria=selection(),
        scope="ALL",
    )
    # A destination of another region: refused, naming both regions.
    with pytest.raises(Exception, match="is in eu-west-1, the log groups in us-east-1"):
        prod.put_subscription_filter(
            logGroupName="/aws/lambda/checkout",
            filterName=org.filter_name(REGION),
            filterPattern="",
            destinationArn=DESTINATION.replace(REGION, "eu-west-1"),
        )

    # shop-staging: per-group filters; /ecs/legacy already has two filters of others.
    staging = hub.add_member(SHOP_STAGING, REGION, member(stack, SHOP_STAGING, "logs"))
    kinesis_b = member(stack, SHOP_STAGING, "kinesis")
    log(staging, "/ecs/orders", "order 42 shipped")
    log(staging, "/ecs/legacy", "legacy heartbeat")
    for name in ("team-siem", "team-audit"):
        kinesis_b.create_stream(StreamName=name, ShardCount=1)
        staging.put_subscription_filter(
            logGroupName="/ecs/legacy",
            filterName=name,
            filterPattern="",
            destinationArn=f"arn:aws:kinesis:{REGION}:{SHOP_STAGING}:stream/{name}",
        )
    staging.put_subscription_filter(
        logGroupName="/ecs/orders",
        filterName=org.filter_name(REGION),
        filterPattern="",
        destinationArn=DESTINATION,
    )

    # sandbox: a group created just now, not subscribed.
    sandbox = hub.add_member(SANDBOX, REGION, member(stack, SANDBOX, "logs"))
    log(sandbox, "/app/new", "hello")

    assert hub.deliver() == 3  # checkout's two lines and orders' one; nothing else
    # A misconfigured destination policy lets a stranger in: its data reaches the stream.
    stranger = payloads.log_document(
        "/aws/lambda/intruder",
        "s1",
        [{"id": "1", "timestamp": int(time.time() * 1000), "message": "hi"}],
        owner=STRANGER,
    )
    stack.clients.get("kinesis").put_record(
        StreamARN=fan_in,
        Data=payloads.gzip_bytes(json.dumps(stranger).encode()),
        PartitionKey="x",
    )

    # A member bucket (its ALB logs) notifies the central objects queue.
    s3_prod = member(stack, SHOP_PROD, "s3")
    s3_prod.create_bucket(Bucket="shop-prod-alb-logs")
    key = f"AWSLogs/{SHOP_PROD}/elasticloadbalancing/{REGION}/2026/11/26/alb.log"
    body = b"alb request took 3.2s\n"
    etag = s3_prod.put_object(Bucket="shop-prod-alb-logs", Key=key, Body=body)["ETag"]
    note = payloads.s3_notification(
        payloads.s3_record("shop-prod-alb-logs", key, len(body), etag, "0001", region=REGION)
    )
    stack.clients.get("sqs").send_message(
        QueueUrl=stack.resources.objects_queue_url, MessageBody=json.dumps(note)
    )

    lines = wait_for_archive(stack, 4)
    by_message = {ln["record"].get("message"): ln for ln in lines}
    checkout = by_message["payment failed: card declined"]
    assert checkout["tag"] == "aws.lambda.checkout"
    assert (checkout["account"], checkout["region"]) == (SHOP_PROD, REGION)
    assert checkout["source"]["account_name"] == "shop-prod"
    orders = by_message["order 42 shipped"]
    assert (orders["account"], orders["region"]) == (SHOP_STAGING, REGION)
    alb = by_message["alb request took 3.2s"]
    assert (alb["source"]["kind"], alb["account"], alb["region"]) == ("s3", SHOP_PROD, REGION)
    assert not any(
        "intruder" in json.dumps(ln) or "member's Sluice" in json.dumps(ln) for ln in lines
    )

    (alert,) = stack.slack.wait_for(1, timeout=10)
    fields = [f["text"] for b in alert["blocks"] for f in b.get("fields", [])]
    assert f"*Account*\nshop-prod ({SHOP_PROD})" in fields and f"*Region*\n{REGION}" in fields
    context = alert["blocks"][-1]["elements"][0]["text"]
    assert f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}" in context

    letters = dead_letters(stack)
    assert any(STRANGER in m.get("reason", "") for m in letters), letters

    ddb = stack.clients.get("dynamodb")
    last = org.read_last_seen(ddb, stack.names.state_table)
    assert {(SHOP_PROD, REGION), (SHOP_STAGING, REGION)} <= set(last)
    report = {
        c.account: c
        for c in status(
            [SHOP_PROD, SHOP_STAGING, SANDBOX],
            [REGION],
            hub.member_logs,
            central=CENTRAL,
            destination_name="sluice-prod",
            last_seen=last,
            aliases={SHOP_PROD: "shop-prod", SHOP_STAGING: "shop-staging"},
        )
    }
    prod_cov, staging_cov, sandbox_cov = report[SHOP_PROD], report[SHOP_STAGING], report[SANDBOX]
    assert (prod_cov.mode, prod_cov.covered, prod_cov.alias) == ("account-policy", 1, "shop-prod")
    assert [(u.log_group, u.reason) for u in prod_cov.uncovered] == [
        ("/aws/lambda/sluice-prod-cloudwatch_logs", "excluded")
    ]
    assert prod_cov.last_seen_age_s is not None and prod_cov.last_seen_age_s < 600
    assert (staging_cov.mode, staging_cov.covered) == ("per-group", 1)
    (blocked,) = staging_cov.uncovered
    assert (blocked.log_group, blocked.reason) == ("/ecs/legacy", "blocked")
    assert "team-siem" in blocked.detail and "team-audit" in blocked.detail
    assert (sandbox_cov.mode, sandbox_cov.last_seen_ms) == ("none", None)
    assert [(u.log_group, u.reason) for u in sandbox_cov.uncovered] == [("/app/new", "too-new")]


def test_org_status_command_prints_json_per_account_and_region(stack: LocalStack) -> None:
    """`sluice org status --json` assumes the reader role in each account and prints one
    object per account and region; a group nobody subscribed is reported with its reason."""
    from sluice_cli.org import org as org_command

    sandbox = member(stack, SANDBOX, "logs")
    log(sandbox, "/app/new", "hello")
    result = CliRunner().invoke(
        org_command,
        ["status", "--account", SANDBOX, "--account", SHOP_PROD, "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["account"], r["region"], r["mode"]) for r in rows] == [
        (SANDBOX, REGION, "none"),
        (SHOP_PROD, REGION, "none"),
    ]
    assert rows[0]["uncovered"] == [
        {"log_group": "/app/new", "reason": "too-new", "detail": "created less than 10 min ago"}
    ]


def wait_for_archive(stack: LocalStack, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    from chalicelib.actions.archive import read_lines

    s3 = stack.clients.get("s3")
    deadline = time.monotonic() + timeout
    while True:
        stack.poll_all()
        out: list[dict[str, Any]] = []
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=stack.names.archive_bucket, Prefix="archive/"
        ):
            for obj in page.get("Contents", []):
                raw = s3.get_object(Bucket=stack.names.archive_bucket, Key=obj["Key"])["Body"]
                out += read_lines(raw.read())
        if len(out) >= n or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


def dead_letters(stack: LocalStack) -> list[dict[str, Any]]:
    assert stack.resources is not None
    sqs = stack.clients.get("sqs")
    out = []
    for _ in range(5):
        msgs = sqs.receive_message(
            QueueUrl=stack.resources.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        out += [json.loads(m["Body"]) for m in msgs]
        if out:
            break
        time.sleep(0.2)
    return out
