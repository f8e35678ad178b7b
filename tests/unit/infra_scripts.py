"""The scripts of infra/ as modules (infra/ is not a package; its scripts import each other)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

INFRA = Path(__file__).resolve().parents[2] / "infra"


def load(name: str) -> ModuleType:
    """infra/<name>.py, loaded once and shared (`sys.modules`), with infra/ importable."""
    if name in sys.modules:
        return sys.modules[name]
    if str(INFRA) not in sys.path:
        sys.path.insert(0, str(INFRA))
    spec = importlib.util.spec_from_file_location(name, INFRA / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
