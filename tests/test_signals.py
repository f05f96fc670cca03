"""A run stopped by a signal: the conventional exit code (128 + the signal), no output left."""

import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import add_fault

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


def test_sigterm_mid_request_exits_143_and_leaves_no_output(tmp_path, env, bravo):
    process, out, log = start_stuck_region(tmp_path, env, bravo)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert "terminated" in log.read_text()
    assert not out.exists()
    assert left_in(out.parent) == []


def test_sigint_mid_request_still_exits_130_and_leaves_no_output(tmp_path, env, bravo):
    process, out, log = start_stuck_region(tmp_path, env, bravo)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in log.read_text()
    assert not out.exists()
    assert left_in(out.parent) == []
