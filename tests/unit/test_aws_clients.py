"""chalicelib.aws: clients built lazily on boto3's default session, whose data loader reads
botocore's models with orjson and lists services in one scan: the same models and
endpoints as botocore's own loader gives."""

from __future__ import annotations

import gzip
from typing import Any

import boto3
import pytest
from botocore.exceptions import DataNotFoundError, UnknownServiceError

from chalicelib import aws

# Every service the runtime builds a client for (chalicelib/ and its forward sinks).
SERVICES = [
    "dynamodb",
    "s3",
    "sqs",
    "sns",
    "secretsmanager",
    "ssm",
    "kinesis",
    "firehose",
    "logs",
    "lambda",
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


def _shape(shape: Any, depth: int = 0) -> Any:
    """A shape as plain data (names, types, members, to a few levels), to compare models."""
    if shape is None:
        return None
    out: dict[str, Any] = {"name": shape.name, "type": shape.type_name}
    if depth < 3:
        members = getattr(shape, "members", None)
        if isinstance(members, dict):
            out["members"] = {k: _shape(v, depth + 1) for k, v in members.items()}
        elif getattr(shape, "member", None) is not None:
            out["member"] = _shape(shape.member, depth + 1)
    return out


@pytest.mark.parametrize("service", SERVICES)
def test_clients_have_botocore_s_own_models_and_endpoints(env: None, service: str) -> None:
    """A client from `Clients.get` has the operations, shapes (members in the same order)
    and endpoint of the client botocore's own loader builds."""
    ours = aws.Clients().get(service)
    stock = boto3.Session().client(service)
    assert ours.meta.endpoint_url == stock.meta.endpoint_url
    a, b = ours.meta.service_model, stock.meta.service_model
    assert a.operation_names == b.operation_names
    assert a.metadata == b.metadata
    for op in a.operation_names:
        x, y = a.operation_model(op), b.operation_model(op)
        assert _shape(x.input_shape) == _shape(y.input_shape), op
        assert _shape(x.output_shape) == _shape(y.output_shape), op
        assert x.http == y.http, op


def test_the_default_session_gets_the_loader_once(env: None) -> None:
    """The loader is registered on boto3's default session (where tests and tools hook
    their handlers) once, and a client built there still sees handlers registered on it."""
    seen: list[str] = []
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register(
        "provide-client-params.sqs.*", lambda **kw: seen.append("hooked")
    )
    clients = aws.Clients()
    sqs = clients.get("sqs")
    loader = boto3.DEFAULT_SESSION._session.get_component("data_loader")
    assert type(loader).__name__ == "FastLoader"
    clients.reset()
    clients.get("sqs")
    assert boto3.DEFAULT_SESSION._session.get_component("data_loader") is loader
    sqs.meta.events.emit("provide-client-params.sqs.ListQueues", params={}, model=None)
    assert seen == ["hooked"]


def test_unknown_services_and_models_are_still_refused(env: None) -> None:
    """A service botocore does not know is refused as before; a known service without a
    model of the kind asked for raises botocore's DataNotFoundError."""
    loader = aws._loader(None)
    with pytest.raises(UnknownServiceError):
        loader.load_service_model("not-a-service", "service-2")
    with pytest.raises(DataNotFoundError):
        loader.load_service_model("dynamodb", "no-such-model-9")
    assert "dynamodb" in loader.list_available_services("service-2")


def test_without_boto3_clients_come_from_one_botocore_session(
    env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a process that never imported boto3 (Lambda's cold path) clients are built on
    one botocore session of the module's, with the fast loader, registered once, and
    boto3 is not imported to build them."""
    import sys

    monkeypatch.delitem(sys.modules, "boto3")
    monkeypatch.setattr(aws, "_core", [])
    clients = aws.Clients()
    sqs = clients.get("sqs")
    assert "boto3" not in sys.modules
    [core] = aws._core
    loader = core.get_component("data_loader")
    assert type(loader).__name__ == "FastLoader"
    clients.reset()
    clients.get("dynamodb")
    assert aws._core == [core] and core.get_component("data_loader") is loader
    assert sqs.meta.service_model.service_name == "sqs"


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("one member", gzip.compress(b'{"a": [1, 2]}')),
        ("two members", gzip.compress(b'{"a": ') + gzip.compress(b"[1, 2]}")),
        ("empty document", gzip.compress(b"null")),
    ],
)
def test_compressed_models_read_as_gzip_reads_them(name: str, payload: bytes) -> None:
    """A `.json.gz` model inflates to what the standard library's gzip gives, whatever its
    members."""
    assert aws._gunzip(payload) == gzip.decompress(payload), name


def test_a_truncated_compressed_model_is_an_error() -> None:
    """A cut-short `.json.gz` raises as gzip does instead of giving part of a model."""
    cut = gzip.compress(b'{"operations": {}}' * 100)[:-12]
    with pytest.raises((EOFError, OSError)):
        aws._gunzip(cut)


def test_the_botocore_session_stays_when_boto3_is_imported_later(
    env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once clients come from the module's own botocore session, a library importing
    boto3 afterwards (Powertools' parameters do) does not start a second session."""
    import sys

    monkeypatch.delitem(sys.modules, "boto3")
    monkeypatch.setattr(aws, "_core", [])
    clients = aws.Clients()
    clients.get("sqs")
    [core] = aws._core
    monkeypatch.setitem(sys.modules, "boto3", boto3)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    clients.get("sns")
    assert aws._core == [core] and boto3.DEFAULT_SESSION is None
    assert aws._session() is core


def _botocore_alias(name: str) -> str:
    from botocore.hooks import EventAliaser, HierarchicalEmitter

    return str(EventAliaser(HierarchicalEmitter())._alias_event_name(name))


def _event_names() -> list[str]:
    """Every built-in handler's event name, and names built on each of botocore's service
    aliases: as a part, inside a longer part, with dotted aliases across parts."""
    from botocore import handlers
    from botocore.utils import EVENT_ALIASES

    names = [spec[0] for spec in handlers.BUILTIN_HANDLERS]
    for alias in EVENT_ALIASES:
        names += [
            f"before-call.{alias}.ListThings",
            f"creating-client-class.{alias}",
            f"provide-client-params.{alias}",
            f"before-call.x{alias}.ListThings",
            f"before-call.{alias}x.ListThings",
            f"needs-retry.{alias}.{alias}",
            alias,
        ]
    return [*names, "", ".", "..", "before-send", "before-send.s3.PutObject", "a.b.c.d.e"]


def test_the_fast_aliaser_names_every_event_as_botocore_does() -> None:
    """For every built-in event name and names built on each service alias (a part, a
    substring, dotted aliases, repeated), the session's aliaser answers what botocore's
    own EventAliaser answers, first time and from its cache."""
    core = aws._botocore_session()
    events = core.get_component("event_emitter")
    assert type(events).__name__ == "FastAliaser"
    for name in _event_names():
        expected = _botocore_alias(name)
        assert events._alias_event_name(name) == expected, name
        assert events._alias_event_name(name) == expected, name


def _handler(h: Any) -> Any:
    """A handler as itself, or for one an initializer makes per session (Powertools' user
    agent closure) by its module and name."""
    f = getattr(h, "func", h)
    return (f.__module__, f.__qualname__) if "<locals>" in getattr(f, "__qualname__", "") else h


def test_the_fast_session_registers_what_botocore_s_session_registers(
    env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session has botocore's built-in handlers on the same event names in the same
    order as `get_session()`'s, and a client built on it copies the fast aliaser and
    still runs a handler registered on the session."""
    import sys

    import botocore.session

    ours, stock = aws._botocore_session(), botocore.session.get_session()
    for name in _event_names():
        aliased = _botocore_alias(name)
        found = [
            [
                _handler(h)
                for h in s.get_component("event_emitter")._emitter._handlers.prefix_search(aliased)
            ]
            for s in (ours, stock)
        ]
        assert found[0] == found[1], name
    monkeypatch.delitem(sys.modules, "boto3")
    monkeypatch.setattr(aws, "_core", [ours])
    seen: list[str] = []
    ours.register("sluice-probe.autoscaling", lambda **kw: seen.append("hooked"))
    sqs = aws.Clients().get("sqs")
    assert type(sqs.meta.events).__name__ == "FastAliaser"
    sqs.meta.events.emit("sluice-probe.auto-scaling")  # the alias botocore gives it
    sqs.meta.events.emit("sluice-probe.sqs")
    assert seen == ["hooked"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param("another aliaser class", id="another aliaser class"),
        pytest.param("no name cache", id="an aliaser without its name cache"),
        pytest.param("no alias table", id="an aliaser without its alias table"),
    ],
)
def test_another_botocore_gets_a_session_as_botocore_makes_it(
    monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Where botocore's session does not hold the aliaser this module expects (another
    class, or without the attributes the faster one reads), its aliaser is botocore's
    own, unchanged."""
    import botocore.hooks

    if change == "another aliaser class":

        class Other(botocore.hooks.EventAliaser):
            pass

        monkeypatch.setattr(botocore.hooks, "EventAliaser", Other)
    else:
        # A botocore whose aliaser keeps no such attribute (and so never reads it).
        attribute = "_alias_name_cache" if change == "no name cache" else "_event_aliases"
        real = botocore.hooks.EventAliaser.__init__

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            real(self, *args, **kwargs)
            delattr(self, attribute)

        monkeypatch.setattr(botocore.hooks.EventAliaser, "__init__", init)
        monkeypatch.setattr(botocore.hooks.EventAliaser, "_alias_event_name", lambda _, n: n)
    core = aws._botocore_session()
    assert type(core.get_component("event_emitter")).__name__ != "FastAliaser"


# What botocore's EnvProvider reads.
ENV_CREDENTIALS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ACCOUNT_ID",
)


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s"}, id="keys"),
        pytest.param(
            {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"},
            id="keys and session token (Lambda)",
        ),
        pytest.param(
            {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SECURITY_TOKEN": "t"},
            id="legacy token name",
        ),
        pytest.param(
            {
                "AWS_ACCESS_KEY_ID": "AKID",
                "AWS_SECRET_ACCESS_KEY": "s",
                "AWS_SESSION_TOKEN": "t",
                "AWS_CREDENTIAL_EXPIRATION": "2999-01-01T00:00:00Z",
                "AWS_ACCOUNT_ID": "123456789012",
            },
            id="expiring, with account",
        ),
        pytest.param(
            {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s", "AWS_PROFILE": "absent"},
            id="a profile named that does not exist",
        ),
        pytest.param({"AWS_ACCESS_KEY_ID": "AKID"}, id="a key without its secret"),
    ],
)
def test_credentials_from_the_environment_are_botocore_s(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> None:
    """With an access key in the environment the session's credentials are those
    botocore's default chain gives (values, kind, refreshability), or the same error."""
    import botocore.session

    for name in [*ENV_CREDENTIALS, "AWS_PROFILE", "AWS_DEFAULT_PROFILE", *environ]:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    outcomes = []
    for session in (aws._botocore_session(), botocore.session.get_session()):
        try:
            c = session.get_credentials()
            got: Any = (type(c).__name__, c.access_key, c.secret_key, c.token, c.method)
            got += (getattr(c, "account_id", None),)
        except Exception as e:  # the error is what is compared
            got = (type(e).__name__, str(e))
        outcomes.append(got)
    assert outcomes[0] == outcomes[1]


def test_without_a_key_in_the_environment_the_chain_is_botocore_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No access key in the environment: the session keeps botocore's whole default
    chain (profiles, container and instance metadata...)."""
    for name in ENV_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    chain = aws._botocore_session().get_component("credential_provider")
    names = [p.METHOD for p in chain.providers]
    assert names[0] == "env" and "container-role" in names and "iam-role" in names
