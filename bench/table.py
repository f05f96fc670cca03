"""One row of docs/performance.md, written by a benchmark beside what it prints.

Every benchmark calls `record(...)` for each figure it measures. When `make bench` runs it,
GENSVC_BENCH_RESULTS names a JSON-lines file the rows are appended to; `bench/write_table.py`
turns that file into docs/performance.md. Run alone, a benchmark only prints.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

RESULTS_ENV = "GENSVC_BENCH_RESULTS"


def record(figure: str, gensvc: str, anchor: str, ratio: float | None, goal: str,
           met: bool | None, command: str | None = None) -> None:
    """figure: what is measured; gensvc / anchor: the two measured values as text with units
    (anchor is what the ratio is taken against: a peer tool, a lower bound, a budget);
    goal: the issue's target in words ("<= 1.0x"); met: whether this run meets it
    (None: no goal); command: what reproduces it (default: this process's own command line)."""
    row = {"figure": figure, "gensvc": gensvc, "anchor": anchor,
           "ratio": None if ratio is None else round(float(ratio), 3), "goal": goal, "met": met,
           "command": command or "python " + shlex.join(sys.argv),
           # which benchmark, and how busy the machine was when the figure was taken
           "bench": Path(sys.argv[0]).stem, "load": round(os.getloadavg()[0], 2)}
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(row) + "\n")
