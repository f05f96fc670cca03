"""Sorting more items than memory should hold: sorted runs on disk, merged.

Items are JSON values. At most ``run_size`` of them are in memory at once (plus one per
run while merging), and at most ``fan_in`` run files are open at once. The sort is
stable, like ``sorted``: runs are consecutive stretches of the input, each sorted stably,
and a merge prefers the earlier run on a tie.
"""

from __future__ import annotations

import heapq
import json
import tempfile
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

RUN_SIZE = 5_000  # about 15 MB of records in memory
FAN_IN = 64


def sorted_on_disk(items: Iterable, key: Callable, directory: Path,
                   run_size: int = RUN_SIZE, fan_in: int = FAN_IN) -> Iterator:
    """``items`` in ``key`` order; scratch files go to a fresh folder in ``directory``."""
    items = iter(items)
    first = sorted(islice(items, run_size), key=key)
    if len(first) < run_size:  # it all fits: no disk needed
        yield from first
        return
    with tempfile.TemporaryDirectory(dir=directory, prefix=".sort-") as scratch:
        runs, chunk = [], first
        while chunk:
            runs.append(_write_run(Path(scratch) / f"run-{len(runs)}", chunk))
            chunk = sorted(islice(items, run_size), key=key)
        passes = 0
        while len(runs) > fan_in:  # merge in passes, so that few files are open at once
            passes += 1
            groups = [runs[i:i + fan_in] for i in range(0, len(runs), fan_in)]
            runs = [_write_run(Path(scratch) / f"pass-{passes}-{n}", _merged(group, key))
                    for n, group in enumerate(groups)]
        yield from _merged(runs, key)


def _write_run(path: Path, items: Iterable) -> Path:
    with open(path, "w") as handle:
        for item in items:
            handle.write(json.dumps(item, separators=(",", ":")) + "\n")
    return path


def _merged(runs: list[Path], key: Callable) -> Iterator:
    handles = [open(run) for run in runs]
    try:
        yield from heapq.merge(*((json.loads(line) for line in handle) for handle in handles), key=key)
    finally:
        for handle in handles:
            handle.close()
        for run in runs:
            run.unlink(missing_ok=True)
