"""Shared fixtures: emulators on loopback and a clean environment (the functions tests
share are in helpers.py)."""

from __future__ import annotations

import pytest
import requests

from gensvc.emulators.server import start_emulator
from helpers import BRAVO_TOKEN, isolated_env, reset_emulator


@pytest.fixture(scope="session")
def bravo_server():
    with start_emulator("bravo", tokens=[BRAVO_TOKEN]) as emulator:
        yield emulator


@pytest.fixture
def bravo(bravo_server):
    """The Bravo emulator with no faults and zeroed counters."""
    reset_emulator(bravo_server)
    yield bravo_server
    requests.delete(f"{bravo_server.root}/_emulator/faults", timeout=5)


@pytest.fixture
def env(tmp_path, bravo) -> dict:
    """An environment pointing at the Bravo emulator, isolated from the user's own settings."""
    return isolated_env(
        tmp_path,
        GENSVC_BRAVO_URL=bravo.url,
        GENSVC_BRAVO_TOKEN=BRAVO_TOKEN,
        GENSVC_BRAVO_BACKOFF="0.05",
        GENSVC_BRAVO_BACKOFF_MAX="0.5",
    )
