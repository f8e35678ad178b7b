"""What an operator gets from infra/resources.yaml: data that outlives the stack, dead
letters that are watched, alarms, a dashboard that queries what the functions emit, and
optional customer managed keys. Evaluated offline for given parameters (infra/cfn.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib import observe
from chalicelib.event import Ledger

from .infra_scripts import load as load_infra

ROOT = Path(__file__).resolve().parents[2]
SQS_MAX_RETENTION = 1_209_600  # 14 days
CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))


package = load_infra("package")
cfn = load_infra("cfn")
iam = load_infra("iam")
TEMPLATE = package.load_cfn(ROOT / "infra" / "resources.yaml")
FUNCTIONS = package.load_cfn(ROOT / "infra" / "functions.yaml")
RES = TEMPLATE["Resources"]
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/9f8e7d6c-aaaa-bbbb-cccc-1234567890ab"


def stack(**params: str) -> Any:
    return cfn.Stack(TEMPLATE, params)


def props(st: Any, logical_id: str) -> dict[str, Any]:
    result: dict[str, Any] = st.eval(RES[logical_id].get("Properties", {}))
    return result


def of_type(kind: str) -> list[str]:
    return [k for k, r in RES.items() if r["Type"] == kind]


# ---------------------------------------------------------------- data outlives stacks
RETAINED = [
    "ArchiveBucket",
    "RulesTable",
    "StateTable",
    "DeadLetterQueue",
    "FailureQueue",
    "ObjectsDeadLetterQueue",
    "DataKey",
    "AccessLogBucket",
]


@pytest.mark.parametrize("logical_id", RETAINED)
def test_data_is_kept_when_the_stack_goes(logical_id: str) -> None:
    """Archive, tables, dead letters and the key that encrypts them survive a stack
    deletion and a replacement."""
    assert RES[logical_id]["DeletionPolicy"] == "Retain"
    assert RES[logical_id]["UpdateReplacePolicy"] == "Retain"


def test_cfn_lint_informational_checks_are_clean() -> None:
    """cfn-lint, informational findings included (I3011: stateful resources without an
    explicit deletion policy), has nothing to say about resources.yaml."""
    result = subprocess.run(
        [CFN_LINT, "--include-checks", "I", "--", str(ROOT / "infra" / "resources.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_ingest_bucket_is_versioned() -> None:
    """An object overwritten in the ingest bucket before it is read is not lost."""
    p = props(stack(), "IngestBucket")
    assert p["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all("NoncurrentVersionExpiration" in r for r in p["LifecycleConfiguration"]["Rules"])


@pytest.mark.parametrize(
    ("value", "destination"),
    [
        pytest.param("", None, id="off"),
        pytest.param("create", "sluice-dev-access-logs-123456789012-eu-west-1", id="create"),
        pytest.param("central-logs", "central-logs", id="existing-bucket"),
    ],
)
def test_archive_access_logging_is_an_option(value: str, destination: str | None) -> None:
    """Server access logging of the archive: off, into a bucket the stack makes, or into yours."""
    st = stack(ArchiveAccessLogBucket=value)
    logging = props(st, "ArchiveBucket").get("LoggingConfiguration")
    assert (logging or {}).get("DestinationBucketName") == destination
    assert st.exists("AccessLogBucket") == (value == "create")
    if logging:
        assert logging["LogFilePrefix"] == "sluice-dev-archive/"


# ---------------------------------------------------------------- customer managed keys
ENCRYPTED = {
    "RulesTable": lambda p: p["SSESpecification"].get("KMSMasterKeyId"),
    "StateTable": lambda p: p["SSESpecification"].get("KMSMasterKeyId"),
    "DeadLetterQueue": lambda p: p.get("KmsMasterKeyId"),
    "FailureQueue": lambda p: p.get("KmsMasterKeyId"),
    "ObjectsQueue": lambda p: p.get("KmsMasterKeyId"),
    "ObjectsDeadLetterQueue": lambda p: p.get("KmsMasterKeyId"),
    "AlertTopic": lambda p: p.get("KmsMasterKeyId"),
    "ArchiveBucket": lambda p: p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ].get("KMSMasterKeyID"),
}
CREATED_KEY = "arn:aws:kms:eu-west-1:123456789012:key/key-DataKey"


@pytest.mark.parametrize(
    ("kms_key", "expected"),
    [
        pytest.param("", None, id="none"),
        pytest.param("create", CREATED_KEY, id="created"),
        pytest.param(KEY_ARN, KEY_ARN, id="own-key"),
    ],
)
@pytest.mark.parametrize("logical_id", sorted(ENCRYPTED))
def test_one_customer_key_for_every_store(logical_id: str, kms_key: str, expected: str) -> None:
    """KmsKey puts the tables, queues, topic and archive under one customer managed key."""
    st = stack(KmsKey=kms_key)
    assert ENCRYPTED[logical_id](props(st, logical_id)) == expected
    assert st.exists("DataKey") == (kms_key == "create")


def test_archive_key_of_its_own_wins() -> None:
    """ArchiveKmsKeyArn encrypts the archive even when KmsKey covers the rest."""
    p = props(stack(KmsKey="create", ArchiveKmsKeyArn=KEY_ARN), "ArchiveBucket")
    assert ENCRYPTED["ArchiveBucket"](p) == KEY_ARN


def test_the_created_key_lets_alarms_and_notifications_in() -> None:
    """The key policy lets CloudWatch alarms publish to the topic and S3 notify the queue
    (both encrypted with it), for this account only; the roles get it through IAM."""
    policy = props(stack(KmsKey="create"), "DataKey")["KeyPolicy"]
    services = {
        st["Principal"].get("Service"): st
        for st in policy["Statement"]
        if "Service" in st["Principal"]
    }
    assert set(services) == {"cloudwatch.amazonaws.com", "s3.amazonaws.com"}
    for st in services.values():
        assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert props(stack(KmsKey="create"), "DataKey")["EnableKeyRotation"] is True


def test_alarms_can_reach_the_topic_without_a_customer_key() -> None:
    """The topic never uses the AWS managed aws/sns key, whose policy keeps CloudWatch out."""
    assert "KmsMasterKeyId" not in props(stack(), "AlertTopic")


@pytest.mark.parametrize("function", ["cloudwatch_logs", "s3_objects", "log_group_created"])
def test_roles_use_the_key_only_through_the_data_services(function: str) -> None:
    """The roles' key statement exists only with KmsKey and only via DynamoDB, S3, SNS, SQS."""
    [st] = [
        s["Fn::If"][1]
        for s in iam.policy("dev", function, "cfn")["Statement"]
        if "Fn::If" in s and s["Fn::If"][0] == "UseKmsKey"
    ]
    assert set(st["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    services = st["Condition"]["StringLike"]["kms:ViaService"]
    assert sorted(s.split(".")[0] for s in services) == ["dynamodb", "s3", "sns", "sqs"]


# ---------------------------------------------------------------- dead letters are watched
QUEUES = ["DeadLetterQueue", "FailureQueue", "ObjectsDeadLetterQueue"]


def alarms(st: Any) -> dict[str, dict[str, Any]]:
    return {k: props(st, k) for k in of_type("AWS::CloudWatch::Alarm") if st.exists(k)}


@pytest.mark.parametrize("queue", QUEUES)
def test_dead_letter_queues_are_watched(queue: str) -> None:
    """Each dead-letter queue keeps messages the SQS maximum, and alarms to the alerts topic
    on any message and on an oldest message well before retention ends."""
    st = stack()
    assert props(st, queue)["MessageRetentionPeriod"] == SQS_MAX_RETENTION
    topic = st.ref("AlertTopic")
    watching = {
        a["MetricName"]: a
        for a in alarms(st).values()
        if a.get("Dimensions") == [{"Name": "QueueName", "Value": st.name_of(queue)}]
    }
    depth, age = (
        watching["ApproximateNumberOfMessagesVisible"],
        watching["ApproximateAgeOfOldestMessage"],
    )
    assert (depth["Threshold"], depth["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    spec = TEMPLATE["Parameters"]["DeadLetterAgeAlarmSeconds"]
    assert int(st.eval(age["Threshold"])) == spec["Default"]
    # Even the highest threshold allowed leaves days to replay before SQS deletes.
    assert spec["MaxValue"] <= SQS_MAX_RETENTION - 3 * 86400
    for a in (depth, age):
        assert a["AlarmActions"] == [topic]


def test_lambda_failures_have_their_own_queue() -> None:
    """Lambda's on-failure destinations (async invocations, the Kinesis mapping) are the
    failures queue, never Sluice's own dead-letter queue."""
    text = json.dumps(FUNCTIONS)
    assert text.count('"FailureQueue", "Arn"') >= 2
    assert '"DeadLetterQueue", "Arn"' not in text
    for fn in ("cloudwatch_logs", "s3_object_created", "log_group_created", "kinesis_records"):
        sids = {s["Sid"] for s in iam.policy("dev", fn, "deploy")["Statement"]}
        assert "FailureRecords" in sids, fn


# ---------------------------------------------------------------- alarms and dashboard
def emitted_schema() -> dict[str, set[tuple[str, ...]]]:
    """metric name -> the dimension-name sets it is emitted with (chalicelib/observe.py;
    `dropped` is both a counter and a per-rule metric)."""
    import contextlib
    import io
    import os

    ledger = Ledger(received=1, archived=1)
    ledger.rule("r")["matched"] += 1
    ledger.rule("r")["alerted"] += 1
    for s in observe.STAGES:
        observe.add_time(s, observe.perf_counter())
    buf = io.StringIO()
    os.environ["SLUICE_STAGE"] = "dev"
    try:
        with contextlib.redirect_stdout(buf):
            observe.report("cloudwatch_logs", ledger, "Sluice", {"rules_error": "x"})
    finally:
        del os.environ["SLUICE_STAGE"]
    out: dict[str, set[tuple[str, ...]]] = {}
    for line in buf.getvalue().splitlines():
        if '"_aws"' in line:
            for d in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                for m in d["Metrics"]:
                    out.setdefault(m["Name"], set()).add(tuple(sorted(d["Dimensions"][0])))
    return out


def test_alarm_set() -> None:
    """Errors of every function, dead-letter depth and age, iterator age and rules
    unavailable all alarm to the alerts topic, on firing and on clearing."""
    st = stack(EnableKinesis="true")
    found = alarms(st)
    topic = st.ref("AlertTopic")
    errors = {
        a["Dimensions"][0]["Value"] for a in found.values() if a.get("MetricName") == "Errors"
    }
    assert errors == {f"sluice-dev-{fn}" for fn in iam.FUNCTIONS}
    assert any(a.get("MetricName") == "IteratorAge" for a in found.values())
    assert "IteratorAgeAlarm" not in alarms(stack())  # no stream, no iterator
    for a in found.values():
        assert a["AlarmActions"] == [topic] and a["OKActions"] == [topic]
        assert a["TreatMissingData"] == "notBreaching"


def test_rules_unavailable_alarm_reads_what_the_functions_emit() -> None:
    """The alarm sums `rules_unavailable` of the pipeline functions under the exact
    namespace and dimensions chalicelib/observe.py writes."""
    schema = emitted_schema()
    a = props(stack(), "RulesUnavailableAlarm")
    stats = [m["MetricStat"]["Metric"] for m in a["Metrics"] if "MetricStat" in m]
    assert {m["Dimensions"][0]["Value"] for m in stats} == set(iam.FUNCTIONS) - {
        "log_group_created"
    }
    for m in stats:
        assert m["Namespace"] == "Sluice" and m["MetricName"] == "rules_unavailable"
        assert tuple(sorted(d["Name"] for d in m["Dimensions"])) in schema["rules_unavailable"]
        assert {d["Name"]: d["Value"] for d in m["Dimensions"]}["stage"] == "dev"


def dashboard(kinesis: str = "false") -> dict[str, Any]:
    st = stack(EnableKinesis=kinesis)
    body = props(st, "Dashboard")["DashboardBody"]
    doc: dict[str, Any] = json.loads(body)
    return doc


def test_dashboard_is_valid_json_with_the_alarms() -> None:
    """The dashboard body is JSON once substituted, and its alarm widget lists every alarm."""
    for kinesis in ("false", "true"):
        doc = dashboard(kinesis)
        [widget] = [w for w in doc["widgets"] if w["type"] == "alarm"]
        listed = {a.split(":alarm:")[-1] for a in widget["properties"]["alarms"]}
        names = {
            props(stack(EnableKinesis=kinesis), k)["AlarmName"]
            for k in alarms(stack(EnableKinesis=kinesis))
        }
        assert listed == names


def _searches(doc: dict[str, Any]) -> list[str]:
    return [
        m[0]["expression"]
        for w in doc["widgets"]
        if w["type"] == "metric"
        for m in w["properties"]["metrics"]
        if isinstance(m[0], dict)
    ]


@pytest.mark.parametrize(
    "metric",
    ["received", "archived", "dropped", "dead_lettered", "matched", "alerted"]
    + [f"{s}_ms" for s in observe.STAGES],
)
def test_dashboard_queries_what_the_functions_emit(metric: str) -> None:
    """Each Sluice metric the dashboard shows is searched with the dimensions it is emitted with."""
    schema = emitted_schema()
    [expr] = [e for e in _searches(dashboard()) if f'MetricName="{metric}"' in e]
    dims = re.search(r"\{Sluice,([^}]*)\}", expr)
    assert dims and tuple(sorted(dims.group(1).split(","))) in schema[metric]
    assert 'stage="dev"' in expr


@pytest.mark.parametrize(
    ("namespace", "metric"),
    [
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "IteratorAge"),
    ],
)
def test_dashboard_shows_the_platform_metrics(namespace: str, metric: str) -> None:
    """Dead-letter depth and age, duration, errors, throttles, iterator age are on the dashboard."""
    rows = [
        m
        for w in dashboard()["widgets"]
        if w["type"] == "metric"
        for m in w["properties"]["metrics"]
        if isinstance(m[0], str)
    ]
    assert any(r[0] == namespace and r[1] == metric for r in rows)
