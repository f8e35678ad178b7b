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
            import botocore.session

            _core.append(botocore.session.get_session())
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
