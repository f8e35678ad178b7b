"""The deployment zip is the tested artefact: built as `make package` builds it, unpacked,
imported and run by a Python that sees only the zip and boto3, against a moto server.

Lambda's Python runtime provides the standard library and boto3 (with botocore,
s3transfer, jmespath, python-dateutil, urllib3, six); everything else must be in the
zip, as wheels for the runtime's Python and Linux. The build uses the wheelhouse
`make wheels` downloads (infra/wheels.py) with pip's index off, so this test never
reaches the network; without a wheelhouse it is skipped, saying so (`make test` makes
one first).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from .infra_scripts import load as load_infra

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
# Lambda's quotas: 50 MB for a .zip uploaded directly, 250 MB unzipped (function and
# layers); in bytes, 50 and 250 MiB.
ZIPPED_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024
# What Lambda's Python runtime has besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
# Binary wheels Sluice needs; each must be built for the runtime's CPython and Linux.
BINARY = ("google_re2", "isal", "orjson", "zstandard")
REGION = "us-east-1"


wheels = load_infra("wheels")
bytecode = load_infra("bytecode")
RUNTIME = wheels.runtime()


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """infra/package.py on a copy of the project, from the wheelhouse, offline."""
    house = ROOT / ".wheels" / RUNTIME
    if not (house / ".requirements-sha256").exists():
        why = f"no wheelhouse at {house}: `make wheels` downloads it (`make test` does)"
        if os.environ.get("SLUICE_REQUIRE_WHEELHOUSE") == "1":  # set by `make test`
            pytest.fail(why)
        pytest.skip(why)
    project = tmp_path_factory.mktemp("project")
    for name in ("app.py", "chalicelib", ".chalice", "infra", "requirements.txt"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src, project / name, ignore=shutil.ignore_patterns("__pycache__", "deployments")
            )
        else:
            shutil.copy2(src, project / name)
    out = tmp_path_factory.mktemp("out")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLUICE_", "PIP_"))}
    env.update(AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    args = [sys.executable, str(project / "infra" / "package.py"), "--stage", "dev"]
    args += ["--skip-terraform", "--wheelhouse", str(house), "--out", str(out)]
    result = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    zipped = out / "dev" / "cloudformation" / "deployment.zip"
    unpacked = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(zipped) as z:
        z.extractall(unpacked)
    return {"zip": zipped, "dir": unpacked, "sam": out / "dev" / "cloudformation" / "sam.yaml"}


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_zip_fits_lambda(build: dict[str, Path]) -> None:
    """The zip and its unpacked tree are within Lambda's 50 MB / 250 MB limits (printed)."""
    zipped, unzipped = build["zip"].stat().st_size, tree_size(build["dir"])
    mib = 1024 * 1024
    print(
        f"\npackage: deployment.zip {zipped / mib:.1f} MiB of {ZIPPED_LIMIT // mib} MiB, "
        f"unzipped {unzipped / mib:.1f} MiB of {UNZIPPED_LIMIT // mib} MiB"
    )
    assert zipped < ZIPPED_LIMIT and unzipped < UNZIPPED_LIMIT


def wheel_tags(unpacked: Path) -> dict[str, list[str]]:
    """distribution -> its wheel tags (`*.dist-info/WHEEL`), for every bundled wheel."""
    out = {}
    for info in unpacked.glob("*.dist-info"):
        lines = (info / "WHEEL").read_text().splitlines()
        out[info.name.split("-")[0].lower()] = [
            ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Tag:")
        ]
    return out


