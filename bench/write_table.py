"""docs/performance.md from the rows the benchmarks recorded (bench/table.py `record`).

`make bench` runs every benchmark with GENSVC_BENCH_RESULTS naming one JSON-lines file, then
this script: one table row per figure (gensvc, anchor, ratio, goal, met, the command that
reproduces it), grouped by benchmark in the order they ran, under a line that says when,
at which commit and on what machine (cores, load while the rows were recorded). A benchmark
named with --expect that recorded nothing (it failed, or was skipped) is listed as missing,
so a short table never passes for a whole one.
Usage: python bench/write_table.py RESULTS.jsonl docs/performance.md [--expect poll merge ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

COLUMNS = ("figure", "gensvc", "anchor", "ratio", "goal", "met", "command")
REPO = Path(__file__).resolve().parents[1]


def read_rows(path: Path) -> list[dict]:
    """Every row of the results file; a line that is not a JSON object is an error, named."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise SystemExit(f"{path}:{number}: not a JSON row ({exc})") from None
        if not isinstance(row, dict) or "figure" not in row:
            raise SystemExit(f"{path}:{number}: a row needs at least a figure")
        rows.append(row)
    return rows


def bench_of(row: dict) -> str:
    """The benchmark a row came from: its own field, else the bench/<name>.py in its command."""
    if row.get("bench"):
        return str(row["bench"])
    for word in str(row.get("command", "")).split():
        if word.startswith("bench/") and word.endswith(".py"):
            return word[len("bench/"):-len(".py")]
    return "other"


def cell(value) -> str:
    """Markdown table text: pipes escaped, line breaks flattened, nothing shown as a dash."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def command_cell(command) -> str:
    return f"`{cell(command)}`" if command else "–"


def machine_line(rows: list[dict]) -> str:
    loads = [float(r["load"]) for r in rows if isinstance(r.get("load"), (int, float))]
    load = f"load average {min(loads):.1f}–{max(loads):.1f} while recording" if loads else "load not recorded"
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = ", " + line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores{model}; {load}; {platform.system()} {platform.release()}, Python {platform.python_version()}"


def commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!docs/performance.md"],  # the table itself, about to change
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def render(rows: list[dict], *, expected: list[str], when: str, at_commit: str, machine: str,
           mode: str | None = None) -> str:
    by_bench: dict[str, list[dict]] = {}
    for row in rows:
        by_bench.setdefault(bench_of(row), []).append(row)
    met = [r for r in rows if r.get("met") is True]
    unmet = [r for r in rows if r.get("met") is False]
    lines = [
        "# Performance",
        "",
        "<!-- written by `make bench` (bench/write_table.py); edit the benchmarks, not this file -->",
        "",
        f"Measured {when} at commit {at_commit}, on {machine}.",
        "Every figure is one run on a shared machine: read ratios, not seconds. "
        "`ratio` is gensvc / anchor; `met` says whether this run meets the goal.",
        "",
        f"{len(rows)} figures from {len(by_bench)} benchmark{'' if len(by_bench) == 1 else 's'}: {len(met)} goals met, {len(unmet)} not met.",
    ]
    if mode:
        lines += ["", f"**Mode:** {mode}"]
    missing = [name for name in expected if name not in by_bench]
    if missing:
        lines += ["", "**Recorded nothing (failed or not run):** " + ", ".join(f"`bench/{m}.py`" for m in missing)]
    for name, group in by_bench.items():
        lines += ["", f"## {name}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for row in group:
            ratio = row.get("ratio")
            cells = [cell(row.get("figure")), cell(row.get("gensvc")), cell(row.get("anchor")),
                     "–" if ratio is None else f"{float(ratio):.3g}", cell(row.get("goal")), cell(row.get("met")),
                     command_cell(row.get("command"))]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, 0o666 & ~umask)  # a document, readable as any file written plainly (mkstemp makes 0600)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the JSON-lines file the benchmarks appended to")
    parser.add_argument("output", type=Path, help="the Markdown table to write (docs/performance.md)")
    parser.add_argument("--expect", nargs="*", default=[], help="benchmarks that should have recorded rows")
    parser.add_argument("--mode", help="how the benchmarks were run, when not at their defaults")
    args = parser.parse_args(argv)
    if not args.results.is_file():
        print(f"write_table: no results file {args.results}: run the benchmarks with GENSVC_BENCH_RESULTS set "
              "(make bench does)", file=sys.stderr)
        return 2
    rows = read_rows(args.results)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    write_atomically(args.output, render(rows, expected=args.expect, when=when, at_commit=commit(),
                                         machine=machine_line(rows), mode=args.mode))
    print(f"{args.output}: {len(rows)} figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
