"""Fixtures for the emulator tests: real servers on loopback, talked to with requests."""

import pytest
import requests

from gensvc.emulators import start_emulator

TOKEN = "test-token"


@pytest.fixture(scope="module")
def bravo():
    # A limit high enough that only the rate-limit tests (own emulators) ever see a 429.
    with start_emulator("bravo", tokens=[TOKEN, "second-token"], rate_limit=(1_000_000, 900)) as emulator:
        yield emulator


@pytest.fixture
def api(bravo):
    """GET a Bravo path (relative to the base URL) with a valid token."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"

    def get(path, params=None, **kwargs):
        url = path if path.startswith("http") else bravo.url + path
        return session.get(url, params=params, timeout=30, **kwargs)

    yield get
    session.close()