def test_runtime_wheels_and_test_python_agree(build: dict[str, Path]) -> None:
    """The runtime config.json declares is every function's runtime, the Python these
    tests run on, and the CPython every binary wheel in the zip was built for (manylinux
    x86_64 within the runtime's glibc)."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert version == RUNTIME
    sam = yaml.safe_load(build["sam"].read_text())
    runtimes = {
        r["Properties"]["Runtime"]
        for r in sam["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    assert runtimes == {RUNTIME}
    cp = "cp" + RUNTIME.removeprefix("python").replace(".", "")
    glibc = wheels.RUNTIME_GLIBC[RUNTIME]
    tags = wheel_tags(build["dir"])
    for dist in BINARY:
        assert dist in tags, f"{dist} is not in the zip"
    for dist, dist_tags in tags.items():
        for tag in dist_tags:
            py, abi, plat = tag.split("-")
            if plat == "any":
                continue
            assert (py, abi) == (cp, cp), f"{dist}: {tag}"
            assert plat.endswith("_x86_64") and plat.startswith("manylinux"), f"{dist}: {tag}"
            if plat.startswith("manylinux_"):
                major, minor = map(int, plat.split("_")[1:3])
                assert (major, minor) <= glibc, f"{dist}: {tag} needs a newer glibc"
    # Every extension module is for this CPython on x86-64 Linux (or the stable ABI);
    # other shared objects are libraries bundled by auditwheel (`<dist>.libs/`).
    suffix = f".cpython-{cp.removeprefix('cp')}-x86_64-linux-gnu.so"
    for so in build["dir"].rglob("*.so*"):
        bundled = so.parent.name.endswith(".libs")
        assert so.name.endswith((suffix, ".abi3.so")) or bundled, so


def test_no_cli_or_development_packages_in_the_zip(build: dict[str, Path]) -> None:
    """The zip holds the runtime only: no boto3 (the runtime's), moto, click, rich or YAML."""
    names = {p.name.lower() for p in build["dir"].iterdir()}
    for name in ("boto3", "botocore", "moto", "click", "rich", "yaml", "pytest"):
        assert name not in names, name


def test_every_module_ships_bytecode_for_the_runtime(build: dict[str, Path]) -> None:
    """Every Python source in the zip has its `__pycache__` pyc for the runtime's CPython:
    its magic number, unchecked-hash (loaded whatever mtimes unzipping gives), and the
    hash of the very source beside it, holding the code that source compiles to."""
    import marshal

    want = bytecode.magic(RUNTIME)
    assert want == importlib.util.MAGIC_NUMBER  # these tests run on the runtime's Python
    with zipfile.ZipFile(build["zip"]) as z:
        names = set(z.namelist())
        sources = [n for n in names if n.endswith(".py")]
        assert {"app.py", "chalicelib/handlers.py", "chalicelib/pipeline.py"} <= set(sources)
        missing = []
        for name in sources:
            cached = bytecode.cache_name(name, RUNTIME)
            if cached not in names:
                missing.append(name)
                continue
            body, source = z.read(cached), z.read(name)
            assert body[:4] == want, f"{cached}: magic {body[:4]!r}, not {want!r}"
            assert int.from_bytes(body[4:8], "little") == 0b01, f"{cached}: not unchecked-hash"
            assert body[8:16] == importlib.util.source_hash(source), f"{cached}: other source"
            code = marshal.loads(body[16:])
            assert code.co_consts == compile(source, name, "exec", dont_inherit=True).co_consts
        # Only files Python cannot compile go without (none of Sluice's own).
        assert not [n for n in missing if n == "app.py" or n.startswith("chalicelib/")]
        assert len(missing) <= len(sources) // 100, missing
        ours = {bytecode.cache_name(n, RUNTIME) for n in sources}
        assert not [n for n in names if n.endswith(".pyc") and n not in ours]


def test_the_runtime_loads_the_shipped_bytecode(build: dict[str, Path], tmp_path: Path) -> None:
    """With no writable bytecode cache (-B, as on Lambda's read-only /var/task), Python
    runs a module from the shipped pyc without compiling its source: a source changed
    after packaging still imports as it was packaged."""
    tree = tmp_path / "task"
    shutil.copytree(build["dir"] / "chalicelib", tree / "chalicelib")
    (tree / "chalicelib" / "durations.py").write_text("raise SystemExit(3)\n")
    probe = "import sys; sys.path.insert(0, sys.argv[1]); import chalicelib.durations as d; "
    probe += "print(d.__name__)"
    result = subprocess.run(
        [sys.executable, "-B", "-S", "-E", "-c", probe, str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "chalicelib.durations", (
        result.stdout + result.stderr
    )


# ---------------------------------------------------------------- running it
@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """moto's server on loopback, with the resources the functions name."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def runtime_site(tmp: Path) -> Path:
    """boto3 and its dependencies, as Lambda's runtime provides them, in their own directory."""
    site = tmp / "runtime"
    site.mkdir()
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec and spec.origin, name
        src = Path(spec.origin)
        if src.name == "__init__.py":
            shutil.copytree(src.parent, site / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, site / src.name)
    return site


DRIVER = r"""
import json, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]   # the unpacked zip, then the runtime's boto3
calls = json.loads(sys.stdin.read())

ARN = "arn:aws:lambda:us-east-1:123456789012:function:"

class Context:
    def __init__(self, name):
        self.function_name = f"sluice-dev-{name}"
        self.function_version = "$LATEST"
        self.invoked_function_arn = ARN + self.function_name
        self.memory_limit_in_mb = 512
        self.aws_request_id = f"req-{name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "2026/11/26/[$LATEST]0"
        self._deadline = time.time() + 120
    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.time()) * 1000)

import app
out = {"modules": sorted(m.split(".")[0] for m in sys.modules), "results": {}}
for name, event in calls:
    handler = getattr(app, name)
    out["results"][name] = handler(event, Context(name))
print("RESULT " + json.dumps(out, default=str))
"""


def _events() -> list[tuple[str, dict[str, Any]]]:
    def load(name: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text())
        return doc

    return [
        ("cloudwatch_logs", load("cloudwatch_logs")),
        ("kinesis_records", load("kinesis_records")),
        ("s3_objects", load("s3_objects_sqs")),
        ("s3_object_created", load("s3_object_created_eventbridge")),
        ("absence_check", load("absence_check")),
        ("log_group_created", load("log_group_created")),
    ]


def _s3_sources(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    """(bucket, key) of the objects the S3 samples announce."""
    from urllib.parse import unquote_plus

    found = []
    for name, event in events:
        if name == "s3_objects":
            for rec in event["Records"]:
                for r in json.loads(rec["body"])["Records"]:
                    obj = unquote_plus(r["s3"]["object"]["key"])
                    found.append((r["s3"]["bucket"]["name"], obj))
        elif name == "s3_object_created":
            found.append((event["detail"]["bucket"]["name"], event["detail"]["object"]["key"]))
    return found


def _with_etags(
    events: list[tuple[str, dict[str, Any]]], etags: dict[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """The S3 samples naming the objects this test wrote (functions read them If-Match
    the notification's ETag, as S3 notifications name the version they announce)."""
    from urllib.parse import unquote_plus

    out = []
    for name, event in events:
        event = json.loads(json.dumps(event))
        if name == "s3_objects":
            for rec in event["Records"]:
                body = json.loads(rec["body"])
                for r in body["Records"]:
                    r["s3"]["object"]["eTag"] = etags[unquote_plus(r["s3"]["object"]["key"])]
                rec["body"] = json.dumps(body)
        elif name == "s3_object_created":
            event["detail"]["object"]["etag"] = etags[event["detail"]["object"]["key"]]
        out.append((name, event))
    return out


def test_packaged_handlers_run_on_samples(
    build: dict[str, Path], moto_server: str, tmp_path: Path
) -> None:
    """A fresh interpreter whose only site-packages are the unpacked zip and boto3 imports
    `app` and runs every function on its sample from events/ against moto on loopback;
    each ledger balances and the events reach the archive."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    session = boto3.Session(region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=moto_server)

    s3, sqs, ddb = client("s3"), client("sqs"), client("dynamodb")
    bucket = "sluice-dev-archive-123456789012-us-east-1"
    s3.create_bucket(Bucket=bucket)
    dlq = sqs.create_queue(QueueName="sluice-dev-dlq")["QueueUrl"]
    objects = sqs.create_queue(QueueName="sluice-objects")["QueueUrl"]
    for table in ("sluice-dev-rules", "sluice-dev-state"):
        ddb.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    events = _events()
    etags = {}
    for src_bucket, key in _s3_sources(events):
        if src_bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=src_bucket)
        put = s3.put_object(Bucket=src_bucket, Key=key, Body=b'{"level":"ERROR","message":"x"}\n')
        etags[key] = put["ETag"].strip('"')
    events = _with_etags(events, etags)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env.update(config["environment_variables"])
    env.update(config["stages"]["dev"]["environment_variables"])
    env.update(SLUICE_ARCHIVE_BUCKET=bucket, SLUICE_DLQ_URL=dlq, SLUICE_OBJECTS_QUEUE_URL=objects)
    env["POWERTOOLS_METRICS_DISABLED"] = "false"

    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    site = runtime_site(tmp_path)
    # -S: no site module, so no site-packages but the two on sys.path; -E: no PYTHON* variables.
    result = subprocess.run(
        [sys.executable, "-S", "-E", str(driver), str(build["dir"]), str(site)],
        input=json.dumps(events),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")]
    out = json.loads(line.removeprefix("RESULT "))
    assert not {"moto", "yaml", "click", "rich", "pytest"} & set(out["modules"])
    results = out["results"]
    assert set(results) == {name for name, _ in events}
    cw = results["cloudwatch_logs"]
    assert cw["received"] > 0 and cw["lost"] == 0
    assert results["kinesis_records"] == {"batchItemFailures": []}
    assert results["s3_objects"] == {"batchItemFailures": []}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(k.startswith("archive/tag=aws.lambda.") for k in keys), keys
    assert any(k.startswith("archive/tag=kinesis.") or "kinesis" in k for k in keys), keys
    assert any(k.startswith("archive/tag=s3.") for k in keys), keys
