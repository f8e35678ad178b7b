"""Lazy, injectable AWS clients, built on botocore alone.

Nothing is created until first use, and tests (or the local stack) inject their own
with `clients.set(...)`. Endpoints follow the SDK's own settings (AWS_ENDPOINT_URL),
so the same code runs against moto or AWS.

Clients come from a botocore session: boto3 adds resources, collections and S3's
transfer manager, none of which the runtime uses, and importing it (with s3transfer,
multiprocessing and concurrent.futures) was ~6% of a cold start's instructions. When boto3 is
already loaded in the process (the CLI, the local stack, tests), its default session
is used instead, as before: that is where those hook handlers or inject a mock.

Most of a client's build is botocore's data loader: it reads the JSON models (the
service, the endpoint rules, partitions) with `json.loads(..., object_pairs_hook=
OrderedDict)` and lists every service it knows by opening ~400 directories. The
session's loader here reads the same files with orjson (plain dicts keep their
order), inflates the compressed ones with ISA-L, and lists services in one directory
scan: building the DynamoDB and S3 clients of a cold start costs about half as much
CPU (README, Performance).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

_FAST_LOADER = "_sluice_fast_loader"


def _gunzip(payload: bytes) -> bytes:
    """A gzip file's content: with ISA-L when the wheel is there (~4x faster than zlib on
    botocore's compressed models, a few ms of a cold start), else the standard library."""
    try:
        from isal import isal_zlib
    except ImportError:  # a platform without the wheel
        import gzip

        return gzip.decompress(payload)
    d = isal_zlib.decompressobj(31)  # wbits 16 + 15: one gzip member
    out = d.decompress(payload)
    if not d.eof or d.unused_data:  # more than one member, or cut short: let gzip say
        import gzip

        return gzip.decompress(payload)
    return out


def _loader(data_path: str | None) -> Any:
    """botocore's data loader for `data_path` (as `botocore.loaders.create_loader` builds
    it), reading the JSON models with orjson and listing services in one directory scan."""
    import os

    import orjson
    from botocore.loaders import JSONFileLoader, Loader

    class OrjsonFileLoader(JSONFileLoader):
        def load_file(self, file_path: str) -> Any:
            for ext, gz in ((".json", False), (".json.gz", True)):
                try:
                    with open(file_path + ext, "rb") as f:
                        payload = f.read()
                except (FileNotFoundError, NotADirectoryError):
                    continue
                return orjson.loads(_gunzip(payload) if gz else payload)
            return None

    class FastLoader(Loader):
        def list_available_services(self, type_name: str) -> list[str]:
            """Every service directory of the search paths. botocore's own listing also
            opens each of ~400 directories and stats every API version for `type_name`
            (a third of building a client); a service without that model is then
            found missing when it is loaded (DataNotFoundError), not here."""
            found = self._cache.get(("sluice_services",))
            if found is None:
                names: set[str] = set()
                for path in self.search_paths:
                    if os.path.isdir(path):
                        with os.scandir(path) as entries:
                            names.update(e.name for e in entries if e.is_dir())
                found = self._cache[("sluice_services",)] = sorted(names)
            return list(found)

    paths = None
    if data_path is not None:
        paths = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
    return FastLoader(extra_search_paths=paths, file_loader=OrjsonFileLoader())


_core: list[Any] = []  # the botocore session of a process without boto3


def _botocore_session() -> Any:
    """A botocore session as `botocore.session.get_session()` makes it, whose event names
    are aliased faster (the same names, in the same order, on the same handlers) and
    whose credentials come straight from the environment when they are there
    (`_credentials_from_environment`).

    botocore registers ~130 built-in handlers on every session and each client copies
    and extends them; every event name registered or emitted goes through
    `EventAliaser._alias_event_name`, which splits the name once for each of botocore's
    65 service aliases (`autoscaling` -> `auto-scaling`...). A cold start aliased ~170
    names that way, ~9 ms of CPU, to find that none but a few have an alias. Here a
    name none of whose dot-separated parts is an alias, and which contains no dotted
    alias, is answered at once (botocore's answer for it is the name itself); any
    other goes to botocore's own method. The session's aliaser is the one botocore
    made (it is also its `event_emitter` component), given this subclass before the
    built-in handlers are registered; clients copy it as they copy botocore's."""
    import botocore.session

    session = _session_class(botocore.session.Session)()
    _credentials_from_environment(session)
    return session


_SESSION_CLASS: list[type] = []


