"""Progress of long work: a bar on a terminal, the plan, the limiter's waits and periodic
lines in a log file, a poll's status and elapsed time."""

from __future__ import annotations

import fcntl
import math
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest
import requests

from helpers import BRAVO_TOKEN, read_tsv, run_gensvc
from gensvc.core.ratelimit import RateLimit, SharedRateLimiter
from gensvc.emulators.bravo_data import variants_in
from gensvc.emulators.server import start_emulator

SITES = 12  # far apart: one /variant request each


@pytest.fixture(scope="module")
def bravo_fast():
    # Bravo's own window time-scaled to 9 s: our smaller limits below bind first
    with start_emulator("bravo", tokens=[BRAVO_TOKEN], time_scale=0.01) as emulator:
        yield emulator


@pytest.fixture
def sparse_vcf(tmp_path):
    """A VCF of SITES known variants, each over 250 kb from the next."""
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr22>", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for n in range(SITES):
        v = variants_in("22", 20_000_000 + n * 400_000, 20_005_000 + n * 400_000)[0]
        lines.append(f"chr22\t{v['pos']}\t.\t{v['ref']}\t{v['alt']}\t.\t.\t.")
    path = tmp_path / "sparse.vcf"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def fast_env(env, bravo_fast) -> dict:
    return env | {"GENSVC_BRAVO_URL": bravo_fast.url}


