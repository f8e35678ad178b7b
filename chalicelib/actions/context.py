"""What an action may use, and what each delivery hands it.

`ActionContext` is the whole of an action's view of the function it runs in:
settings, boto3 clients built on first use, secrets (read through the one parser),
and a per-function memo for what several actions share (the Slack connection).
An action gets it once, when built, and keeps it while the function is warm.
`Delivery` is one call's batch: the events, the invocation that routed them, what
the firing condition adds (`note`), and where this batch's events were archived.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar
from urllib.parse import quote

from chalicelib.event import LogEvent
from chalicelib.invocation import Invocation
from chalicelib.settings import Settings

if TYPE_CHECKING:  # loaded when a secret is first read: most functions never read one
    from chalicelib.secrets import Secret, Secrets

T = TypeVar("T")


class ActionContext(Protocol):
    @property
    def settings(self) -> Settings: ...

    def client(self, service: str) -> Any:
        """The function's boto3 client for `service`, built on first use."""
        ...

    def secret(self, name: str, *, force: bool = False) -> Secret:
        """A secret (cached five minutes; `force` reads it again), parsed."""
        ...

    def shared(self, key: str, build: Callable[[], T]) -> T:
        """`build()`'s result, built once per warm function and shared by every action."""
        ...


class Services:
    """The ActionContext a function builds once: its settings, clients and secrets."""

    def __init__(self, settings: Callable[[], Settings], clients: Any) -> None:
        self._settings = settings
        self.clients = clients
        self._secrets: Secrets | None = None
        self._shared: dict[str, Any] = {}

    @property
    def settings(self) -> Settings:
        return self._settings()

    def client(self, service: str) -> Any:
        return self.clients.get(service)

    @property
    def secrets(self) -> Secrets:
        if self._secrets is None:
            from chalicelib.secrets import Secrets

            self._secrets = Secrets(self.clients)
        return self._secrets

    def secret(self, name: str, *, force: bool = False) -> Secret:
        return self.secrets.secret(name, force=force)

    def shared(self, key: str, build: Callable[[], T]) -> T:
        if key not in self._shared:
            self._shared[key] = build()
        value: T = self._shared[key]
        return value


class Offline:
    """The context of an action built only to preview its output (`sluice rules test`):
    anything that would reach AWS or a secret raises."""

    @property
    def settings(self) -> Settings:
        raise RuntimeError("an offline action has no settings")

    def client(self, service: str) -> Any:
        raise RuntimeError(f"an offline action has no {service} client")

    def secret(self, name: str, *, force: bool = False) -> Secret:
        raise RuntimeError(f"an offline action reads no secret ({name!r})")

    def shared(self, key: str, build: Callable[[], T]) -> T:
        raise RuntimeError(f"an offline action shares nothing ({key!r})")


class ArchiveLinks:
    """Where one batch's events were archived: (tag, hour since the epoch) -> key.

    Read-only. This and `Delivery` are plain classes: creating a frozen dataclass costs
    ~1 ms on a cold start (its methods are generated and compiled), and none of those
    methods is used (README, "Cold start")."""

    __slots__ = ("bucket", "keys", "region")

    def __init__(
        self, bucket: str, region: str, keys: Mapping[tuple[str, int], str] | None = None
    ) -> None:
        self.bucket: Final = bucket
        self.region: Final = region
        self.keys: Final[Mapping[tuple[str, int], str]] = {} if keys is None else keys

    def url(self, tag: str, time_ms: int) -> str | None:
        """The S3 console address of the archive object holding an event, if written."""
        key = self.keys.get((tag, time_ms // 3_600_000))
        if not key or not self.bucket:
            return None
        return (
            f"https://s3.console.aws.amazon.com/s3/object/{self.bucket}"
            f"?region={self.region}&prefix={quote(key, safe='')}"
        )


class Delivery:
    """One batch for one action: what every action's `deliver` receives (read-only)."""

    __slots__ = ("archive", "events", "invocation", "note")

    def __init__(
        self,
        events: list[LogEvent],
        invocation: Invocation,
        # A threshold's count, a sequence's first event, suppressed alerts.
        note: str | None = None,
        archive: ArchiveLinks | None = None,
    ) -> None:
        self.events: Final = events
        self.invocation: Final = invocation
        self.note: Final = note
        self.archive: Final = archive

    def archive_url(self, ev: LogEvent) -> str | None:
        return self.archive.url(ev.tag, ev.time) if self.archive is not None else None
