"""Memory is a budget: inputs within AWS's limits, each handled by the real handler in a
fresh interpreter, peak at most 60% of the function's configured memory, and the ledger
accounts for every input event.

The machinery (inputs made inside the child, AWS answered below botocore, peak RSS of
the whole process) is `bench/memory.py`, which `make bench` also runs for its
`bench: memory` lines; here each case is a test.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _memory() -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("sluice_bench_memory", BENCH / "memory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


memory = _memory()


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name) for c in memory.CASES],
)
def test_hostile_input_stays_within_the_memory_budget_and_is_accounted_for(case: Any) -> None:
    """The case's whole-process peak RSS stays within 60% of the configured memory
    (the dev stage's, as AWS_LAMBDA_FUNCTION_MEMORY_SIZE) and every input event is
    archived, dropped or dead-lettered, archive lines standing for the archived ones."""
    rep = memory.run_case(case)
    limit = memory.SHARE * rep["configured_mb"]
    assert rep["accounted"] == "ok", rep
    assert 0 < rep["peak_rss_mb"] <= limit, (
        f"{case.name}: peak {rep['peak_rss_mb']:.0f} MB > {limit:.0f} MB "
        f"({memory.SHARE:.0%} of {rep['configured_mb']} MB)"
    )
