"""Record classes (chalicelib/records.py) behave as the dataclasses they replace: each
record of the runtime is compared with the dataclass its fields would make (same names,
same frozenness) on construction, repr, equality, hashing, assignment, deletion,
`dataclasses.replace`/`fields`/`asdict`, pattern matching, copying and pickling."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.actions.archive import ArchiveObject, ArchiveResult
from chalicelib.actions.prepared import Learned
from chalicelib.actions.s3put import _Bucket
from chalicelib.event import Ledger, LogEvent
from chalicelib.pipeline import Routed
from chalicelib.records import record
from chalicelib.rules.compile import CompiledRule
from chalicelib.rules.firing import AbsenceSpec, SequenceSpec, ThresholdSpec, ThrottleSpec
from chalicelib.rules.schema import ActionDef, RuleDef, RulesDocument
from chalicelib.settings import Settings
from chalicelib.sources.cloudwatch import CloudWatchBatch

ROOT = Path(__file__).resolve().parents[2]

# Every record of the runtime, with its frozenness.
RECORDS: list[tuple[type, bool]] = [
    (Settings, True),
    (ThrottleSpec, True),
    (ThresholdSpec, True),
    (SequenceSpec, True),
    (AbsenceSpec, True),
    (ActionDef, True),
    (RuleDef, False),
    (RulesDocument, False),
    (CompiledRule, False),
    (LogEvent, False),
    (Ledger, False),
    (Routed, False),
    (CloudWatchBatch, False),
    (ArchiveObject, False),
    (ArchiveResult, False),
    (_Bucket, True),
    (Learned, True),
]
# Arguments a record's own __init__ reads rather than stores as given.
ARGS: dict[type, dict[str, Any]] = {
    Learned: {"headers": (("User-Agent", "Botocore/1"), ("amz-sdk-request", "attempt=1"))},
}


def _sample(cls: type) -> Any:
    """An instance with a distinct value for every argument without a default."""
    params = list(inspect.signature(cls).parameters.values())
    args = {p.name: f"{p.name}-value" for p in params if p.default is inspect.Parameter.empty}
    args.update(ARGS.get(cls, {}))
    return cls(**args)


def _reference(cls: type, frozen: bool) -> type:
    """The dataclass of the same fields and frozenness, under the same name."""
    names = [f.name for f in dataclasses.fields(cls)]
    ref = dataclasses.make_dataclass(cls.__name__, names, frozen=frozen, slots=True)
    ref.__qualname__ = cls.__qualname__
    return ref


def _values(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


CASES = [pytest.param(cls, frozen, id=cls.__qualname__) for cls, frozen in RECORDS]


@pytest.mark.parametrize(("cls", "frozen"), CASES)
def test_a_record_shows_compares_and_hashes_as_its_dataclass(cls: type, frozen: bool) -> None:
    """repr, ==, != and hash give what the dataclass of the same fields gives, for an
    equal copy, a copy with one field changed and an object of another class."""
    ref = _reference(cls, frozen)
    obj = _sample(cls)
    twin = ref(**_values(obj))
    assert repr(obj) == repr(twin)
    first = dataclasses.fields(cls)[0].name
    changed = dataclasses.replace(obj, **{first: "other"})
    assert (obj == dataclasses.replace(obj), obj == changed, obj != changed) == (True, False, True)
    assert (obj == twin, obj.__eq__(twin)) == (False, NotImplemented)
    if frozen:
        assert hash(obj) == hash(twin) == hash(dataclasses.replace(obj))
    else:
        with pytest.raises(TypeError):
            hash(obj)
        with pytest.raises(TypeError):
            hash(twin)


@pytest.mark.parametrize(("cls", "frozen"), CASES)
def test_a_record_is_as_mutable_as_its_dataclass(cls: type, frozen: bool) -> None:
    """A frozen record refuses to assign or delete any field (FrozenInstanceError, an
    AttributeError) and keeps its values; another record takes new values; neither
    takes an attribute it does not declare."""
    obj = _sample(cls)
    before = _values(obj)
    for name in before:
        if frozen:
            with pytest.raises(dataclasses.FrozenInstanceError, match=re.escape(repr(name))):
                setattr(obj, name, "new")
            with pytest.raises(dataclasses.FrozenInstanceError):
                delattr(obj, name)
        else:
            setattr(obj, name, "new")
            assert getattr(obj, name) == "new"
    if frozen:
        assert _values(obj) == before
    with pytest.raises(AttributeError):
        obj.not_declared = 1


@pytest.mark.parametrize(("cls", "frozen"), CASES)
def test_a_record_works_with_the_dataclass_functions(cls: type, frozen: bool) -> None:
    """fields() lists the __init__ arguments in order; replace(), asdict(), match
    patterns, copy, deepcopy and pickle work and give equal objects."""
    obj = _sample(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    assert names == list(inspect.signature(cls).parameters)
    assert cls.__match_args__ == tuple(names)
    assert dataclasses.is_dataclass(obj)
    assert dataclasses.asdict(obj) == dataclasses.asdict(_reference(cls, frozen)(**_values(obj)))
    assert dataclasses.replace(obj) == obj
    for twin in (copy.copy(obj), copy.deepcopy(obj), pickle.loads(pickle.dumps(obj))):
        assert type(twin) is cls and twin == obj


def test_every_record_of_the_runtime_is_held_to_its_dataclass() -> None:
    """The table above names every `@record` class in chalicelib, so a new one is tested."""
    declared = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        declared.update(re.findall(r"^@record\([^)]*\)\nclass (\w+)", path.read_text(), re.M))
    assert declared == {cls.__name__ for cls, _ in RECORDS}


def test_a_record_whose_slots_miss_a_field_is_refused() -> None:
    """A field outside `__slots__` would be a class attribute, not a per-instance value."""
    with pytest.raises(TypeError, match="__slots__"):

        @record()
        class Wrong:
            """Declares `b` but no slot for it."""

            __slots__ = ("a",)
            a: int
            b: int

            def __init__(self, a: int, b: int) -> None:
                self.a = a
                self.b = b


def test_a_record_keeps_the_methods_it_defines() -> None:
    """As with dataclass(), a method the class writes itself is not replaced."""

    @record(frozen=True)
    class Point:
        """Its own repr."""

        __slots__ = ("x",)
        x: int

        def __init__(self, x: int) -> None:
            self.x = x

        def __repr__(self) -> str:
            return f"<{self.x}>"

    assert (repr(Point(1)), Point(1) == Point(1), hash(Point(1)) == hash((1,))) == (
        "<1>",
        True,
        True,
    )
