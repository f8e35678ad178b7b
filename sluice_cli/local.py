"""The local stack: moto, a Slack endpoint, Sluice's resources and its functions.

`LocalStack` runs everything in one process on 127.0.0.1: moto's server (the
AWS APIs), `SlackServer` (the Slack Web API), the resources from
`resources.bootstrap`, a `Runtime` installed for the handlers, and the event
sources: `poller.LogsPoller` plays CloudWatch Logs' subscription delivery,
`sources_local.KinesisPoller` Lambda's Kinesis mapping for watched streams,
`sources_local.BucketWatcher` S3's notifications for watched buckets and
`sources_local.QueuePoller` Lambda's SQS mapping of the objects queue.
Commands: `sluice local up` and `sluice bootstrap` (`sluice demo` is in
`scenario.py`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from chalicelib import handlers
from chalicelib import tap as tap_lines
from chalicelib.aws import Clients
from chalicelib.pipeline import Runtime
from chalicelib.rules.schema import load_document
from chalicelib.rules.store import write_document
from chalicelib.settings import Settings
from sluice_cli import standins
from sluice_cli.logs_writer import write_to_cloudwatch
from sluice_cli.poller import REGION, LambdaContext, LogsPoller, Outcome
from sluice_cli.resources import Names, Resources, env_lines, local_token
from sluice_cli.resources import bootstrap as make_resources
from sluice_cli.slack_server import SlackServer
from sluice_cli.sources_local import BucketWatcher, KinesisPoller, QueuePoller
from sluice_cli.streams import function_output
from sluice_cli.top import MetricsRelay

DUMMY_KEY = "testing"  # moto accepts any credentials; these are its documented dummies
# The stage the local stack's functions run as (poller.function_arn: sluice-dev-<function>);
# exported, so `sluice invoke` and `sluice subscribe` in that shell use the same one.
STAGE = "dev"
STAND_INS_AFTER_S = 2.0
SIGNAL_CHECK_S = 0.2  # how soon the main thread notices a signal another thread received


# ---------------------------------------------------------------- the stack
def port_free(port: int) -> bool:
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class EndpointClients(Clients):
    """boto3 clients bound to one endpoint and dummy credentials, built lazily.

    The stack's own clients must never follow the environment: a caller (a test
    fixture scrubbing AWS_*, a shell with a profile) could otherwise send the
    runtime's first S3 call to a real account.
    """

    # One botocore session for every stack in the process: it caches the service
    # models, which otherwise cost ~90 ms per client to load. Sessions are not
    # thread-safe while creating clients, hence one lock for all.
    _session: Any = None
    _lock = threading.Lock()

    def __init__(self, endpoint: str, region: str = REGION) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.region = region
        self._bound: dict[str, Any] = {}

    def get(self, service: str) -> Any:
        client = self._bound.get(service)
        if client is None:
            with EndpointClients._lock:
                client = self._bound.get(service)
                if client is None:
                    import boto3
                    from botocore.config import Config

                    if EndpointClients._session is None:
                        EndpointClients._session = boto3.session.Session()
                    client = self._bound[service] = EndpointClients._session.client(
                        service,
                        endpoint_url=self.endpoint,
                        region_name=self.region,
                        aws_access_key_id=DUMMY_KEY,
                        aws_secret_access_key=DUMMY_KEY,
                        # as chalicelib.aws: bounded timeouts, the SDK's standard retries
                        config=Config(
                            retries={"mode": "standard", "max_attempts": 3},
                            connect_timeout=5,
                            read_timeout=30,
                        ),
                    )
        return client

    def set(self, service: str, client: Any) -> None:
        self._bound[service] = client

    def reset(self) -> None:
        self._bound.clear()


class LedgerTap:
    """Keeps the ledger each handler reports, so the stack can show and check it.

    `handle_kinesis_records` and `handle_s3_objects` answer only with
    `batchItemFailures` (what their event source mappings read) and log their
    ledger; the tap wraps `handlers.report`, the call that logs it, and hands the
    ledger of the invocation that just ran to the stack. Invocations run one at a
    time under the stack's lock, so "the last one reported" is the caller's.
    """

    def __init__(self, on_report: Callable[[str, Any], None] | None = None) -> None:
        self._last: dict[str, Any] | None = None
        self._original: Any = None
        self.on_report = on_report  # every ledger, as the metrics would carry it

    def install(self) -> None:

        self._original = handlers.report
        handlers.report = self._report

    def uninstall(self) -> None:

        if self._original is not None and handlers.report == self._report:
            handlers.report = self._original
        self._original = None

    def _report(self, function: str, ledger: Any, namespace: str, extra: Any = None) -> None:
        self._last = {**ledger.as_dict(), **(extra or {})}
        self._original(function, ledger, namespace, extra)
        if self.on_report is not None:
            self.on_report(function, ledger)

    def take(self) -> dict[str, Any]:
        last, self._last = self._last, None
        return last or {}


class LocalStack:
    """moto + Slack endpoint + resources + runtime + event sources, on 127.0.0.1.

    Sets the process environment (AWS_ENDPOINT_URL, dummy credentials, region,
    the SLUICE_* settings) while it runs and restores it on exit, since boto3,
    the CLI and the handlers all read their endpoint from there.

    `kinesis_streams` are created (with `kinesis_shards` shards) and delivered to
    `kinesis_records`; `watch_buckets` are created and their new objects reach
    `s3_objects` through the objects queue (more with `watch_stream` and
    `watch_bucket` while running). Handler calls take one lock: every function
    shares this process's Powertools logger and metrics, which Lambda would keep
    apart in separate sandboxes.
    """

    def __init__(
        self,
        port: int = 0,
        slack_port: int = 0,
        *,
        names: Names | None = None,
        poll_interval_s: float = 0.1,
        rules_ttl_s: float = 2.0,
        on_outcome: Callable[[Outcome], None] | None = None,
        kinesis_streams: Sequence[str] = (),
        kinesis_shards: int = 1,
        watch_buckets: Sequence[str] = (),
        retry_pause_s: float = 0.2,
        object_retry_s: int = 1,
    ) -> None:
        self.port = port
        self.slack_port = slack_port
        self.names = names or Names.for_prefix()
        self.poll_interval_s = poll_interval_s
        self.rules_ttl_s = rules_ttl_s  # short, so `sluice rules apply` shows at once
        self.on_outcome = on_outcome
        self.kinesis_streams = tuple(kinesis_streams)
        self.kinesis_shards = kinesis_shards
        self.watch_buckets = tuple(watch_buckets)
        self.retry_pause_s = retry_pause_s
        self.object_retry_s = object_retry_s  # visibility of a failed objects-queue message
        self.kinesis: KinesisPoller | None = None
        self.objects: QueuePoller | None = None
        self.watcher: BucketWatcher | None = None
        self._invoke_lock = threading.Lock()
        self._tap = LedgerTap(self._record_metrics)
        self.metrics: MetricsRelay | None = None
        # Lambda stand-ins (standins.py), made in the background: `stand_ins_ready` is set
        # once they exist (or failed: `stand_ins_error`).
        self.stand_ins_ready = threading.Event()
        self.stand_ins_error: str | None = None
        self._stand_ins: threading.Thread | None = None
        self._stopping = threading.Event()
        self._exits = contextlib.ExitStack()
        self._saved_env: dict[str, str | None] = {}
        self._moto: Any = None
        self.slack: SlackServer | None = None
        self.poller: LogsPoller | None = None
        self.resources: Resources | None = None
        self.runtime: Any = None
        self.clients: Any = None
        self.endpoint = ""

    @property
    def aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    @property
    def env(self) -> dict[str, str]:
        """Everything a shell needs to use this stack: AWS endpoint and Sluice settings."""
        assert self.resources is not None, "start() first"
        # The namespace too: `sluice top` in that shell reads the metrics the stack puts.
        namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Sluice"
        return {
            **self.aws_env,
            **self.resources.env,
            "SLUICE_STAGE": STAGE,
            "POWERTOOLS_METRICS_NAMESPACE": namespace,
        }

    def start(self) -> LocalStack:
        for p in (self.port, self.slack_port):
            if not port_free(p):
                # moto's server thread would die on bind and start() wait forever.
                raise click.ClickException(f"port {p} on 127.0.0.1 is in use")
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        try:
            self._set_env(self.aws_env, drop=("AWS_PROFILE", "AWS_SESSION_TOKEN"))
            # moto's backends are process-wide: a stack started after another in the
            # same process (tests) would see the old one's groups and buckets.
            _post(f"{self.endpoint}/moto-api/reset")
            self._start_sluice()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_sluice(self) -> None:

        self.clients = EndpointClients(self.endpoint)
        token = local_token()
        self.slack = SlackServer(token, port=self.slack_port).start()
        self.resources = make_resources(
            self.clients, self.names, slack_token=token, slack_api_url=self.slack.url
        )
        self._set_env({**self.resources.env, "SLUICE_STAGE": STAGE})
        self._stopping.clear()
        self._stand_ins = threading.Thread(
            target=self._make_stand_ins, name="lambda-stand-ins", daemon=True
        )
        self._stand_ins.start()
        # The caller's own settings (gzip level, metrics namespace) carry over; the
        # stack's resources and rules TTL win.
        env = {**os.environ, **self.env, "SLUICE_RULES_TTL": str(self.rules_ttl_s)}
        settings = Settings.from_env(env)
        self.runtime = Runtime(settings=settings, clients=self.clients)
        handlers.set_runtime(self.runtime)
        # What Lambda and CloudWatch do with a function's output, for `sluice top` and
        # `sluice tap`: metrics into CloudWatch, tap lines into the function's log group.
        self.metrics = MetricsRelay(
            lambda: self.clients.get("cloudwatch"), settings.metrics_namespace, STAGE
        ).start()
        tap_lines.set_sink(self._write_tap_lines)
        self._tap.install()
        self.poller = LogsPoller(
            self.clients.get("logs"),
            self.invoke_cloudwatch_logs,
            interval_s=self.poll_interval_s,
            on_outcome=self.on_outcome,
            retry_pause_s=self.retry_pause_s,
        ).start()
        self.kinesis = KinesisPoller(
            self.clients.get("kinesis"),
            self.invoke_kinesis_records,
            interval_s=self.poll_interval_s,
            on_outcome=self.on_outcome,
            on_failure=self._dead_letter,
            retry_pause_s=self.retry_pause_s,
        )
        for name in self.kinesis_streams:
            self.watch_stream(name, self.kinesis_shards)
        self.kinesis.start()
        self.watcher = BucketWatcher(
            self.clients.get("s3"), self.clients.get("sqs"), self.resources.objects_queue_url
        )
        for bucket in self.watch_buckets:
            self.watch_bucket(bucket)
        self.objects = QueuePoller(
            self.clients.get("sqs"),
            self.resources.objects_queue_url,
            self.invoke_s3_objects,
            watcher=self.watcher,
            interval_s=self.poll_interval_s,
            retry_visibility_s=self.object_retry_s,
            on_outcome=self.on_outcome,
        ).start()

    # ------------------------------------------------------------- sources
    def watch_stream(self, name: str, shards: int = 1) -> str:
        """Create Kinesis stream `name` if missing and deliver its records; returns its ARN.

        A stream created here is read from its first record; one that existed is
        read from now on (Chalice's starting position, LATEST).
        """
        assert self.kinesis is not None, "start() first"
        kinesis = self.clients.get("kinesis")
        try:
            kinesis.create_stream(StreamName=name, ShardCount=shards)
        except Exception as e:
            if _code(e) != "ResourceInUseException":
                raise
            created = False
        else:
            created = True
        kinesis.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        return self.kinesis.watch(name, from_start=created)

    def watch_bucket(self, name: str) -> None:
        """Create bucket `name` if missing and deliver its new objects to `s3_objects`."""
        assert self.watcher is not None and self.resources is not None, "start() first"
        if name == self.names.archive_bucket:
            # s3_objects writes the archive: reading it back would loop forever.
            raise click.ClickException(f"{name} is the archive bucket; watch another bucket")
        s3 = self.clients.get("s3")
        try:
            s3.head_bucket(Bucket=name)
        except Exception as e:
            if _code(e) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            s3.create_bucket(Bucket=name)
        self.watcher.watch(name)

    @property
    def pollers(self) -> list[Any]:
        return [p for p in (self.poller, self.kinesis, self.objects) if p is not None]

    def poll_all(self) -> int:
        """One synchronous pass of every source: what is stored now gets delivered."""
        return sum(p.poll() for p in self.pollers)

    def _make_stand_ins(self) -> None:
        # Made a moment after start, off the start-up path: a stack that only lives a few
        # seconds (a test) never pays for them, and `local up` prints its env at once.
        if self._stopping.wait(STAND_INS_AFTER_S):
            self.stand_ins_error = "the stack stopped before they were made"
            self.stand_ins_ready.set()
            return
        try:
            self._exits.enter_context(standins.quiet_moto_delivery())
            standins.create(self.clients, STAGE, stop=self._stopping)
        except Exception as e:  # the stack works without them; subscribe says what is missing
            self.stand_ins_error = f"{type(e).__name__}: {e}"
        finally:
            self.stand_ins_ready.set()

    def _record_metrics(self, function: str, ledger: Any) -> None:
        if self.metrics is not None:
            self.metrics.record(function, ledger)

    def _write_tap_lines(self, function: str, lines: list[str]) -> None:
        name = function if function.startswith("sluice-") else f"sluice-{STAGE}-{function}"
        write_to_cloudwatch(self.clients.get("logs"), f"/aws/lambda/{name}", "local-tap", lines)

    def _dead_letter(self, record: dict[str, Any]) -> None:
        """The on-failure destination of the Kinesis mapping (infra/: the dead-letter queue)."""

        assert self.resources is not None
        self.clients.get("sqs").send_message(
            QueueUrl=self.resources.dlq_url, MessageBody=json.dumps(record)
        )

    # ------------------------------------------------------------- functions
    def invoke_cloudwatch_logs(
        self, event: dict[str, Any], context: LambdaContext
    ) -> dict[str, Any]:

        with self._invoke_lock, function_output():
            return handlers.handle_cloudwatch_logs(event, context, self.runtime)

    def invoke_kinesis_records(
        self, event: dict[str, Any], context: LambdaContext
    ) -> dict[str, Any]:

        with self._invoke_lock, function_output():
            self._tap.take()
            result = handlers.handle_kinesis_records(event, context, self.runtime)
            return {**self._tap.take(), **result}

    def invoke_s3_objects(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:

        with self._invoke_lock, function_output():
            self._tap.take()
            result = handlers.handle_s3_objects(event, context, self.runtime)
            return {**self._tap.take(), **result}

    def apply_rules(self, doc_or_path: dict[str, Any] | str | Path) -> Any:
        """Validate and apply a rules document (dict or YAML file) as `sluice rules apply`
        does: the whole document (`redact`, `inputs` too) as a new version; then reload."""
        doc = doc_or_path
        source = "local stack"
        if not isinstance(doc, dict):
            import yaml

            source = str(doc)
            doc = yaml.safe_load(Path(doc).read_text(encoding="utf-8"))
        result = write_document(
            self.clients.get("dynamodb"),
            self.names.rules_table,
            load_document(doc),
            source=source,
        )
        self.runtime.rules.invalidate()
        return result

    def stop(self) -> None:

        for poller in self.pollers:
            poller.stop()
        self._stopping.set()
        if self._stand_ins is not None:
            self._stand_ins.join(timeout=10)  # at most the one call in flight
            self._stand_ins = None
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
        tap_lines.set_sink(None)
        if self.slack is not None:
            self.slack.stop()
        if self._moto is not None:
            _stop_moto(self._moto)
            self._moto = None
        self._exits.close()
        if self.runtime is not None and handlers.installed_runtime() is self.runtime:
            handlers.set_runtime(None)
        self._tap.uninstall()
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set_env(self, env: dict[str, str], drop: tuple[str, ...] = ()) -> None:
        for k in (*env, *drop):
            self._saved_env.setdefault(k, os.environ.get(k))
        for k in drop:
            os.environ.pop(k, None)
        os.environ.update(env)


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def _stop_moto(server: Any) -> None:
    """`ThreadedMotoServer.stop`, without waiting out its 0.5 s shutdown poll.

    serve_forever checks its shutdown flag when select() returns: every 0.5 s,
    or at once when a connection arrives, so knock until the thread is gone.
    """
    host, port = server.get_host_and_port()
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    deadline = time.monotonic() + 5
    while stopper.is_alive() and time.monotonic() < deadline:
        # A refused connection means the server is closed already: the thread is on its way out.
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=0.5).close()
        stopper.join(0.02)


def _post(url: str) -> None:

    req = urllib.request.Request(url, method="POST", data=b"")  # noqa: S310 (our loopback URL)
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        resp.read()


# ---------------------------------------------------------------- commands
@click.group()
def local() -> None:
    """The local stack: AWS (moto) and Slack on 127.0.0.1, no account needed."""


@local.command("up")
@click.option("--port", default=4599, show_default=True, help="moto (AWS APIs) port")
@click.option("--slack-port", default=4598, show_default=True, help="local Slack Web API port")
@click.option(
    "--kinesis-stream",
    "streams",
    multiple=True,
    metavar="NAME",
    help="create Kinesis stream NAME and deliver its records to kinesis_records (repeatable; "
    "app.py's stream is sluice-fan-in)",
)
@click.option(
    "--kinesis-shards", default=1, show_default=True, help="shards of each stream created"
)
@click.option(
    "--watch-bucket",
    "buckets",
    multiple=True,
    metavar="NAME",
    help="create bucket NAME and deliver its new objects to s3_objects through the "
    "objects queue (repeatable)",
)
def up(
    port: int,
    slack_port: int,
    streams: tuple[str, ...],
    kinesis_shards: int,
    buckets: tuple[str, ...],
) -> None:
    """Run the local stack until Ctrl-C; prints the environment to export."""

    from rich.console import Console

    err = Console(stderr=True)

    stack = LocalStack(
        port,
        slack_port,
        on_outcome=lambda o: err.print(describe(o), soft_wrap=True),
        kinesis_streams=streams,
        kinesis_shards=kinesis_shards,
        watch_buckets=buckets,
    )
    # `kill` stops as cleanly as Ctrl-C; and Ctrl-C (SIGINT) stops it even when it started
    # with SIGINT ignored, as a shell starts a command it runs in the background.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    with stack:
        for line in env_lines(stack.env):
            click.echo(line)
        sys.stdout.flush()  # a pipe is block-buffered: whoever reads the env needs it now
        slack_url = stack.slack.url if stack.slack else ""
        err.print(f"[green]sluice local stack up[/]: AWS {stack.endpoint}, Slack {slack_url}")
        err.print(f"Slack messages received: GET {slack_url.replace('/api/', '/_local/messages')}")
        err.print("delivering new CloudWatch Logs events to cloudwatch_logs")
        if streams:
            err.print(f"delivering Kinesis records of {', '.join(streams)} to kinesis_records")
        else:
            err.print("[dim]no Kinesis stream watched (--kinesis-stream NAME)[/]")
        if buckets:
            err.print(
                f"delivering new objects of {', '.join(buckets)} to s3_objects "
                f"through {stack.names.objects_queue}"
            )
        else:
            err.print(
                f"[dim]no bucket watched (--watch-bucket NAME); messages sent to "
                f"{stack.names.objects_queue} still reach s3_objects[/]"
            )
        err.print("Ctrl-C to stop")
        try:
            while True:
                # Short naps, not one long sleep: the kernel may deliver SIGINT to any
                # thread (the pollers'), and Python then raises KeyboardInterrupt only
                # when the main thread next runs; a sleep(3600) would hold it for an hour.
                time.sleep(SIGNAL_CHECK_S)
        except KeyboardInterrupt:
            err.print("stopping")


def describe(o: Outcome) -> str:
    """One line of console markup per delivery: where from, and the handler's ledger."""
    from rich.markup import escape

    where = {
        "kinesis": f"[dim]kinesis {escape(o.group)}[/] {escape(o.stream)}",
        "sqs": f"[dim]sqs {escape(o.group)}[/]",
    }.get(o.source, f"[dim]{escape(o.group)}[/] {escape(o.stream)}")
    if o.error:
        return f"{where}: [red]failed[/] {escape(o.error)}"
    r = o.result or {}
    line = (
        f"{where}: received={r.get('received')} archived={r.get('archived')} "
        f"dropped={r.get('dropped')} dead_lettered={r.get('dead_lettered')} "
        f"alerts={r.get('alerts')}"
    )
    failed = r.get("batchItemFailures")
    if failed:
        line += f" [yellow]retrying {len(failed)}[/]"
    return line


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@click.command("bootstrap")
@click.option("--prefix", default="sluice-local", show_default=True, help="resource name prefix")
@click.option("--slack-api-url", default=None, help="Slack API base URL (local endpoint only)")
def bootstrap(prefix: str, slack_api_url: str | None) -> None:
    """Create Sluice's tables, bucket, queue, topic and secret; print the env.

    Works wherever the AWS SDK points (AWS_ENDPOINT_URL, profile, region).
    """
    res = make_resources(Clients(), Names.for_prefix(prefix), slack_api_url=slack_api_url)
    for what in res.created:
        click.echo(f"created {what}", err=True)
    if f"secret {res.names.slack_secret}" in res.created:
        click.echo(
            "the secret holds a placeholder token; for real Slack store the bot token:\n"
            f"  aws secretsmanager put-secret-value --secret-id {res.names.slack_secret}"
            """ --secret-string '{"token": "xoxb-..."}'""",
            err=True,
        )
    for what in res.existing:
        click.echo(f"exists  {what}", err=True)
    for line in env_lines(res.env):
        click.echo(line)
