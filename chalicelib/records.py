"""Record classes that load fast: dataclasses whose methods are written out, not generated.

Python 3.12's `dataclass()` writes the source of each method it adds (`__init__`,
`__repr__`, `__eq__`, and for a frozen class `__setattr__`, `__delattr__`, `__hash__`)
and compiles it with `exec` when the class is created: 0.6-2.7 ms a class on a cold
start here, ~17 ms for the records a first CloudWatch event loads (README, Performance).
A `@record` class writes its `__init__` in its own body (compiled into the shipped
bytecode like the rest of the module) and declares its `__slots__`; `record` then adds
the rest as dataclass() would, from closures over the field names instead of generated
source:

* it is still a dataclass: `dataclasses.fields`, `replace`, `asdict` and `is_dataclass`
  work (the fields are the class annotations, in order; `__init__` takes them in the
  same order, with the same defaults). `__slots__` names the fields, and any attribute
  `__init__` derives from them (not a field: not compared, not shown, not an argument);
* `__repr__`, `__eq__` (same class, fields compared as a tuple) and `__hash__` (None,
  or for a frozen record the hash of the fields' tuple) behave as dataclass()'s;
* a frozen record refuses to change an attribute once it is set or to delete one
  (`FrozenInstanceError`, an `AttributeError`): its `__init__` assigns each once as usual.

tests/unit/test_records.py holds every record of the runtime to the dataclass the same
fields and defaults would make.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(eq_default=True)
def record(*, frozen: bool = False) -> Callable[[type[T]], type[T]]:
    """Class decorator: see the module docstring."""

    def make(cls: type[T]) -> type[T]:
        # The field bookkeeping only (no generated methods: those are what cost).
        dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
        names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        slots = cls.__dict__.get("__slots__")
        if slots is None or not set(names) <= set(slots):
            raise TypeError(f"{cls.__qualname__}: __slots__ must name every field")
        values = _values(names)

        @reprlib.recursive_repr()
        def __repr__(self: Any) -> str:
            inner = ", ".join(f"{n}={v!r}" for n, v in zip(names, values(self), strict=True))
            return f"{type(self).__qualname__}({inner})"

        def __eq__(self: Any, other: Any) -> Any:
            if other.__class__ is self.__class__:
                return values(self) == values(other)
            return NotImplemented

        # As dataclass(): methods the class defines itself are kept.
        methods: dict[str, Any] = {"__repr__": __repr__, "__eq__": __eq__, "__hash__": None}
        if frozen:

            def __setattr__(self: Any, name: str, value: Any) -> None:
                if hasattr(self, name):  # each slot is set once, by __init__
                    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
                object.__setattr__(self, name, value)

            def __delattr__(self: Any, name: str) -> None:
                raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

            def __hash__(self: Any) -> int:
                return hash(values(self))

            methods.update(__setattr__=__setattr__, __delattr__=__delattr__, __hash__=__hash__)
        for name, method in methods.items():
            if name in cls.__dict__ and (name != "__hash__" or cls.__dict__[name] is not None):
                continue
            if method is not None:
                method.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, method)
        return cls

    return make


def _values(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """A function giving an instance's field values as a tuple (what dataclass() compares
    and hashes), by one C call."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()
