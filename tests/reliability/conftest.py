"""The reliability suite: the fault matrix, crash-resume, hostile answers, fuzzed calls, load.

`make test` runs a fast subset of each matrix (`cases(...)` picks an even spread);
`make reliability` sets GENSVC_RELIABILITY=full for every cell and GENSVC_RELIABILITY_RESULTS
to a JSON-lines file, one line per cell, that tests/reliability/report.py turns into the
table of docs/reliability.md.

Mark every cell with its figure:  @pytest.mark.reliability("survived")  — one of
survived (bounded faults: same output, one job), refused (unbounded faults: clear exit, no
output), crash-resume, hostile, fuzz, load, leaks.
"""

from __future__ import annotations

import json
import os

import pytest

FULL = os.environ.get("GENSVC_RELIABILITY") == "full"
RESULTS_ENV = "GENSVC_RELIABILITY_RESULTS"
FIGURES = ("survived", "refused", "crash-resume", "hostile", "fuzz", "load", "leaks")


def cases(all_cases: list, fast: int) -> list:
    """Every case under `make reliability`; else `fast` of them spread evenly (first and last kept)."""
    if FULL or len(all_cases) <= fast:
        return list(all_cases)
    if fast <= 1:
        return list(all_cases[:1])
    step = (len(all_cases) - 1) / (fast - 1)
    return [all_cases[round(i * step)] for i in range(fast)]


def pytest_collection_modifyitems(items):
    for item in items:
        marker = item.get_closest_marker("reliability")
        if marker is not None and (not marker.args or marker.args[0] not in FIGURES):
            raise pytest.UsageError(f"{item.nodeid}: reliability marker needs one of {FIGURES}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("reliability")
    path = os.environ.get(RESULTS_ENV)
    if marker is None or not path:
        return
    # one line per cell: its call phase, or the setup that failed or skipped it
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        cell = {"figure": marker.args[0], "nodeid": item.nodeid, "outcome": report.outcome,
                "seconds": round(report.duration, 2),
                "reason": (str(report.longrepr).strip().splitlines() or [""])[-1][:300]
                if report.outcome != "passed" else ""}
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(cell) + "\n")
