"""What tests share besides fixtures (those stay in conftest.py): the CLI and Snakemake
run as a user runs them, an environment cut off from the user's own settings, the
emulators' control routes, small VCFs, and readers of what gensvc writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
BRAVO_TOKEN = "test-bravo-token-5e1f0c9a77"
VCF_HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def isolated_env(tmp_path, **variables) -> dict:
    """This process's environment without any GENSVC_/SB_ setting, with a HOME, an XDG
    state dir and a gensvc state dir of the test's own (so never the user's credentials
    or limiter state), plus ``variables``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GENSVC_", "SB_"))}
    home = Path(tmp_path) / "home"
    home.mkdir(exist_ok=True)
    return {**clean, "HOME": str(home), "XDG_STATE_HOME": str(Path(tmp_path) / "xdg-state"),
            "GENSVC_STATE_DIR": str(Path(tmp_path) / "state"), **variables}


def write_vcf(path, *records: str, header: str = VCF_HEADER) -> Path:
    """A VCF at ``path`` of ``header`` and tab-separated ``records`` (CHROM to INFO)."""
    path = Path(path)
    path.write_text(header + "".join(f"{record}\n" for record in records))
    return path


def send_json(handler, body, status: int = 200) -> None:
    """Answer an http.server request with ``body`` as JSON (a stand-in server's every answer)."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def reset_emulator(emulator) -> None:
    """No faults and zeroed counters (and the service's windows), as before a test."""
    requests.delete(f"{emulator.root}/_emulator/faults", timeout=5).raise_for_status()
    requests.delete(f"{emulator.root}/_emulator/stats", timeout=5).raise_for_status()


def stats(emulator) -> dict:
    return requests.get(f"{emulator.root}/_emulator/stats", timeout=5).json()


def add_fault(emulator, **fault) -> None:
    requests.post(f"{emulator.root}/_emulator/faults", json=fault, timeout=5).raise_for_status()


def run_gensvc(args, env, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, as a shell or Nextflow user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "gensvc.cli", *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_snakemake(workdir, env, *extra, timeout=300) -> subprocess.CompletedProcess:
    """Snakemake in ``workdir``, wrappers resolved to this checkout."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--wrapper-prefix", f"{(REPO / 'wrappers').as_uri()}/", *extra],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
    )


def most_in_any_window(times: list[float], window: float) -> int:
    """The most of ``times`` (seconds) that fall within any ``window`` seconds: what a rate limit bounds."""
    times = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - window:
            first += 1
        best = max(best, last - first + 1)
    return best


def read_tsv(path) -> list[dict]:
    lines = Path(path).read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def read_json(path):
    return json.loads(Path(path).read_text())
