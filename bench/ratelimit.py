"""Rate-limit use by 4 processes sharing one Bravo token, side by side with the
limit itself: requests served, 429s received, the busiest window against the
limit, and throughput against what the limit allows over the same time.

Bravo's 180 requests per 15 minutes is time-scaled to 180 per 3 s.
Usage: python bench/ratelimit.py [--processes 4] [--windows 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

from gensvc.emulators.bravo_data import variants_in
from gensvc.emulators.server import start_emulator
from table import record  # bench/table.py: a row of docs/performance.md

TOKEN = "bench-token-0000"
LIMIT, WINDOW = 180, 3.0


def request_times(log: Path) -> list[float]:
    stamps = re.findall(r"^(\S+ \S+) DEBUG gensvc.http: GET \S+ headers=", log.read_text(), flags=re.M)
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f").timestamp() for s in stamps]


STAMP_RESOLUTION = 0.001  # the log's times are cut to the millisecond


def busiest_window(times: list[float]) -> int:
    """The most requests certainly inside one window: two stamps 2.9995 s apart may be
    requests 3.0004 s apart, which the limit lets through, so those are not counted together."""
    times, best, i = sorted(times), 0, 0
    for j, t in enumerate(times):
        while times[i] <= t - WINDOW + STAMP_RESOLUTION:
            i += 1
        best = max(best, j - i + 1)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--windows", type=int, default=3, help="how many windows' worth of requests to make")
    args = parser.parse_args()
    per_process = LIMIT * args.windows // args.processes - 1
    with tempfile.TemporaryDirectory() as tmp, start_emulator("bravo", tokens=[TOKEN], time_scale=WINDOW / 900) as bravo:
        env = dict(os.environ, GENSVC_BRAVO_URL=bravo.url, GENSVC_BRAVO_TOKEN=TOKEN, GENSVC_LOG_LEVEL="DEBUG",
                   GENSVC_BRAVO_RATE_LIMIT=f"{LIMIT}/{WINDOW}", GENSVC_STATE_DIR=str(Path(tmp) / "state"))
        workers, started = [], time.time()
        for n in range(args.processes):
            start = 30_000_000 + n * 50_000
            end = variants_in("22", start, start + 20_000)[per_process - 1]["pos"]
            log = Path(tmp) / f"w{n}.log"
            workers.append((log, subprocess.Popen(
                [sys.executable, "-m", "gensvc.cli", "bravo", "region", "--chrom", "22", "--start", str(start),
                 "--end", str(end), "--limit", "1", "--output", f"variants={Path(tmp) / f'w{n}.tsv'}", "--log", str(log)],
                env=env)))
        codes = [worker.wait() for _, worker in workers]
        elapsed = time.time() - started
        served = requests.get(f"{bravo.root}/_emulator/stats", timeout=5).json()
        times = [t for log, _ in workers for t in request_times(log)]
    spanned = int((max(times) - min(times)) // WINDOW) + 1
    print(f"{args.processes} processes, limit {LIMIT} per {WINDOW:g} s (Bravo's 180/15 min scaled), exit codes {codes}")
    print(f"requests served: {served['requests']}, 429 answers: {served['by_status'].get('429', 0)}")
    print(f"busiest window: {busiest_window(times)} requests; busiest / limit = {busiest_window(times) / LIMIT:.3f}")
    print(f"use of the windows spanned ({spanned}): {len(times) / (LIMIT * spanned):.3f}")
    minimum = (len(times) - 1) // LIMIT * WINDOW
    print(f"wall time {elapsed:.1f} s against the limit's minimum {minimum:.1f} s")
    refused, busiest, use = served["by_status"].get("429", 0), busiest_window(times), len(times) / (LIMIT * spanned)
    setting = f"{args.processes} processes sharing one Bravo token, {LIMIT} per {WINDOW:g} s"
    record(f"rate limit: busiest window ({setting})", f"{busiest} requests", f"limit {LIMIT}", busiest / LIMIT,
           "<= 1.0 (never over the limit)", busiest <= LIMIT)
    record(f"rate limit: 429 answers ({setting})", f"{refused} of {served['requests']}", "0", None, "0",
           refused == 0)
    record(f"rate limit: use of the windows spanned ({setting})", f"{len(times)} requests in {spanned} windows",
           f"{LIMIT * spanned} allowed", use, "", None)  # no goal set: how much of the budget a run gets
    return 0


if __name__ == "__main__":
    sys.exit(main())
