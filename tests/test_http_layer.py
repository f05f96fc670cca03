"""The HTTP layer against small stand-in servers the tests start: timeouts, one retry
budget per operation step, streamed bodies that stall or break."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import run_gensvc

BRAVO_TOKEN = "stand-in-token"


class StandIn:
    """A loopback HTTP server whose every answer is ``respond(handler, n)`` (n counts from 1).

    ``release`` is set when the test ends, so handlers that wait "for ever" let go."""

    def __init__(self, respond):
        self.respond = respond
        self.requests: list[tuple[str, str, dict]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with stand_in._lock:
                    stand_in.requests.append((self.command, self.path, dict(self.headers)))
                    n = len(stand_in.requests)
                try:
                    stand_in.respond(self, n)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def wait(self, seconds: float) -> None:
        """Hold the answer back (cut short when the test ends)."""
        self.release.wait(seconds)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    started = []

    def start(respond) -> StandIn:
        server = StandIn(respond)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def answer_json(handler, body, status=200) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def bravo_env(tmp_path, url, **settings) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GENSVC_", "SB_"))}
    (tmp_path / "home").mkdir(exist_ok=True)
    return {**clean, "HOME": str(tmp_path / "home"), "GENSVC_STATE_DIR": str(tmp_path / "state"),
            "GENSVC_BRAVO_URL": url, "GENSVC_BRAVO_TOKEN": BRAVO_TOKEN, "GENSVC_BRAVO_BACKOFF": "0.05",
            "GENSVC_BRAVO_BACKOFF_MAX": "0.2", **{f"GENSVC_BRAVO_{k.upper()}": str(v) for k, v in settings.items()}}


INFO = {"dataset": "stand-in", "api_version": "1.0"}


# ---- timeouts ----------------------------------------------------------------------


def test_an_answer_slower_than_the_read_timeout_is_retried_then_exits_5(tmp_path, stand_in):
    def slow(handler, n):
        stand_in_server.wait(8)
        answer_json(handler, INFO)

    stand_in_server = stand_in(slow)
    out = tmp_path / "info.json"
    done = run_gensvc(["bravo", "info", "--output", f"info={out}"],
                      bravo_env(tmp_path, stand_in_server.url, read_timeout=1, max_attempts=3), timeout=60)
    assert done.returncode == 5, done.stderr
    assert len(stand_in_server.requests) == 3  # every attempt timed out, none more
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and "timeout" in line and "3 attempts" in line
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_a_server_that_never_answers_does_not_hang_gensvc(tmp_path, stand_in):
    def never(handler, n):
        stand_in_server.wait(3600)

    stand_in_server = stand_in(never)
    done = run_gensvc(["bravo", "info", "--output", f"info={tmp_path / 'info.json'}"],
                      bravo_env(tmp_path, stand_in_server.url, read_timeout=1, max_attempts=2), timeout=60)
    assert done.returncode == 5, done.stderr
    assert len(stand_in_server.requests) == 2


def test_an_answer_within_the_read_timeout_after_a_slow_one_succeeds(tmp_path, stand_in):
    def slow_once(handler, n):
        if n == 1:
            stand_in_server.wait(8)
        answer_json(handler, INFO)

    stand_in_server = stand_in(slow_once)
    out = tmp_path / "info.json"
    done = run_gensvc(["bravo", "info", "--output", f"info={out}"],
                      bravo_env(tmp_path, stand_in_server.url, read_timeout=1), timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(stand_in_server.requests) == 2
    assert json.loads(out.read_text()) == INFO
