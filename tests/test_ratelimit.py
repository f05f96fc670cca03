"""The host-wide limiter: parallel processes sharing one token never overrun Bravo's window."""

import re
import subprocess
import sys
from datetime import datetime

import pytest

from helpers import BRAVO_TOKEN, most_in_any_window, stats
from gensvc.emulators.bravo_data import variants_in
from gensvc.emulators.server import start_emulator

WINDOW = 3.0  # Bravo's 180 requests per 15 minutes, time-scaled
LIMIT = 180


def request_times(log_text: str) -> list[float]:
    stamps = re.findall(r"^(\S+ \S+) DEBUG gensvc.http: GET \S+ headers=", log_text, flags=re.M)
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f").timestamp() for s in stamps]


def region_end_with(count: int, start: int) -> int:
    """An end position giving at most ``count`` variants from ``start`` (a site's alleles stay together)."""
    positions = [v["pos"] for v in variants_in("22", start, start + 5000)]
    while positions[count] == positions[count - 1]:
        count -= 1
    return positions[count - 1]


@pytest.mark.slow
def test_four_processes_share_one_window(tmp_path, env):
    with start_emulator("bravo", tokens=[BRAVO_TOKEN], time_scale=WINDOW / 900) as bravo:
        run_env = env | {
            "GENSVC_BRAVO_URL": bravo.url,
            "GENSVC_BRAVO_RATE_LIMIT": f"{LIMIT}/{WINDOW}",
            "GENSVC_LOG_LEVEL": "DEBUG",
        }
        # each process pages through up to 88 variants one at a time: up to 356
        # requests in all, just under two windows' worth
        workers = []
        for n in range(4):
            start = 30_000_000 + n * 10_000
            end = region_end_with(88, start)
            command = [
                sys.executable, "-m", "gensvc.cli", "bravo", "region", "--chrom", "22",
                "--start", str(start), "--end", str(end), "--limit", "1",
                "--output", f"variants={tmp_path / f'r{n}.tsv'}", "--log", str(tmp_path / f"r{n}.log"),
            ]
            workers.append(subprocess.Popen(command, env=run_env, stderr=subprocess.PIPE, text=True))
        for worker in workers:
            assert worker.wait(timeout=120) == 0, worker.stderr.read()
        seen = stats(bravo)
    assert seen["by_status"].get("429", 0) == 0
    times = [t for n in range(4) for t in request_times((tmp_path / f"r{n}.log").read_text())]
    assert len(times) == seen["requests"] > LIMIT
    # never more than the limit in any window; how well the window is used is a speed
    # figure, measured by bench/ratelimit.py (a loaded host cannot keep up with any budget)
    assert most_in_any_window(times, WINDOW) <= LIMIT


def test_runs_from_two_working_directories_share_one_budget(tmp_path, env):
    """With no GENSVC_STATE_DIR, the limiter's state is the user's, whatever the working directory."""
    window, limit = 2.0, 12
    state_home = tmp_path / "xdg-state"
    run_env = {k: v for k, v in env.items() if k != "GENSVC_STATE_DIR"} | {
        "XDG_STATE_HOME": str(state_home),
        "GENSVC_BRAVO_RATE_LIMIT": f"{limit}/{window}",
        "GENSVC_LOG_LEVEL": "DEBUG",
    }
    # the emulator enforces the same limit: a second, private budget would show as 429s
    with start_emulator("bravo", tokens=[BRAVO_TOKEN], time_scale=window / 900, rate_limit=(limit, 900)) as bravo:
        run_env["GENSVC_BRAVO_URL"] = bravo.url
        workers, logs = [], []
        for n in range(2):
            workdir = tmp_path / f"dir{n}"
            workdir.mkdir()
            start = 31_000_000 + n * 10_000
            logs.append(workdir / "region.log")
            command = [
                sys.executable, "-m", "gensvc.cli", "bravo", "region", "--chrom", "22",
                "--start", str(start), "--end", str(region_end_with(15, start)), "--limit", "1",
                "--output", "variants=r.tsv", "--log", str(logs[-1]),
            ]
            workers.append(subprocess.Popen(command, env=run_env, cwd=workdir, stderr=subprocess.PIPE, text=True))
        for worker in workers:
            assert worker.wait(timeout=120) == 0, worker.stderr.read()
        seen = stats(bravo)
    assert seen["by_status"].get("429", 0) == 0
    times = [t for log in logs for t in request_times(log.read_text())]
    assert len(times) == seen["requests"] > limit
    assert most_in_any_window(times, window) <= limit
    # one state file for the user; none in either working directory
    assert len(list((state_home / "gensvc" / "ratelimit").glob("bravo-*.json"))) == 1
    assert not any((tmp_path / f"dir{n}" / ".gensvc").exists() for n in range(2))


def test_rate_limit_setting_is_checked(tmp_path, env, bravo):
    from helpers import run_gensvc

    done = run_gensvc(["bravo", "info", "--output", f"info={tmp_path / 'i.json'}"], env | {"GENSVC_BRAVO_RATE_LIMIT": "lots"})
    assert done.returncode == 2
    assert "REQUESTS/SECONDS" in done.stderr
    assert stats(bravo)["requests"] == 0

