"""tests/reliability/report.py turns make reliability's results file into the matrix and docs/reliability.md."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "reliability" / "report.py"
_spec = importlib.util.spec_from_file_location("reliability_report", SCRIPT)
report = sys.modules["reliability_report"] = importlib.util.module_from_spec(_spec)  # a script, not a package module
_spec.loader.exec_module(report)

CELLS = [
    {"figure": "survived", "nodeid": "tests/reliability/test_faults.py::test_bounded[cgi-submit-503-bounded]",
     "outcome": "passed", "seconds": 1.5, "reason": "", "finished": 1_790_000_010.0},
    {"figure": "survived", "nodeid": "tests/reliability/test_faults.py::test_bounded[cgi-poll-429-no-retry-after]",
     "outcome": "failed", "seconds": 2.0, "reason": "AssertionError: 3 jobs on the server", "finished": 1_790_000_012.0},
    {"figure": "refused", "nodeid": "tests/reliability/test_faults.py::test_unbounded[bravo-region-500-unbounded]",
     "outcome": "xfailed", "seconds": 0.5, "reason": "issue 21: Bravo answers 500 for ever", "finished": 1_790_000_013.0},
    {"figure": "refused", "nodeid": "tests/reliability/test_faults.py::test_unbounded[opencga-upload-403]",
     "outcome": "skipped", "seconds": 0.0, "reason": "needs the real server", "finished": 1_790_000_013.5},
    *({"figure": "crash-resume", "nodeid": f"tests/reliability/test_crash.py::test_kill[cgi-submit-kill-{n}]",
       "outcome": "passed" if n != 3 else "failed", "seconds": 1.0, "reason": "" if n != 3 else "2 jobs",
       "finished": 1_790_000_020.0 + n} for n in range(5)),
    {"figure": "hostile", "nodeid": "tests/reliability/test_hostile_cgi.py::test_refused[zip-bomb]",
     "outcome": "passed", "seconds": 0.2, "reason": "", "finished": 1_790_000_030.0},
    {"figure": "fuzz", "nodeid": "tests/reliability/test_fuzzed_calls.py::test_invalid[cgi-cancer-types]",
     "outcome": "passed", "seconds": 3.0, "reason": "", "finished": 1_790_000_031.0},
    {"figure": "load", "nodeid": "tests/reliability/test_load.py::test_chains[100-chains]", "outcome": "passed",
     "seconds": 60.0, "reason": "", "finished": 1_790_000_100.0, "properties": {"chains": 100, "jobs": 100}},
    {"figure": "leaks", "nodeid": "tests/reliability/test_secrets_canary.py::test_no_canary[environment]",
     "outcome": "passed", "seconds": 40.0, "reason": "", "finished": 1_790_000_140.0},
    {"figure": "leaks", "nodeid": "tests/reliability/test_secrets_canary.py::test_no_canary[credentials-file]",
     "outcome": "passed", "seconds": 40.0, "reason": "", "finished": 1_790_000_180.0},
    {"figure": "newfigure", "nodeid": "tests/reliability/test_other.py::test_plain", "outcome": "passed",
     "seconds": 0.1, "reason": "", "finished": 1_790_000_181.0},
]


def write_results(path: Path, cells=CELLS, extra_lines=()) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in cells) + "".join(f"{line}\n" for line in extra_lines))
    return path


def test_a_cell_id_is_read_as_service_operation_and_fault():
    operations = {"cgi": {"submit", "poll", "cancer-types"}, "bravo": {"region"}}
    assert report.parse_id("cgi-submit-503-bounded", "", operations) == ("cgi", "submit", "503-bounded")
    assert report.parse_id("cgi-cancer-types-drop", "", operations) == ("cgi", "cancer-types", "drop")
    assert report.parse_id("bravo-region", "", operations) == ("bravo", "region", "-")
    assert report.parse_id("environment", "t/test_secrets_canary.py::test_no_canary", operations) == (
        "all", "-", "environment")
    assert report.parse_id("zip-bomb", "t/test_hostile_cgi.py::test_refused", operations) == ("cgi", "-", "zip-bomb")
    # an operation kind no schema names: the words before the fault
    assert report.parse_id("opencravat-make-report-429-retry-after-unbounded", "", operations) == (
        "opencravat", "make-report", "429-retry-after-unbounded")
    assert report.parse_id("workflow-kill-7", "", operations) == ("workflow", "-", "kill-7")
    assert report.parse_id("all-100-chains", "", operations) == ("all", "-", "100-chains")
    assert report.parse_id("", "", operations) == ("all", "-", "-")


def test_cells_that_differ_only_by_a_seed_are_one_row_but_http_statuses_stay_apart():
    cells = [report.Cell("crash-resume", f"t.py::k[cgi-submit-kill-{n}]", "passed") for n in range(3)]
    cells += [report.Cell("crash-resume", f"t.py::w[workflow-kill-{n}]", "passed") for n in range(2)]
    cells += [report.Cell("survived", f"t.py::f[cgi-submit-{status}]", "passed") for status in (500, 502)]
    for cell in cells:
        cell.service, cell.operation, cell.fault = report.parse_id(cell.case, cell.nodeid)
    rows = dict(report.grouped(cells))
    assert sorted(rows) == [("cgi", "submit", "500"), ("cgi", "submit", "502"), ("cgi", "submit", "kill"),
                            ("workflow", "-", "kill")]
    assert len(rows[("cgi", "submit", "kill")]) == 3


def test_the_report_writes_every_figure_its_rows_and_each_failure_with_its_reason(tmp_path):
    results = write_results(tmp_path / "results.jsonl", extra_lines=["not json", '{"figure": "load"}'])
    out = tmp_path / "docs" / "reliability.md"
    done = subprocess.run([sys.executable, str(SCRIPT), str(results), str(out)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr  # two cells failed
    assert "2 cell(s) failed" in done.stderr
    text = out.read_text()
    assert "- faults survived: 1/2" in text
    assert "- refused clearly: 0/1, 1 skipped" in text  # an xfail counts and does not pass; a skip is not counted
    assert "- crash-resume exactly-once: 4/5" in text
    assert "- hostile answers refused: 1/1" in text
    assert "- fuzzed calls: 1/1" in text
    assert "- load: 1/1 (chains 100, jobs 100)" in text
    assert "- leaks: 0 (runs searched clean 2/2)" in text and "## Leaks: 0 (runs searched clean 2/2)" in text
    assert "- newfigure: 1/1" in text
    assert "- 2 line(s) of the results file could not be read" in text
    assert "| cgi | submit | 503-bounded | ok | 1.5 |" in text
    assert "| cgi | poll | 429-no-retry-after | FAILED | 2.0 |" in text
    assert "| cgi | submit | kill | 4/5 (FAILED) | 5.0 |" in text
    assert "| bravo | region | 500-unbounded | xfail | 0.5 |" in text
    assert "| survived | `tests/reliability/test_faults.py::test_bounded[cgi-poll-429-no-retry-after]` | FAILED | " \
           "AssertionError: 3 jobs on the server |" in text
    assert "| xfail | issue 21: Bravo answers 500 for ever |" in text
    assert "| skipped | needs the real server |" in text
    assert f"on {report.os.cpu_count()} cores" in text
    assert "Measured 2026-09-21 " in text and "at commit `" in text and "2.9 min wall" in text
    assert "faults survived: 1/2" in done.stdout and "cgi         poll" in done.stdout  # the matrix is printed


def test_a_rerun_cell_counts_once_with_its_last_outcome(tmp_path):
    first = {**CELLS[1], "outcome": "failed"}
    rerun = {**CELLS[1], "outcome": "passed", "reason": ""}
    cells, unread = report.read_cells(write_results(tmp_path / "r.jsonl", [first, rerun]))
    assert (unread, [c.outcome for c in cells]) == (0, ["passed"])


def test_a_leak_is_counted_as_a_leak(tmp_path):
    leaked = [{**CELLS[-2], "outcome": "failed", "reason": "AssertionError: stderr: cgi token"}, CELLS[-3]]
    out = tmp_path / "reliability.md"
    assert report.main([str(write_results(tmp_path / "r.jsonl", leaked)), str(out)]) == 1
    assert "- leaks: 1 (runs searched clean 1/2)" in out.read_text()


def test_no_results_is_one_line_and_exit_2_without_a_document(tmp_path, capsys):
    out = tmp_path / "reliability.md"
    assert report.main([str(tmp_path / "missing.jsonl"), str(out)]) == 2
    (tmp_path / "empty.jsonl").write_text("")
    assert report.main([str(tmp_path / "empty.jsonl"), str(out)]) == 2
    assert not out.exists()
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(line.startswith("reliability report: ") for line in errors)


CELL_TESTS = '''
import pytest

@pytest.mark.reliability("survived")
@pytest.mark.parametrize("case", ["cgi-submit-503-bounded", "cgi-poll-502-bounded"])
def test_bounded(case, record_property):
    record_property("attempts", 2)
    assert case != "cgi-poll-502-bounded", "the server saw 2 jobs"

@pytest.mark.reliability("refused")
@pytest.mark.xfail(reason="issue 99: not yet")
def test_known_gap():
    raise RuntimeError("still open")

@pytest.mark.reliability("hostile")
def test_skipped():
    pytest.skip("no stand-in today")

@pytest.mark.reliability("fuzz")
def test_in_an_environment_without_gensvc_settings(monkeypatch):
    monkeypatch.delenv("GENSVC_RELIABILITY_RESULTS")  # as a test isolating itself from every GENSVC_ variable does

def test_not_a_cell():
    pass
'''


def test_cells_run_by_pytest_are_written_one_line_each_and_reported(tmp_path):
    (tmp_path / "conftest.py").write_text("from tests.reliability.conftest import pytest_runtest_makereport\n")
    (tmp_path / "test_cells.py").write_text(CELL_TESTS)
    results = tmp_path / "results.jsonl"
    env = {**report.os.environ, "PYTHONPATH": str(REPO), "GENSVC_RELIABILITY_RESULTS": str(results)}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "markers=reliability",
                    str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(c["figure"], c["outcome"]) for c in lines] == [
        ("survived", "passed"), ("survived", "failed"), ("refused", "xfailed"), ("hostile", "skipped"),
        ("fuzz", "passed")]
    assert lines[0]["properties"] == {"attempts": 2} and lines[0]["reason"] == ""
    assert lines[1]["reason"].startswith("AssertionError: the server saw 2 jobs")
    assert lines[2]["reason"] == "issue 99: not yet" and lines[3]["reason"] == "Skipped: no stand-in today"
    assert all(isinstance(c["finished"], float) for c in lines)
    cells, unread = report.read_cells(results)
    assert [(c.service, c.operation, c.fault) for c in cells[:2]] == [("cgi", "submit", "503-bounded"),
                                                                      ("cgi", "poll", "502-bounded")]