def run_on_terminal(args, env, timeout=120) -> tuple[int, str]:
    """The CLI with stdout and stderr on a pseudo-terminal 120 columns wide; returns what it drew."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "gensvc.cli", *map(str, args)], env=env,
                               stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    drawn, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            drawn += chunk
        return process.wait(timeout=max(1.0, deadline - time.monotonic())), drawn.decode(errors="replace")
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()


def test_a_terminal_shows_a_bar_of_requests_done_out_of_planned_with_the_limiters_wait(tmp_path, fast_env, sparse_vcf):
    out = tmp_path / "freq.tsv"
    code, drawn = run_on_terminal(
        ["bravo", "frequencies", "--input", f"vcf={sparse_vcf}", "--output", f"table={out}"],
        fast_env | {"GENSVC_BRAVO_RATE_LIMIT": "5/2"})
    assert code == 0, drawn
    assert len(read_tsv(out)) == SITES
    frames = re.split(r"[\r\n]", drawn)
    # a tqdm bar, redrawn as requests are done, ending full
    assert any(re.search(rf"bravo frequencies:\s+\d+%\|.*\|\s+[1-9]\d*/{SITES} requests", f) for f in frames), drawn
    assert any(re.search(rf"100%\|.*\| {SITES}/{SITES} requests", f) for f in frames), drawn
    # the plan, and the limiter's wait on the bar
    assert f"planned {SITES} requests: about" in drawn
    assert any(re.search(r"waiting \d+ s for bravo's window", f) for f in frames), drawn
    assert any(re.search(r"ETA \d+ s", f) for f in frames), drawn


def test_a_log_file_gets_the_plan_every_limiter_wait_and_periodic_progress(tmp_path, fast_env, sparse_vcf):
    out, log = tmp_path / "freq.tsv", tmp_path / "freq.log"
    done = run_gensvc(["bravo", "frequencies", "--input", f"vcf={sparse_vcf}", "--output", f"table={out}",
                       "--log", log], fast_env | {"GENSVC_BRAVO_RATE_LIMIT": "5/2", "GENSVC_PROGRESS_INTERVAL": "0"})
    assert done.returncode == 0, done.stderr
    text = log.read_text()
    # 12 requests at 5 per 2 s: two full windows to wait for before the last two can start
    assert re.search(rf"INFO gensvc.progress: bravo frequencies: planned {SITES} requests: about 4 s at 5 per 2 s$",
                     text, flags=re.M), text
    waits = re.findall(r"INFO gensvc.ratelimit: waiting (\d+) s for bravo's window \(5/2 s\)$", text, flags=re.M)
    assert len(waits) >= 2 and all(int(w) in (1, 2) for w in waits), text
    counts = [int(n) for n in re.findall(rf"gensvc.progress: bravo frequencies: (\d+)/{SITES} requests, \d+ s elapsed",
                                         text)]
    assert counts == sorted(counts) and counts[-1] == SITES and len(counts) >= SITES // 2, text
    assert re.search(r"requests, \d+ s elapsed, about \d+ s left$", text, flags=re.M), text
    # the terminal (stderr here is a pipe) gets no bar
    assert "requests" not in done.stderr


def test_without_a_terminal_progress_lines_are_at_most_one_per_interval(tmp_path, fast_env, sparse_vcf):
    out, log = tmp_path / "freq.tsv", tmp_path / "freq.log"
    done = run_gensvc(["bravo", "frequencies", "--input", f"vcf={sparse_vcf}", "--output", f"table={out}",
                       "--log", log], fast_env | {"GENSVC_PROGRESS_INTERVAL": "3600"})
    assert done.returncode == 0, done.stderr
    text = log.read_text()
    assert f"planned {SITES} requests" in text
    assert not re.search(rf"\d+/{SITES} requests", text), text


def test_a_progress_interval_that_is_not_a_number_is_refused_before_any_request(tmp_path, fast_env, sparse_vcf):
    done = run_gensvc(["bravo", "frequencies", "--input", f"vcf={sparse_vcf}", "--output", f"table={tmp_path / 'f.tsv'}"],
                      fast_env | {"GENSVC_PROGRESS_INTERVAL": "often"})
    assert done.returncode == 2
    assert "GENSVC_PROGRESS_INTERVAL" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def oc_slow():
    # a job of about 4.5 s, most of it queued: several checks see it Submitted
    with start_emulator("opencravat", time_scale=1.0) as emulator:
        yield emulator


@pytest.fixture
def oc_env(tmp_path, env, oc_slow) -> dict:
    requests.delete(f"{oc_slow.root}/_emulator/faults", timeout=5)
    vcf = tmp_path / f"in_{time.monotonic_ns()}.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"chr1\t{1000 + time.monotonic_ns() % 1000}\t.\tA\tG\t.\t.\t.\n")
    run_env = env | {"GENSVC_OPENCRAVAT_URL": oc_slow.url}
    done = run_gensvc(["opencravat", "submit", "--input", f"files={vcf}", "--annotators", "clinvar",
                       "--output", f"receipt={tmp_path / 'receipt.json'}"], run_env)
    assert done.returncode == 0, done.stderr
    return run_env


def poll_args(tmp_path):
    return ["opencravat", "poll", "--input", f"receipt={tmp_path / 'receipt.json'}",
            "--output", f"status={tmp_path / 'status.json'}", "--first-wait", "0.2", "--max-wait", "0.4"]


def test_a_poll_logs_the_remote_status_and_the_time_elapsed(tmp_path, oc_env):
    log = tmp_path / "poll.log"
    done = run_gensvc([*poll_args(tmp_path), "--log", log], oc_env | {"GENSVC_PROGRESS_INTERVAL": "0"})
    assert done.returncode == 0, done.stderr
    lines = re.findall(r"gensvc.progress: opencravat job \S+: (.+), (\d+(?:\.\d)?) s elapsed$", log.read_text(), flags=re.M)
    statuses = [status for status, _ in lines]
    assert statuses[-1] == "Finished" and len({s.removeprefix("still ") for s in statuses}) >= 2, lines
    assert any(s.startswith("still ") for s in statuses), lines  # the interval passed with no change: a line anyway
    elapsed = [float(seconds) for _, seconds in lines]
    assert elapsed == sorted(elapsed) and elapsed[-1] > elapsed[0], lines


def test_a_poll_on_a_terminal_shows_the_status_and_elapsed_time(tmp_path, oc_env):
    code, drawn = run_on_terminal(poll_args(tmp_path), oc_env)
    assert code == 0, drawn
    frames = re.split(r"[\r\n]", drawn)
    assert any(re.search(r"opencravat job \S+: (Submitted|Start|Running)[^[]* \[00:0\d elapsed\]", f) for f in frames), drawn
    assert any(re.search(r"opencravat job \S+: Finished \[00:0\d elapsed\]", f) for f in frames), drawn


def test_live_annotation_logs_the_variants_done(tmp_path, env, oc_slow):
    vcf, log = tmp_path / "few.vcf", tmp_path / "annotate.log"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"chr1\t{1000 + 10 * n}\t.\tA\tG\t.\t.\t.\n" for n in range(6)))
    done = run_gensvc(["opencravat", "annotate", "--input", f"vcf={vcf}", "--concurrency", "2",
                       "--output", f"annotations={tmp_path / 'a.jsonl'}", "--log", log],
                      env | {"GENSVC_OPENCRAVAT_URL": oc_slow.url, "GENSVC_PROGRESS_INTERVAL": "0"})
    assert done.returncode == 0, done.stderr
    text = log.read_text()
    assert "opencravat annotate: planned 6 variants" in text
    counts = [int(n) for n in re.findall(r"opencravat annotate: (\d+)/6 variants, \d+ s elapsed", text)]
    assert sorted(counts) == [1, 2, 3, 4, 5, 6], text


# ---- the policy: durations and the limiter's estimate, in-process ----------------------


def test_durations_read_as_a_person_would_say_them():
    from gensvc.core.progress import duration

    assert duration(0.4) == "0 s"
    assert duration(14) == "14 s"
    assert duration(14 * 60 + 10) == "14 min 10 s"
    assert duration(900) == "15 min"
    assert duration(67 * 60 + 20, coarse=True) == "1 h 7 min"
    assert duration(30 * 60 + 20, coarse=True) == "30 min"
    assert duration(2 * 3600) == "2 h"


def test_the_limiters_estimate_follows_its_sliding_window(tmp_path):
    limiter = SharedRateLimiter(RateLimit(180, 900), tmp_path, "bravo", "token")
    window = limiter.window  # 900 s and a small margin
    assert limiter.time_for(0) == 0
    assert limiter.time_for(180) == 0  # a fresh window holds 180 at once
    assert limiter.time_for(181) == pytest.approx(window, abs=0.5)
    # 803 requests: 180 now, then 180 a window, the last 83 in the fifth window
    assert limiter.time_for(803) == pytest.approx(4 * window, abs=0.5)
    limiter.fill()  # another process used the whole window just now
    assert limiter.time_for(1) == pytest.approx(window, abs=0.5)
    assert limiter.time_for(181) == pytest.approx(2 * window, abs=0.5)


def test_the_eta_waits_for_the_window_where_the_pace_so_far_would_promise_seconds(tmp_path):
    from gensvc.core.progress import Reporter

    limiter = SharedRateLimiter(RateLimit(180, 900), tmp_path, "bravo", "token")
    reporter = Reporter("bravo frequencies", total=803, unit="request", limiter=limiter, every=math.inf)
    for _ in range(180):  # the first window's worth, in a burst
        limiter.acquire()
        reporter.advance()
    # 623 to go: three more full windows and part of a fourth, whatever the burst's pace
    assert reporter.eta() == pytest.approx(4 * limiter.window, abs=1.0)
    reporter.close()


def test_a_long_region_logs_its_planned_pages_and_revises_them_as_windows_finish(tmp_path, fast_env):
    out, log = tmp_path / "region.tsv", tmp_path / "region.log"
    done = run_gensvc(["bravo", "region", "--chrom", "22", "--start", "20000000", "--end", "20300000",
                       "--output", f"variants={out}", "--log", log], fast_env | {"GENSVC_PROGRESS_INTERVAL": "0"})
    assert done.returncode == 0, done.stderr
    text = log.read_text()
    # 250,001 and 50,001 bp (the windows share an edge) at 0.1 records per bp, 1000 a page: 26 + 6 pages
    assert re.search(r"bravo region: planned 32 requests \(2 windows at about 0.1 records per bp\): within 180 per 15 min$",
                     text, flags=re.M), text
    totals = [int(total) for total in re.findall(r"bravo region: \d+/(\d+) requests", text)]
    assert totals[0] == 32 and totals[-1] > 32, totals  # the emulator holds more: revised after the first window
    final = re.search(r"bravo region: (\d+) requests in \d+ s$", text, flags=re.M)
    assert final and final.group(1) == re.search(r"done: (\d+) requests", text).group(1), text
