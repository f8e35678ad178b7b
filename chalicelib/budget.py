"""What one invocation may hold: every cap derived from the function's configured memory.

Lambda sets `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (MB) in every function's environment;
outside Lambda (tests, the local stack) the dev stage's 512 MB is assumed. Every input
within AWS's limits must stay under ~60% of that memory, the rest being the runtime,
boto3 and the allocator's slack (Python keeps freed arenas, so big inputs are taken in
slices from the start rather than freed afterwards). At 512 MB:

| cap | value | past it |
|---|---|---|
| slice_events / slice_bytes | 16,384 events / 16 MiB of text | the next pipeline slice starts |
| field_chars | 256 KiB (never less: CloudWatch's largest event) | the string is cut, flagged |
| record_chars | 8 MiB of strings in one record | later strings cut, flagged |
| max_fields | 1,000 values in one record, every depth | kept as text with parse_error |
| payload_bytes | 64 MiB decompressed per payload / record | dead-lettered with the reason |
| payload_events | 4,194,304 events per payload / record / line | dead-lettered by reference |
| stream_bytes | 1 MiB decompressed | parsed incrementally, not whole |
| line_bytes | 32 MiB per S3 line | cut, flagged (a JSON document: dead-lettered) |
| partitions | 256 archive partitions per invocation | later hours join an open partition |

The ratios were measured with `bench/memory.py` (`make bench`'s `bench: memory` lines):
a slice of tiny events costs ~1 KB an event in flight (event, record, id, archive line),
a record's text about three times its length (the text, its parsed strings, its line).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Final

DEFAULT_MEMORY_MB = 512
_MIB = 1024 * 1024


class Budget:
    """The caps of one function (the table above), read-only.

    A plain class rather than a dataclass: the module loads on every cold start, where
    creating a frozen dataclass of 12 fields costs ~1.4 ms (its methods are generated
    and compiled) and none of those methods is used."""

    __slots__ = (
        "field_chars",
        "line_bytes",
        "max_depth",
        "max_fields",
        "memory_mb",
        "partitions",
        "payload_bytes",
        "payload_events",
        "record_chars",
        "slice_bytes",
        "slice_events",
        "stream_bytes",
    )

    def __init__(
        self,
        memory_mb: int,
        slice_events: int,
        slice_bytes: int,
        field_chars: int,
        record_chars: int,
        max_fields: int,
        max_depth: int,
        payload_bytes: int,
        payload_events: int,
        stream_bytes: int,
        line_bytes: int,
        partitions: int,
    ) -> None:
        self.memory_mb: Final = memory_mb
        self.slice_events: Final = slice_events
        self.slice_bytes: Final = slice_bytes
        self.field_chars: Final = field_chars
        self.record_chars: Final = record_chars
        self.max_fields: Final = max_fields
        self.max_depth: Final = max_depth
        self.payload_bytes: Final = payload_bytes
        self.payload_events: Final = payload_events
        self.stream_bytes: Final = stream_bytes
        self.line_bytes: Final = line_bytes
        self.partitions: Final = partitions

    def replace(self, **changes: int) -> Budget:
        """A copy with some caps changed (what `dataclasses.replace` gave)."""
        values = {name: getattr(self, name) for name in self.__slots__}
        unknown = changes.keys() - values.keys()
        if unknown:
            raise TypeError(f"Budget has no cap {sorted(unknown)}")
        return Budget(**{**values, **changes})

    @classmethod
    def for_memory(cls, memory_mb: int) -> Budget:
        mb = max(128, memory_mb)  # Lambda's smallest useful size for this runtime
        memory = mb * _MIB
        return cls(
            memory_mb=mb,
            slice_events=mb * 32,
            slice_bytes=memory // 32,
            field_chars=max(256 * 1024, memory // 2048),
            record_chars=memory // 64,
            # A record wider than this is almost always data mistaken for a log line.
            max_fields=1000,
            # Glue/Athena handle nested structs to a few dozen levels; orjson refuses past 254.
            max_depth=64,
            payload_bytes=memory // 8,
            payload_events=mb * 8192,
            stream_bytes=memory // 512,
            line_bytes=memory // 16,
            # Each partition is one PutObject (~20-50 ms): 256 of them stay well inside
            # a minute; hours beyond that are written under the arrival hour.
            partitions=256,
        )


@lru_cache(maxsize=1)
def budget() -> Budget:
    """The budget of this function (`budget.cache_clear()` in tests that change it)."""
    raw = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    try:
        mb = int(raw) if raw else DEFAULT_MEMORY_MB
    except ValueError:
        mb = DEFAULT_MEMORY_MB
    return Budget.for_memory(mb)
