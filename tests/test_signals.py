"""A run stopped by a signal: the conventional exit code (128 + the signal), no output left."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from helpers import add_fault, run_gensvc
from gensvc.emulators.server import start_emulator

VCF = (
    "##fileformat=VCFv4.2\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "chr7\t140753336\t.\tA\tT\t.\tPASS\t.\n"
)
REGION = ["bravo", "region", "--chrom", "22", "--start", "30000000", "--end", "30600000"]


def start_stuck_region(tmp_path, env, bravo):
    """A CLI process waiting on a request the emulator holds for a minute; returns it once the
    request has been sent (its DEBUG log says so)."""
    add_fault(bravo, path="*/region", kind="delay", seconds=60, count=1)
    out = tmp_path / "out" / "region.tsv"
    log = tmp_path / "region.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gensvc.cli", *REGION, "--output", f"variants={out}", "--log", str(log)],
        env=env | {"GENSVC_LOG_LEVEL": "DEBUG", "GENSVC_BRAVO_READ_TIMEOUT": "120"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for _ in range(600):
        if log.exists() and "/region?" in log.read_text():
            return process, out, log
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the run never sent its request: {process.communicate()}")


def left_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize(("sent", "code", "logged"), [
    (signal.SIGTERM, 143, "terminated"),
    (signal.SIGINT, 130, "interrupted"),  # still: Ctrl-C is not lost to the TERM handler
], ids=["sigterm", "sigint"])
def test_a_signal_mid_request_exits_128_plus_its_number_and_leaves_no_output(tmp_path, env, bravo, sent, code, logged):
    process, out, log = start_stuck_region(tmp_path, env, bravo)
    process.send_signal(sent)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert logged in log.read_text()
    assert not out.exists()
    assert left_in(out.parent) == []


@pytest.fixture(scope="module")
def opencravat():
    with start_emulator("opencravat", time_scale=0.05) as emulator:
        yield emulator


def test_sigterm_after_one_report_of_two_was_downloaded_leaves_neither(tmp_path, env, opencravat):
    env = env | {"GENSVC_OPENCRAVAT_URL": opencravat.url, "GENSVC_OPENCRAVAT_BACKOFF": "0.05"}
    vcf = tmp_path / "in.vcf"
    vcf.write_text(VCF)
    receipt, status = tmp_path / "receipt.json", tmp_path / "status.json"
    done = run_gensvc(["opencravat", "submit", "--input", f"files={vcf}", "--reports", "tsv", "--output", f"receipt={receipt}"], env)
    assert done.returncode == 0, done.stderr
    done = run_gensvc(["opencravat", "poll", "--input", f"receipt={receipt}", "--output", f"status={status}",
                       "--first-wait", "0.2", "--max-wait", "0.5", "--timeout", "120"], env)
    assert done.returncode == 0, done.stderr
    add_fault(opencravat, path="*/reports/vcf", method="GET", kind="delay", seconds=60, count=1)
    out, log = tmp_path / "reports", tmp_path / "report.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gensvc.cli", "opencravat", "report", "--input", f"receipt={receipt}",
         "--output", f"tsv={out / 'r.tsv'}", "--output", f"vcf={out / 'r.vcf'}", "--log", str(log)],
        env=env | {"GENSVC_LOG_LEVEL": "DEBUG", "GENSVC_OPENCRAVAT_READ_TIMEOUT": "120"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(600):  # until the vcf report's download is under way, the tsv one done
            if log.exists() and re.search(r"GET \S+/reports/vcf headers", log.read_text()):
                break
            time.sleep(0.05)
        staged = left_in(out)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert any("partial" in name for name in staged), staged  # a half-done run was there to clean up
    assert process.returncode == 143, stderr
    assert left_in(out) == []


def test_sigterm_during_live_annotation_sends_none_of_the_queued_requests(tmp_path, env, opencravat):
    requests.delete(f"{opencravat.root}/_emulator/stats", timeout=5)
    env = env | {"GENSVC_OPENCRAVAT_URL": opencravat.url, "GENSVC_OPENCRAVAT_READ_TIMEOUT": "120"}
    vcf = tmp_path / "many.vcf"
    vcf.write_text(VCF.splitlines(True)[0] + "##contig=<ID=chr7,length=159345973>\n" + "".join(VCF.splitlines(True)[1:2])
                   + "".join(f"chr7\t{140753336 + i}\t.\tA\tT\t.\tPASS\t.\n" for i in range(40)))
    add_fault(opencravat, path="*/annotate", kind="delay", seconds=2)
    log = tmp_path / "annotate.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gensvc.cli", "opencravat", "annotate", "--input", f"vcf={vcf}", "--concurrency", "2",
         "--output", f"annotations={tmp_path / 'a.jsonl'}", "--log", str(log)],
        env=env | {"GENSVC_LOG_LEVEL": "DEBUG"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(600):
            if log.exists() and "submit/annotate" in log.read_text():
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        requests.delete(f"{opencravat.root}/_emulator/faults", timeout=5)
    assert process.returncode == 143, stderr
    assert not (tmp_path / "a.jsonl").exists()
    # only the requests already under way when the signal came (2 at a time): 40 were queued
    sent = [line for line in log.read_text().splitlines() if "GET http" in line and "/submit/annotate?" in line and "->" not in line]
    assert 1 <= len(sent) <= 4
