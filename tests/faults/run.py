"""`make faults`: the fault-injection suite alone, then its summary as the very last line,
`faults: scenarios=N passed=N events_in=N archived=N dropped=N dead_lettered=N lost=0
duplicates=0` (one line).

`scenarios` counts the scenario tests that ran to a verdict (passed or failed), `passed`
those that passed; the figures are what each scenario read back (`settle`, readback.py),
summed. Known gaps, kept as strict xfail tests until the code closes them, are listed on the
line before, not counted as scenarios. The exit status is pytest's.

The line is printed here, after pytest has returned, so it follows pytest's own closing
"N passed" line (a pytest_terminal_summary hook would print before it), and `make test`
(plain pytest, which runs the same tests) keeps pytest's line last.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
FIELDS = ("events_in", "archived", "dropped", "dead_lettered", "lost", "duplicates")


class Summary:
    """A pytest plugin: each fault scenario's outcome and figures, by node id."""

    def __init__(self) -> None:
        self.outcome: dict[str, str] = {}
        self.figures: dict[str, dict[str, int]] = {}
        self.reasons: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        if "faults" not in report.keywords:
            return
        node = report.nodeid
        for name, value in report.user_properties:
            if name == "faults":
                self.figures[node] = value
        if report.failed:
            self.outcome[node] = "failed"
        elif hasattr(report, "wasxfail"):
            self.outcome[node] = "xfailed" if report.skipped else "failed"
            self.reasons[node] = str(report.wasxfail)
        elif report.skipped:
            self.outcome.setdefault(node, "skipped")
        elif report.when == "call" and self.outcome.get(node) != "failed":
            self.outcome[node] = "passed"

    def scenarios(self) -> list[str]:
        return [n for n, o in self.outcome.items() if o in ("passed", "failed")]

    def line(self) -> str:
        ran = self.scenarios()
        passed = sum(1 for n in ran if self.outcome[n] == "passed")
        total: Counter[str] = Counter()
        for node in ran:
            total.update(self.figures.get(node, {}))
        figures = " ".join(f"{k}={total[k]}" for k in FIELDS)
        return f"faults: scenarios={len(ran)} passed={passed} {figures}"

    def known_gaps(self) -> list[str]:
        gaps = [n for n, o in self.outcome.items() if o == "xfailed"]
        return [f"faults: known gap (xfail): {n.split('::')[-1]}" for n in gaps]


def main(argv: list[str]) -> int:
    summary = Summary()
    code = pytest.main(["-q", "-m", "faults", str(HERE), *argv], plugins=[summary])
    sys.stdout.flush()
    for line in summary.known_gaps():
        print(line)
    print(summary.line(), flush=True)
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
