"""The HTTP layer against small stand-in servers the tests start: timeouts, one retry
budget per operation step, streamed bodies that stall or break."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import isolated_env, run_gensvc, send_json

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


def bravo_env(tmp_path, url, **settings) -> dict:
    return isolated_env(tmp_path, GENSVC_BRAVO_URL=url, GENSVC_BRAVO_TOKEN=BRAVO_TOKEN, GENSVC_BRAVO_BACKOFF="0.05",
                        GENSVC_BRAVO_BACKOFF_MAX="0.2", **{f"GENSVC_BRAVO_{k.upper()}": str(v) for k, v in settings.items()})


INFO = {"dataset": "stand-in", "api_version": "1.0"}


# ---- timeouts ----------------------------------------------------------------------


def test_an_answer_slower_than_the_read_timeout_is_retried_then_exits_5(tmp_path, stand_in):
    def slow(handler, n):
        stand_in_server.wait(8)
        send_json(handler, INFO)

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
        send_json(handler, INFO)

    stand_in_server = stand_in(slow_once)
    out = tmp_path / "info.json"
    done = run_gensvc(["bravo", "info", "--output", f"info={out}"],
                      bravo_env(tmp_path, stand_in_server.url, read_timeout=1), timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(stand_in_server.requests) == 2
    assert json.loads(out.read_text()) == INFO


# ---- downloads: one budget for the whole transfer ----------------------------------

BODY = bytes(range(256)) * 40  # 10 240 bytes


def session(**settings):
    from gensvc.core.http import ServiceSession

    return ServiceSession("standin", **{"backoff": 0.01, "backoff_max": 0.05, **settings})


def send_body(handler, start: int = 0, stall_after: int | None = None, server=None) -> None:
    """``BODY`` from ``start`` (206 with Content-Range when start > 0); with ``stall_after``,
    that many bytes, then silence until the test ends."""
    part = BODY[start:]
    handler.send_response(206 if start else 200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Accept-Ranges", "bytes")
    handler.send_header("Content-Length", str(len(part)))
    if start:
        handler.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
    handler.end_headers()
    if stall_after is None:
        handler.wfile.write(part)
        return
    handler.wfile.write(part[:stall_after])
    handler.wfile.flush()
    server.wait(3600)


def range_start(handler) -> int:
    value = handler.headers.get("Range", "")
    return int(value.removeprefix("bytes=").split("-")[0]) if value.startswith("bytes=") else 0


def unavailable(handler) -> None:
    send_json(handler, {"error": "busy"}, status=503)


def test_a_download_from_a_server_that_keeps_failing_stops_after_max_attempts_requests(tmp_path, stand_in):
    from gensvc.core.download import download
    from gensvc.errors import ServiceUnavailable

    def failing(handler, n):
        # a refusal, then a body cut short, over and over: each kind alone is retried,
        # and together they must still draw on one budget
        if n % 2:
            unavailable(handler)
            return
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(BODY)))
        handler.end_headers()
        handler.wfile.write(BODY[:100])

    server = stand_in(failing)
    target = tmp_path / "file.bin"
    with pytest.raises(ServiceUnavailable, match="4 attempts"):
        download(session(max_attempts=4), server.url + "file.bin", str(target))
    assert len(server.requests) == 4
    assert not target.exists() and not list(tmp_path.iterdir())


def test_a_streamed_body_that_stalls_is_resumed_after_the_read_timeout(tmp_path, stand_in):
    from gensvc.core.download import CHUNK, download

    body = BODY * (3 * CHUNK // len(BODY))  # a few read chunks, so some arrive before the stall
    stall_at = len(body) // 2

    def stalls_once(handler, n):
        start = range_start(handler)
        handler.send_response(206 if start else 200)
        handler.send_header("Content-Length", str(len(body) - start))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        handler.end_headers()
        handler.wfile.write(body[start:stall_at] if n == 1 else body[start:])
        handler.wfile.flush()
        if n == 1:
            server.wait(3600)

    server = stand_in(stalls_once)
    target = tmp_path / "file.bin"
    got = download(session(read_timeout=0.5), server.url + "file.bin", str(target))
    assert target.read_bytes() == body and got.resumed == 1
    first, second = (headers.get("Range") for _, _, headers in server.requests)
    assert first is None and 0 < int(second.removeprefix("bytes=").rstrip("-")) <= stall_at


def test_a_body_that_always_stalls_spends_the_same_budget_as_refusals(tmp_path, stand_in):
    from gensvc.core.download import download
    from gensvc.errors import ServiceUnavailable

    def stalls(handler, n):
        if n % 2:
            unavailable(handler)
        else:
            send_body(handler, range_start(handler), stall_after=10, server=server)

    server = stand_in(stalls)
    with pytest.raises(ServiceUnavailable) as failed:
        download(session(read_timeout=0.5, max_attempts=4), server.url + "file.bin", str(tmp_path / "file.bin"))
    assert len(server.requests) == 4
    # the last attempt stalled: said as such, counted with the refusals before it
    assert "0.5 s read timeout, after 4 attempts" in str(failed.value)
