"""The reliability table: `make reliability`'s results file -> the matrix on stdout and docs/reliability.md.

    python tests/reliability/report.py RESULTS.jsonl [OUT.md]

RESULTS.jsonl has one line per cell (tests/reliability/conftest.py writes them). A cell's id is
read as its row: `cgi-submit-503-bounded` is service cgi, operation submit, fault 503-bounded;
an id that names no service is kept whole as the fault. Cells that differ only by a seed or a
moment (`cgi-submit-kill-17`) are counted together. Exit 1 when a cell failed (the document is
written all the same), 2 when there is nothing to report.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

# each figure as the summary names it, in the order; a figure not named here is shown under its own name
FIGURES = {"survived": "faults survived", "refused": "refused clearly", "crash-resume": "crash-resume exactly-once",
           "hostile": "hostile answers refused", "fuzz": "fuzzed calls", "load": "load", "leaks": "leaks"}
SERVICES = ("bravo", "opencravat", "cgi", "cavatica", "opencga", "merge", "workflow", "all")
# words that start the fault part of an id (tests/reliability/faults.py and the other cells' ids): what precedes is the operation
FAULT_WORDS = {"refused", "drop", "truncated", "truncate", "stall", "restart", "job", "kill", "maintenance", "valid",
               "invalid", "bounded", "unbounded", "hostile", "leak", "fails", "timeout", "slow", "html", "zip", "bomb"}
COUNTED = ("passed", "failed", "xfailed", "xpassed")  # a skipped cell did not run: not in x/y
MARKS = {"passed": "ok", "failed": "FAILED", "xfailed": "xfail", "xpassed": "XPASS", "skipped": "skipped"}
HTTP_STATUS = range(100, 600)  # a trailing number in this range is a fault (503), not a seed


@dataclass
class Cell:
    figure: str
    nodeid: str
    outcome: str
    seconds: float = 0.0
    reason: str = ""
    finished: float | None = None
    properties: dict = field(default_factory=dict)
    service: str = ""
    operation: str = ""
    fault: str = ""

    @property
    def case(self) -> str:
        """The parameter id (inside the brackets), or the test's name when it has none."""
        if "[" in self.nodeid and self.nodeid.endswith("]"):
            return self.nodeid[self.nodeid.index("[") + 1:-1]
        return self.test

    @property
    def test(self) -> str:
        return self.nodeid.split("::")[-1].split("[")[0]


def read_cells(path: Path) -> tuple[list[Cell], int]:
    """The cells of a results file, the last line of each nodeid winning (a rerun); and the number of lines unread."""
    cells: dict[str, Cell] = {}
    unread = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            cell = Cell(figure=str(raw["figure"]), nodeid=str(raw["nodeid"]), outcome=str(raw["outcome"]),
                        seconds=float(raw.get("seconds") or 0), reason=str(raw.get("reason") or ""),
                        finished=raw.get("finished"), properties=dict(raw.get("properties") or {}))
        except (ValueError, KeyError, TypeError, AttributeError):
            unread += 1
            continue
        cell.service, cell.operation, cell.fault = parse_id(cell.case, cell.nodeid, known_operations())
        cells[cell.nodeid] = cell
    return list(cells.values()), unread


def known_operations() -> dict[str, set[str]]:
    """Each service's operations from the schemas when gensvc is importable (it names operations with a hyphen)."""
    global _OPERATIONS
    if _OPERATIONS is None:
        try:
            from gensvc import schema

            _OPERATIONS = defaultdict(set)
            for service, operation, _ in schema.operations():
                _OPERATIONS[service].add(operation)
        except Exception:  # the report reads a results file; the package may be elsewhere
            _OPERATIONS = {}
    return _OPERATIONS


_OPERATIONS: dict | None = None


