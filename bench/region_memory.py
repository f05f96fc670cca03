"""Peak memory of `gensvc bravo region` over a long region: records streamed through a
checkpoint (this checkout) side by side with another checkout (e.g. one from before the
checkpoint, which kept every page in memory), on the same emulator and region.

The emulator serves about one site per 10 bp, so 20 Mb is about 2.3 million records and
2,300 pages; the default of 2 Mb takes a minute or two. Peak RSS is the child's own
(getrusage of the CLI process), in MB.
Usage: python bench/region_memory.py [--mb 2] [--format tsv] [--before /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gensvc.emulators.server import start_emulator
from table import record  # bench/table.py: a row of docs/performance.md

HERE = Path(__file__).resolve().parents[1]
TOKEN = "bench-bravo-token"
START = 20_000_000  # chr22, where the emulator has records throughout


def run(checkout: Path, url: str, mb: float, fmt: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="gensvc-bench-") as scratch:
        out = Path(scratch) / f"region.{fmt}"
        env = {**os.environ, "PYTHONPATH": str(checkout), "GENSVC_BRAVO_URL": url, "GENSVC_BRAVO_TOKEN": TOKEN,
               "GENSVC_BRAVO_RATE_LIMIT": "off", "GENSVC_STATE_DIR": str(Path(scratch) / "state"),
               "XDG_STATE_HOME": str(Path(scratch) / "xdg")}
        command = [sys.executable, "-m", "gensvc.cli", "bravo", "region", "--chrom", "22", "--start", str(START),
                   "--end", str(START + int(mb * 1_000_000)), "--output", f"variants={out}"]
        started = time.monotonic()
        # cwd elsewhere: `python -m` puts the working directory before PYTHONPATH
        process = subprocess.Popen(command, env=env, cwd=scratch, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"{checkout}: exit {process.returncode}: {process.stderr.read().decode()}")
        with open(out) as handle:
            lines = sum(1 for _ in handle)
        return {"seconds": time.monotonic() - started, "peak_mb": usage.ru_maxrss / 1024, "lines": lines,
                "bytes": out.stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=2.0, help="region length in Mb")
    parser.add_argument("--format", default="tsv", choices=["tsv", "json", "vcf"])
    parser.add_argument("--before", type=Path, help="another checkout to run side by side")
    args = parser.parse_args()
    # time-scaled so that the emulator's own 180 per 15 min never refuses the bench
    with start_emulator("bravo", tokens=[TOKEN], time_scale=0.00001) as bravo:
        runs = {"this checkout": run(HERE, bravo.url, args.mb, args.format)}
        if args.before:
            runs[str(args.before)] = run(args.before, bravo.url, args.mb, args.format)
    print(f"bravo region over {args.mb:g} Mb of chr22 to {args.format}:")
    for name, figures in runs.items():
        print(f"  {name}: peak RSS {figures['peak_mb']:.0f} MB, {figures['lines']} lines "
              f"({figures['bytes'] / 1e6:.1f} MB), {figures['seconds']:.0f} s")
    if args.before:
        mine, other = runs["this checkout"], runs[str(args.before)]
        print(f"  peak RSS ratio (other / this): {other['peak_mb'] / mine['peak_mb']:.1f}")
    mine = runs["this checkout"]
    # the floor is the interpreter and its imports; streaming keeps the peak flat whatever the region's length
    record(f"bravo region peak RSS, {args.mb:g} Mb of chr22 ({mine['lines']} lines, {args.format})",
           f"{mine['peak_mb']:.0f} MB", "100 MB", mine["peak_mb"] / 100, "<= 100 MB (records streamed)",
           mine["peak_mb"] <= 100)


if __name__ == "__main__":
    main()
