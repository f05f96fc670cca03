"""Shared fixtures: emulators on loopback, a clean environment, the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from gensvc.emulators.server import start_emulator

REPO = Path(__file__).resolve().parents[1]
BRAVO_TOKEN = "test-bravo-token-5e1f0c9a77"


@pytest.fixture(scope="session")
def bravo_server():
    with start_emulator("bravo", tokens=[BRAVO_TOKEN]) as emulator:
        yield emulator


@pytest.fixture
def bravo(bravo_server):
    """The Bravo emulator with no faults and zeroed counters."""
    requests.delete(f"{bravo_server.root}/_emulator/faults", timeout=5).raise_for_status()
    requests.delete(f"{bravo_server.root}/_emulator/stats", timeout=5).raise_for_status()
    yield bravo_server
    requests.delete(f"{bravo_server.root}/_emulator/faults", timeout=5)


def stats(emulator) -> dict:
    return requests.get(f"{emulator.root}/_emulator/stats", timeout=5).json()


def add_fault(emulator, **fault) -> None:
    requests.post(f"{emulator.root}/_emulator/faults", json=fault, timeout=5).raise_for_status()


@pytest.fixture
def env(tmp_path, bravo) -> dict:
    """An environment pointing at the Bravo emulator, isolated from the user's own settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GENSVC_", "SB_"))}
    home = tmp_path / "home"
    home.mkdir()
    return {
        **clean,
        "HOME": str(home),
        "XDG_STATE_HOME": str(tmp_path / "xdg-state"),  # never the user's own limiter state
        "GENSVC_STATE_DIR": str(tmp_path / "state"),
        "GENSVC_BRAVO_URL": bravo.url,
        "GENSVC_BRAVO_TOKEN": BRAVO_TOKEN,
        "GENSVC_BRAVO_BACKOFF": "0.05",
        "GENSVC_BRAVO_BACKOFF_MAX": "0.5",
    }


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


def read_tsv(path) -> list[dict]:
    lines = Path(path).read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def read_json(path):
    return json.loads(Path(path).read_text())