def _session_class(base: type) -> type:
    """botocore's session class, whose aliaser becomes the faster one just before the
    built-in handlers are registered: botocore's own `__init__` runs as it is, so the
    handlers and then the initializers (Powertools' user agent, if loaded) are registered
    in botocore's order. An aliaser of another class, or without the attributes the
    faster one reads (another botocore), is left as it is."""
    if _SESSION_CLASS:
        return _SESSION_CLASS[0]

    class FastSession(base):
        def _register_builtin_handlers(self, events: Any) -> None:
            from botocore.hooks import EventAliaser

            if (
                type(events) is EventAliaser
                and isinstance(getattr(events, "_alias_name_cache", None), dict)
                and isinstance(getattr(events, "_event_aliases", None), dict)
            ):
                events.__class__ = _fast_aliaser(EventAliaser)
            super()._register_builtin_handlers(events)

    _SESSION_CLASS.append(FastSession)
    return FastSession


def _credentials_from_environment(session: Any) -> None:
    """Where the environment holds an access key (Lambda's own credentials), the
    session's credential chain is botocore's environment provider alone: the first link
    of botocore's default chain, which then answers (the credentials, or the error for a
    key without its secret) before any other link is asked. Building the whole chain
    (profiles, SSO, assume-role, the container and instance metadata fetchers with their
    HTTP sessions) cost ~3 ms of a cold start for nothing. Without an access key in the
    environment, or with a profile named, botocore's default chain as before."""
    import os

    from botocore.credentials import CredentialResolver, EnvProvider

    # A profile named (AWS_PROFILE) is looked up while the chain is built, and a missing
    # one is an error even with keys in the environment: then the chain as botocore has it.
    if os.environ.get(EnvProvider.ACCESS_KEY) and session.get_config_variable("profile") is None:
        session.register_component("credential_provider", CredentialResolver([EnvProvider()]))


_FAST_ALIASER: list[type] = []


def _fast_aliaser(base: type) -> type:
    """The subclass of botocore's `EventAliaser` described in `_botocore_session`."""
    if _FAST_ALIASER:
        return _FAST_ALIASER[0]

    class FastAliaser(base):
        def _alias_event_name(self, event_name: str) -> str:
            known: str | None = self._alias_name_cache.get(event_name)
            if known is not None:
                return known
            keys = getattr(self, "_sluice_alias_keys", None)
            if keys is None:  # botocore's table, as aliases without and with dots
                aliases = self._event_aliases
                plain = frozenset(k for k in aliases if "." not in k)
                keys = self._sluice_alias_keys = (plain, [k for k in aliases if "." in k])
            plain, dotted = keys
            if plain.isdisjoint(event_name.split(".")):
                for alias in dotted:
                    if alias in event_name:
                        break
                else:  # no alias applies: botocore's answer is the name itself
                    self._alias_name_cache[event_name] = event_name
                    return event_name
            name: str = super()._alias_event_name(event_name)
            return name

    _FAST_ALIASER.append(FastAliaser)
    return FastAliaser


def _session() -> Any:
    """The botocore session clients are built from, its data loader reading botocore's
    models faster (see the module docstring): boto3's default session's when boto3 is
    loaded (what tests and tools hook or replace), else one botocore session of this
    module's, kept once made (boto3 imported later, by a library, changes nothing)."""
    boto3 = sys.modules.get("boto3")
    if boto3 is not None and not _core:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        core = boto3.DEFAULT_SESSION._session  # the botocore session boto3 wraps
    else:
        if not _core:
            _core.append(_botocore_session())
        core = _core[0]
    if not getattr(core, _FAST_LOADER, False):
        core.register_component("data_loader", _loader(core.get_config_variable("data_path")))
        setattr(core, _FAST_LOADER, True)
    return core


class Clients:
    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    from botocore.config import Config

                    # Standard retry mode: jittered backoff on throttling and 5xx, 3
                    # retries after the first attempt (botocore's `max_attempts` counts
                    # retries: 4 attempts in all), bounded connect/read timeouts so a
                    # stuck endpoint cannot eat the whole invocation.
                    config = Config(
                        retries={"mode": "standard", "max_attempts": 3},
                        connect_timeout=5,
                        read_timeout=30,
                    )
                    client = _session().create_client(service, config=config)
                    self._clients[service] = client
        return client

    def set(self, service: str, client: Any) -> None:
        self._clients[service] = client

    def reset(self) -> None:
        self._clients.clear()


clients = Clients()


def query_items(ddb: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a DynamoDB Query, page after page (LastEvaluatedKey)."""
    while True:
        page = ddb.query(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
