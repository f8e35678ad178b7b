"""Per-input settings in the rules file: how objects under an S3 prefix are read.

inputs:
  - bucket: my-alb-logs            # optional: any bucket when absent
    prefix: AWSLogs/               # optional: longest matching prefix wins
    format: alb                    # auto (default) | jsonl | text | csv | tsv | alb | elb
                                   # | vpcflow | cloudfront | cloudwatch (Firehose archives)
    expand: Records                # a list field whose elements become one event each; the
                                   # document's other fields go to each event's source.document
    context: doc                   # and also into each record under this key
    tag: aws.alb.shop              # instead of s3.<bucket>.<first key segment>
"""

from __future__ import annotations

from typing import Any, Final

from chalicelib.bounded import Bounded
from chalicelib.errors import RuleError

INPUT_KEYS = {"id", "bucket", "prefix", "format", "expand", "context", "tag"}
_TAG = Bounded(r"[A-Za-z0-9_.:@#$-]", 256)


class InputDef:
    """One input of a rules document, read-only. A plain class: a frozen dataclass costs
    ~1 ms to create on a cold start and its generated methods are not used (README,
    "Cold start")."""

    __slots__ = ("bucket", "context", "expand", "format", "id", "prefix", "tag")

    def __init__(
        self,
        id: str,
        bucket: str | None = None,
        prefix: str = "",
        format: str = "auto",
        expand: str | None = None,
        tag: str | None = None,
        context: str | None = None,
    ) -> None:
        self.id: Final = id
        self.bucket: Final = bucket
        self.prefix: Final = prefix
        self.format: Final = format
        self.expand: Final = expand
        self.tag: Final = tag
        self.context: Final = context

    def matches(self, bucket: str, key: str) -> bool:
        return (self.bucket is None or self.bucket == bucket) and key.startswith(self.prefix)


def load_inputs(items: Any, errors: list[RuleError]) -> list[InputDef]:
    if items is None:
        return []
    # The S3 readers (csv and the Firehose framing with them) load only for a document
    # that has inputs: a CloudWatch Logs function's cold start does not need them.
    from chalicelib.sources.s3_formats import FORMATS

    formats = ["auto", *sorted(FORMATS)]
    if not isinstance(items, list):
        errors.append(RuleError("-", "inputs", "must be a list"))
        return []
    out: list[InputDef] = []
    for i, it in enumerate(items):
        iid = f"inputs[{i}]"
        if not isinstance(it, dict):
            errors.append(RuleError(iid, "(input)", "must be a mapping"))
            continue
        iid = str(it.get("id", iid))
        n = len(errors)
        for key in sorted(set(it) - INPUT_KEYS):
            errors.append(
                RuleError(iid, key, f"unknown key (allowed: {', '.join(sorted(INPUT_KEYS))})")
            )
        for key in ("bucket", "prefix", "expand", "context", "tag"):
            if key in it and not isinstance(it[key], str):
                errors.append(RuleError(iid, key, "must be text"))
        fmt = it.get("format", "auto")
        if fmt not in formats:
            errors.append(
                RuleError(iid, "format", f"unknown format {fmt!r} (known: {', '.join(formats)})")
            )
        if isinstance(it.get("tag"), str) and not _TAG.fullmatch(it["tag"]):
            errors.append(RuleError(iid, "tag", "a tag uses letters, digits and . _ - : @ # $"))
        if len(errors) == n:
            out.append(
                InputDef(
                    iid,
                    it.get("bucket"),
                    it.get("prefix", ""),
                    fmt,
                    it.get("expand"),
                    it.get("tag"),
                    it.get("context"),
                )
            )
    return out


def input_for(inputs: list[InputDef], bucket: str, key: str) -> InputDef | None:
    """The most specific input (longest prefix, bucket-specific first) for an object."""
    best: InputDef | None = None
    for d in inputs:
        if d.matches(bucket, key) and (
            best is None
            or (len(d.prefix), d.bucket is not None) > (len(best.prefix), best.bucket is not None)
        ):
            best = d
    return best
