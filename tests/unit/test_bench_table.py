"""bench/table.py and bench/write_table.py in process: rows a benchmark records under
GENSVC_BENCH_RESULTS become docs/performance.md's table, grouped by benchmark, with the
machine line and the benchmarks that recorded nothing named."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import table, write_table

REPO = Path(__file__).resolve().parents[2]


def test_record_appends_one_json_row_with_its_benchmark_and_load_when_the_results_file_is_named(
        tmp_path, monkeypatch):
    results = tmp_path / "rows.jsonl"
    monkeypatch.setenv(table.RESULTS_ENV, str(results))
    monkeypatch.setattr(sys, "argv", ["bench/poll.py", "--scale", "0.01"])
    table.record("poll delay, 30 s job", "1.2 s", "3.0 s", 0.4, "<= 3 s", True)
    table.record("poll requests, 30 s job", "9", "4", 2.25, None, None, command="make bench")
    first, second = [json.loads(line) for line in results.read_text().splitlines()]
    assert first["bench"] == "poll" and first["command"] == "python bench/poll.py --scale 0.01"
    assert first["ratio"] == 0.4 and first["met"] is True and isinstance(first["load"], float)
    assert second["command"] == "make bench" and second["met"] is None


def test_record_writes_nothing_when_no_results_file_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv(table.RESULTS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    table.record("a figure", "1", "2", 0.5, "<= 1", True)
    assert list(tmp_path.iterdir()) == []


def rows_file(tmp_path, rows) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


ROWS = [
    {"figure": "merge time", "gensvc": "27 s", "anchor": "bcftools 20 s", "ratio": 1.35, "goal": "<= 1.0x",
     "met": False, "command": "python bench/merge.py --variants 1000000", "bench": "merge", "load": 3.1},
    {"figure": "poll delay | 2 min job", "gensvc": "8.0 s", "anchor": "fixed 10 s: 5.0 s", "ratio": 1.6,
     "goal": "<= 12 s", "met": True, "command": "python bench/poll.py", "bench": "poll", "load": 1.4},
    {"figure": "merge RSS", "gensvc": "180 MB", "anchor": "200 MB", "ratio": 0.9, "goal": "<= 200 MB",
     "met": True, "command": "python bench/merge.py --variants 1000000", "load": 2.0},
    {"figure": "start-up", "gensvc": "0.2 s", "anchor": "", "ratio": None, "goal": "", "met": None,
     "command": "python bench/startup.py"},
]


def test_the_table_has_a_row_per_figure_grouped_by_benchmark_in_recording_order(tmp_path):
    out = tmp_path / "docs" / "performance.md"
    assert write_table.main([str(rows_file(tmp_path, ROWS)), str(out), "--expect", "merge", "poll", "startup"]) == 0
    text = out.read_text()
    assert text.index("## merge") < text.index("## poll") < text.index("## startup")
    merge = text[text.index("## merge"):text.index("## poll")]
    assert "| merge time | 27 s | bcftools 20 s | 1.35 | <= 1.0x | **no** | `python bench/merge.py --variants 1000000` |" in merge
    assert "| merge RSS | 180 MB | 200 MB | 0.9 | <= 200 MB | yes |" in merge  # bench from its command
    assert "| poll delay \\| 2 min job |" in text  # a pipe in a cell does not split it
    assert "| start-up | 0.2 s | – | – | – | – | `python bench/startup.py` |" in text
    assert "4 figures from 3 benchmarks: 2 goals met, 1 not met." in text
    assert "load average 1.4–3.1 while recording" in text and "cores" in text and "commit " in text
    assert "Recorded nothing" not in text
    assert out.stat().st_mode & 0o044 == 0o044  # readable by all, as a plainly written file


def test_a_benchmark_expected_but_without_rows_is_named_as_missing(tmp_path):
    out = tmp_path / "performance.md"
    write_table.main([str(rows_file(tmp_path, ROWS[:2])), str(out), "--expect", "merge", "poll", "transfer",
                      "startup", "--mode", "quick: merge of 200,000 records"])
    text = out.read_text()
    assert "**Recorded nothing (failed or not run):** `bench/transfer.py`, `bench/startup.py`" in text
    assert "**Mode:** quick: merge of 200,000 records" in text


def test_a_line_that_is_not_a_row_stops_the_table_with_its_line_number(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(SystemExit, match=r"rows.jsonl:2: not a JSON row"):
        write_table.main([str(path), str(tmp_path / "performance.md")])
    assert not (tmp_path / "performance.md").exists()


def test_without_a_results_file_the_command_says_how_to_make_one_and_exits_2(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "write_table.py"), str(tmp_path / "none.jsonl"),
                           str(tmp_path / "performance.md")], capture_output=True, text=True)
    assert done.returncode == 2
    assert "no results file" in done.stderr and "GENSVC_BENCH_RESULTS" in done.stderr
    assert "Traceback" not in done.stderr
