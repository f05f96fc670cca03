"""The reliability suite: the fault matrix, crash-resume, hostile answers, fuzzed calls, load.

`make test` runs a fast subset of each matrix (`cases(...)` picks an even spread);
`make reliability` sets GENSVC_RELIABILITY=full for every cell and GENSVC_RELIABILITY_RESULTS
to a JSON-lines file, one line per cell, that tests/reliability/report.py turns into the
table of docs/reliability.md.

Mark every cell with its figure:  @pytest.mark.reliability("survived")  — one of
survived (bounded faults: same output, one job), refused (unbounded faults: clear exit, no
output), crash-resume, hostile, fuzz, load, leaks.

A results line: {"figure", "nodeid", "outcome" (passed, failed, skipped, xfailed, xpassed),
"seconds", "reason" (one line, for all but passed), "finished" (epoch seconds), and
"properties" when the cell recorded some with pytest's `record_property` (e.g. load figures)}.
"""

from __future__ import annotations

import json
import os
import time

import pytest

FULL = os.environ.get("GENSVC_RELIABILITY") == "full"
RESULTS_ENV = "GENSVC_RELIABILITY_RESULTS"
# read once at start-up: a cell that clears every GENSVC_ variable from its environment is still written
RESULTS = os.environ.get(RESULTS_ENV)
FIGURES = ("survived", "refused", "crash-resume", "hostile", "fuzz", "load", "leaks")


def cases(all_cases: list, fast: int) -> list:
    """Every case under `make reliability`; else `fast` of them spread evenly (first and last kept)."""
    if FULL or len(all_cases) <= fast:
        return list(all_cases)
    if fast <= 1:
        return list(all_cases[:1])
    step = (len(all_cases) - 1) / (fast - 1)
    return [all_cases[round(i * step)] for i in range(fast)]


def spread_over_workers(config) -> bool:
    """Whether pytest-xdist hands a module's cells to several workers (``-n N`` with the default
    ``--dist load``), so that a module fixture cannot run every collected cell once for all
    (with ``--dist loadfile``, as ``make reliability`` runs, one worker takes the whole file)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return False
    argv = [*workerinput.get("mainargv", []), *os.environ.get("PYTEST_ADDOPTS", "").split()]
    dist = "load"  # what -n N means without --dist; a worker's own config says "no"
    for before, arg in zip(["", *argv], argv):
        if before == "--dist":
            dist = arg
        elif arg.startswith("--dist="):
            dist = arg.split("=", 1)[1]
    return dist in ("load", "worksteal")


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
    path = RESULTS
    if marker is None or not path:
        return
    # one line per cell: its call phase, or the setup that failed or skipped it
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        cell = {"figure": marker.args[0], "nodeid": item.nodeid, "outcome": _outcome(report),
                "seconds": round(report.duration, 2), "reason": _reason(report, call),
                "finished": round(time.time(), 2)}
        if report.user_properties:  # a cell's own figures, e.g. record_property("chains", 100)
            cell["properties"] = {str(name): value for name, value in report.user_properties}
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(cell, default=str) + "\n")


def _outcome(report) -> str:
    """passed, failed, skipped, or xfailed / xpassed for a cell marked xfail."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.outcome == "skipped" else "xpassed"
    return report.outcome


def _reason(report, call) -> str:
    """One line: the xfail's reason, the skip's, or the exception that failed the cell."""
    if report.outcome == "passed" and not hasattr(report, "wasxfail"):
        return ""
    if getattr(report, "wasxfail", ""):
        text = report.wasxfail
    elif report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        text = str(report.longrepr[-1])
    elif call.excinfo is not None:
        text = call.excinfo.exconly()
    else:
        text = str(report.longrepr)
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return " ".join(lines[:3])[:300]