def parse_id(case: str, nodeid: str = "", operations: dict | None = None) -> tuple[str, str, str]:
    """(service, operation, fault) of a cell id; service 'all' when neither the id nor the test names one."""
    operations = operations or {}
    tokens = [t for t in case.split("-") if t]
    if tokens and tokens[0].lower() in SERVICES:
        service = tokens[0].lower()
        rest = tokens[1:]
        known = operations.get(service, set())
        for size in (3, 2, 1):  # an operation of several words (cancer-types) before one of one
            if len(rest) > size and "-".join(rest[:size]) in known:
                return service, "-".join(rest[:size]), "-".join(rest[size:])
        # else the operation is what comes before the fault: a number (503) or a word that names one
        words = next((i for i, token in enumerate(rest) if token[0].isdigit() or token.lower() in FAULT_WORDS), len(rest))
        if words == len(rest) and len(rest) > 1:
            words = 1  # nothing reads as a fault: the first word is the operation
        return service, "-".join(rest[:words]) or "-", "-".join(rest[words:]) or "-"
    # the service in the test's file or name (test_cgi_faults.py::...[submit-503]) stands before the id
    named = [s for s in SERVICES if re.search(rf"(^|[^a-z]){s}([^a-z]|$)", nodeid.split("[")[0].lower())]
    if len(named) == 1:
        return parse_id(f"{named[0]}-{case}", "", operations)
    return "all", "-", case or "-"


def group_key(cell: Cell, siblings: set[str]) -> str:
    """The fault with a trailing seed or moment dropped (kill-17 -> kill) when other cells share what is left."""
    match = re.fullmatch(r"(.*?)[-_]?(\d+)", cell.fault)
    if match and match.group(1) and int(match.group(2)) not in HTTP_STATUS and match.group(1) in siblings:
        return match.group(1).rstrip("-_")
    return cell.fault


def grouped(cells: list[Cell]) -> list[tuple[tuple[str, str, str], list[Cell]]]:
    """Rows (service, operation, fault) -> their cells, in the order first seen."""
    stems: dict[tuple[str, str], defaultdict] = defaultdict(lambda: defaultdict(int))
    for cell in cells:
        match = re.fullmatch(r"(.*?)[-_]?(\d+)", cell.fault)
        if match and match.group(1):
            stems[(cell.service, cell.operation)][match.group(1)] += 1
    rows: dict[tuple[str, str, str], list[Cell]] = {}
    for cell in cells:
        siblings = {stem for stem, n in stems[(cell.service, cell.operation)].items() if n > 1}
        rows.setdefault((cell.service, cell.operation, group_key(cell, siblings)), []).append(cell)
    return sorted(rows.items(), key=lambda row: row_order(*row[0]))


def row_order(service: str, operation: str, fault: str = "") -> tuple:
    """Services in their usual order, then operations and faults by name (statuses by number)."""
    rank = SERVICES.index(service) if service in SERVICES else len(SERVICES)
    return rank, service, operation, [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in fault.split("-")]


def tally(cells: list[Cell]) -> tuple[int, int]:
    """(passed, counted): an xfail is counted and not passed; a skip is not counted."""
    counted = [c for c in cells if c.outcome in COUNTED]
    return sum(c.outcome == "passed" for c in counted), len(counted)


def result_text(cells: list[Cell]) -> str:
    if len(cells) == 1:
        return MARKS.get(cells[0].outcome, cells[0].outcome)
    passed, counted = tally(cells)
    others = sorted({MARKS.get(c.outcome, c.outcome) for c in cells if c.outcome != "passed"})
    return f"{passed}/{counted}" + (f" ({', '.join(others)})" if others else "")


def figure_order(cells: list[Cell]) -> list[str]:
    present = {c.figure for c in cells}
    return [f for f in FIGURES if f in present] + sorted(present - set(FIGURES))


def summary_line(figure: str, cells: list[Cell]) -> str:
    passed, counted = tally(cells)
    skipped = sum(c.outcome == "skipped" for c in cells)
    tail = f", {skipped} skipped" if skipped else ""
    if figure == "leaks":
        found = counted - passed
        return f"leaks: {found} (runs searched clean {passed}/{counted}{tail})"
    if figure == "load":
        extra = "; ".join(", ".join(f"{k} {v}" for k, v in c.properties.items()) for c in cells if c.properties)
        return f"load: {passed}/{counted}{tail}" + (f" ({extra})" if extra else "")
    return f"{FIGURES.get(figure, figure)}: {passed}/{counted}{tail}"


def commit_of(repo: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def when(cells: list[Cell]) -> tuple[str, float | None]:
    """The run's date (its last cell's end) and its wall time from the first cell's start to the last's end."""
    finished = [c for c in cells if isinstance(c.finished, (int, float))]
    if not finished:
        return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), None
    first = min(finished, key=lambda c: c.finished)
    last = max(c.finished for c in finished)
    wall = last - (first.finished - first.seconds)
    return datetime.fromtimestamp(last, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), wall


def escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(cells: list[Cell], commit: str, host: str, unread: int = 0) -> str:
    date, wall = when(cells)
    total = sum(c.seconds for c in cells)
    timing = f"{len(cells)} cells, {total:.0f} s in cells" + (f", {wall / 60:.1f} min wall" if wall else "")
    lines = ["# Reliability", "",
             "<!-- generated by `make reliability` (tests/reliability/report.py); edit the cells, not this file -->", "",
             f"Measured {date} at commit `{commit}` on {host}; {timing}.", "",
             "What each figure means: **faults survived**, a bounded fault (injected twice) and the call still gives "
             "the clean run's output with one job on the server; **refused clearly**, an unbounded fault ends in one "
             "line and a documented exit code, with no output and no retried 4xx; **crash-resume exactly-once**, a run "
             "killed at a random moment and rerun leaves one job per input; **hostile answers refused**, a server's "
             "malicious or broken answer is refused in one line with nothing written outside the output directory; "
             "**fuzzed calls**, calls generated from each schema (invalid: exit 2, nothing sent; valid: no crash); "
             "**load**, concurrent submit, poll, download chains all complete, no job lost or duplicated, no 429; "
             "**leaks**, canary secrets found in any file or stream of a DEBUG run.", "",
             "## Summary", ""]
    figures = figure_order(cells)
    for figure in figures:
        lines.append(f"- {summary_line(figure, [c for c in cells if c.figure == figure])}")
    if unread:
        lines.append(f"- {unread} line(s) of the results file could not be read")
    for figure in figures:
        of_figure = [c for c in cells if c.figure == figure]
        heading = summary_line(figure, of_figure)
        lines += ["", f"## {heading[0].upper()}{heading[1:]}", "",
                  "| service | operation | case | result | seconds |", "|---|---|---|---|---|"]
        for (service, operation, fault), row in grouped(of_figure):
            lines.append(f"| {service} | {operation} | {escape(fault)} | {result_text(row)} | "
                         f"{sum(c.seconds for c in row):.1f} |")
        measured = [c for c in of_figure if c.properties]
        if measured:
            lines += ["", "| cell | measured |", "|---|---|"]
            lines += [f"| {escape(c.case)} | {escape(', '.join(f'{k}: {v}' for k, v in c.properties.items()))} |"
                      for c in measured]
    bad = [c for c in cells if c.outcome not in ("passed",)]
    lines += ["", "## Failures, expected failures and skips", ""]
    if bad:
        lines += ["| figure | cell | outcome | reason |", "|---|---|---|---|"]
        lines += [f"| {c.figure} | `{escape(c.nodeid)}` | {MARKS.get(c.outcome, c.outcome)} | {escape(c.reason) or '-'} |"
                  for c in bad]
    else:
        lines.append("None: every cell passed.")
    return "\n".join(lines) + "\n"


def matrix(cells: list[Cell]) -> str:
    """The terminal's table: per figure, each service's operations with passed/counted."""
    out = []
    for figure in figure_order(cells):
        of_figure = [c for c in cells if c.figure == figure]
        out.append(summary_line(figure, of_figure))
        by_row: dict[tuple[str, str], list[Cell]] = {}
        for cell in of_figure:
            by_row.setdefault((cell.service, cell.operation), []).append(cell)
        for (service, operation), row in sorted(by_row.items(), key=lambda item: row_order(*item[0])):
            passed, counted = tally(row)
            failed = [c.fault for c in row if c.outcome == "failed"]
            out.append(f"    {service:<11} {operation:<13} {passed:>3}/{counted:<3}"
                       + (f"  failed: {', '.join(failed)}" if failed else ""))
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: report.py RESULTS.jsonl [OUT.md]", file=sys.stderr)
        return 2
    results = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else None
    if not results.is_file():
        print(f"reliability report: no results file {results}; run `make reliability`", file=sys.stderr)
        return 2
    cells, unread = read_cells(results)
    if not cells:
        print(f"reliability report: {results} holds no cells; did pytest collect tests/reliability?", file=sys.stderr)
        return 2
    print(matrix(cells))
    if out is not None:
        text = markdown(cells, commit_of(Path(__file__).resolve().parents[2]), machine(), unread)
        out.parent.mkdir(parents=True, exist_ok=True)
        temporary = out.with_name(f".{out.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(out)  # atomic: an interrupted report leaves the previous table
        print(f"wrote {out}")
    failed = [c for c in cells if c.outcome == "failed"]
    if failed:
        print(f"{len(failed)} cell(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
