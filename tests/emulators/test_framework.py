"""The emulator framework: fault injection, counters, control API and serving, over real
HTTP on loopback (Bravo as the service behind it)."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from werkzeug.serving import make_server

from gensvc.emulators import (
    EMULATORS,
    EmulatorApp,
    EmulatorConfig,
    FaultSpecError,
    load_fault_specs,
    serve_forever,
    start_emulator,
)

TOKEN = "bravo-demo-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def emulator():
    with start_emulator("bravo", rate_limit=(1_000_000, 900)) as running:
        yield running


def add_faults(emulator, faults):
    response = requests.post(emulator.root + "/_emulator/faults", json=faults, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def get(emulator, path="", **kwargs):
    return requests.get(emulator.url + path, headers=AUTH, timeout=10, **kwargs)


def stats(emulator):
    return requests.get(emulator.root + "/_emulator/stats", timeout=10).json()


def test_registry_and_base_path(emulator):
    assert EMULATORS["bravo"] == "gensvc.emulators.bravo"
    assert emulator.url == f"http://127.0.0.1:{emulator.port}/freeze5/hg38/api/v1/"
    assert emulator.root == f"http://127.0.0.1:{emulator.port}"
    assert isinstance(emulator.config, EmulatorConfig)


def test_status_fault_with_retry_after(emulator):
    active = add_faults(emulator, {"path": "*/region", "kind": "status", "status": 429,
                                   "headers": {"Retry-After": "7"}, "count": 2})
    assert active == [{"kind": "status", "path": "*/region", "status": 429,
                       "headers": {"Retry-After": "7"}, "body": {"error": "injected fault"},
                       "count": 2, "rate": 1.0}]
    region = "region?chrom=22&start=16389000&end=16389500"
    first = get(emulator, region)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "7"
    assert first.json() == {"error": "injected fault"}
    # other paths are untouched
    assert get(emulator).status_code == 200
    # the count runs down, then the fault expires
    assert requests.get(emulator.root + "/_emulator/faults").json()[0]["count"] == 1
    assert get(emulator, region).status_code == 429
    assert requests.get(emulator.root + "/_emulator/faults").json() == []
    assert get(emulator, region).status_code == 200


def test_status_fault_bodies_and_reset_header(emulator):
    add_faults(emulator, [
        {"path": "*/variant", "kind": "status", "status": 503, "body": "<html>down</html>",
         "headers": {"Content-Type": "text/html"}, "count": 1},
        {"path": "*/gene", "kind": "status", "status": 429,
         "headers": {"X-RateLimit-Reset": "1700000000"}, "body": {"message": "slow down"},
         "count": 1},
    ])
    html = get(emulator, "variant?chrom=22&pos=1")
    assert html.status_code == 503 and html.text == "<html>down</html>"
    assert html.headers["Content-Type"] == "text/html"
    limited = get(emulator, "gene?name=TP53")
    assert limited.status_code == 429 and limited.json() == {"message": "slow down"}
    assert limited.headers["X-RateLimit-Reset"] == "1700000000"
    assert "Retry-After" not in limited.headers


def test_drop_fault_closes_the_connection(emulator):
    add_faults(emulator, {"path": "/freeze5/*", "kind": "drop", "count": 1})
    with pytest.raises(requests.ConnectionError):
        get(emulator, "variant?chrom=22&pos=16390137")
    assert get(emulator, "variant?chrom=22&pos=16390137").status_code == 200
    counts = stats(emulator)
    assert counts["by_status"] == {"drop": 1, "200": 1}


def test_truncate_fault_sends_half_the_body(emulator):
    add_faults(emulator, {"path": "*/region", "kind": "truncate", "count": 1})
    params = {"chrom": "22", "start": "16387675", "end": "16390908"}
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        get(emulator, "region", params=params)
    # read by hand: the real Content-Length, half the bytes, then the connection closes
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=10) as raw:
        add_faults(emulator, {"path": "*/region", "kind": "truncate", "count": 1})
        raw.sendall(f"GET /freeze5/hg38/api/v1/region?chrom=22&start=16387675&end=16390908 "
                    f"HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length")][0])
    full = get(emulator, "region", params=params).content
    assert length == len(full)
    assert body == full[: len(full) // 2]
    assert stats(emulator)["by_status"]["200"] == 3


def test_delay_fault_is_not_time_scaled():
    with start_emulator("bravo", time_scale=0.001,
                        faults=[{"path": "*", "kind": "delay", "seconds": 0.4, "count": 1}]) as em:
        started = time.monotonic()
        assert get(em).status_code == 200
        assert time.monotonic() - started >= 0.4
        started = time.monotonic()
        assert get(em).status_code == 200
        assert time.monotonic() - started < 0.3


def test_delay_then_status(emulator):
    add_faults(emulator, [{"kind": "delay", "seconds": 0.2, "count": 1},
                          {"kind": "status", "status": 502, "count": 1}])
    started = time.monotonic()
    assert get(emulator).status_code == 502
    assert time.monotonic() - started >= 0.2


def _serve_counter_app(faults):
    """A tiny service behind EmulatorApp: POST /items creates one, GET /items counts them."""
    created = []

    def app(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            created.append(time.monotonic())
            body = json.dumps({"id": len(created)}).encode()
        else:
            body = json.dumps({"count": len(created)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    wrapped = EmulatorApp(app, EmulatorConfig(faults=faults))
    server = make_server("127.0.0.1", 0, wrapped, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    return server, thread, wrapped, created


def test_delay_after_acts_before_answering():
    fault = {"path": "/items", "method": "POST", "kind": "delay", "seconds": 0.8,
             "after": True, "count": 2}
    server, thread, wrapped, created = _serve_counter_app([fault])
    url = f"http://127.0.0.1:{server.port}/items"
    try:
        assert wrapped.faults.active()[0]["after"] is True
        # A client that gives up (or is killed) before the answer: the POST has still acted,
        # and another request sees it while the answer is held back.
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(url, timeout=0.3)
        assert requests.get(url, timeout=5).json() == {"count": 1}
        assert time.monotonic() - started < 0.8
        # A patient client gets the whole, real answer after the pause.
        started = time.monotonic()
        response = requests.post(url, timeout=10)
        assert time.monotonic() - started >= 0.8
        assert response.json() == {"id": 2}
        # the state existed before the answer arrived
        assert created[1] - started < 0.5
        # expired: no more pause
        started = time.monotonic()
        assert requests.post(url, timeout=10).json() == {"id": 3}
        assert time.monotonic() - started < 0.5
        time.sleep(0.6)  # let the abandoned first answer finish
        assert wrapped.stats.snapshot()["by_status"] == {"200": 4}
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_delay_after_with_truncate():
    server, thread, wrapped, created = _serve_counter_app([
        {"path": "/items", "kind": "delay", "seconds": 0.3, "after": True, "count": 1},
        {"path": "/items", "kind": "truncate", "count": 1}])
    url = f"http://127.0.0.1:{server.port}/items"
    try:
        started = time.monotonic()
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
            requests.post(url, timeout=10)
        assert time.monotonic() - started >= 0.3
        assert created and requests.get(url, timeout=5).json() == {"count": 1}
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.mark.parametrize("kind", ["status", "drop"])
def test_a_processed_fault_lets_the_service_act_then_fails_the_answer(kind):
    # a gateway's 502 or a lost connection after the backend stored the request
    server, thread, wrapped, created = _serve_counter_app([
        {"path": "/items", "method": "POST", "kind": kind, "status": 502, "processed": True, "count": 1},
        {"path": "/items", "method": "POST", "kind": kind, "status": 500, "count": 1}])
    url = f"http://127.0.0.1:{server.port}/items"
    try:
        assert wrapped.faults.active()[0]["processed"] is True
        for _ in range(2):
            if kind == "status":
                assert requests.post(url, timeout=10).status_code in (502, 500)
            else:
                with pytest.raises(requests.ConnectionError):
                    requests.post(url, timeout=10)
        # the first acted, the second (not processed) did not
        assert requests.get(url, timeout=5).json() == {"count": 1}
        seen = {"status": {"502": 1, "500": 1, "200": 1}, "drop": {"drop": 2, "200": 1}}[kind]
        assert wrapped.stats.snapshot()["by_status"] == seen  # what the client saw, once each
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_method_and_path_matching(emulator):
    add_faults(emulator, [{"path": "*/gene", "method": "POST", "kind": "status", "status": 500},
                          {"path": "/other/*", "kind": "status", "status": 500}])
    assert get(emulator, "gene?name=TP53&limit=1").status_code == 200
    add_faults(emulator, {"path": "*/gene", "method": "get", "kind": "status", "status": 500})
    assert get(emulator, "gene?name=TP53&limit=1").status_code == 500
    assert get(emulator, "region?chrom=22&start=1&end=5").status_code == 200


def test_rate_fault_is_deterministic():
    def pattern():
        fault = {"path": "*", "kind": "status", "status": 503, "rate": 0.3}
        with start_emulator("bravo", faults=[fault], seed=7) as em:
            return [get(em).status_code for _ in range(100)]

    first, second = pattern(), pattern()
    assert first == second
    assert 15 <= first.count(503) <= 45
    assert set(first) == {200, 503}


def test_faults_never_touch_the_control_api(emulator):
    add_faults(emulator, {"path": "*", "kind": "drop"})
    assert requests.get(emulator.root + "/_emulator/stats").status_code == 200
    assert requests.get(emulator.root + "/_emulator/faults").status_code == 200
    with pytest.raises(requests.ConnectionError):
        get(emulator)
    assert requests.delete(emulator.root + "/_emulator/faults").json() == []
    assert get(emulator).status_code == 200


@pytest.mark.parametrize("fault", [
    {"kind": "explode"},
    {"path": "*"},
    {"kind": "status", "status": 999},
    {"kind": "status", "count": 0},
    {"kind": "status", "rate": 1.5},
    {"kind": "delay", "seconds": -1},
    {"kind": "status", "coutn": 1},
    {"kind": "delay", "after": "yes"},
    {"kind": "status", "after": True},
    {"kind": "status", "processed": "yes"},
    {"kind": "truncate", "processed": True},
    [{"kind": "drop"}, "not an object"],
])
def test_invalid_faults_are_rejected(emulator, fault):
    response = requests.post(emulator.root + "/_emulator/faults", json=fault)
    assert response.status_code == 400
    assert "error" in response.json()
    assert requests.get(emulator.root + "/_emulator/faults").json() == []


def test_invalid_fault_json_is_rejected(emulator):
    response = requests.post(emulator.root + "/_emulator/faults", data="{not json")
    assert response.status_code == 400
    assert requests.post(emulator.root + "/_emulator/faults").status_code == 400


def test_stats_count_every_service_request(emulator):
    get(emulator)
    get(emulator, "variant?chrom=22&pos=16390137")
    requests.get(emulator.url)  # 400 not authorized
    requests.get(emulator.root + "/nowhere")  # 404, still a service request
    add_faults(emulator, {"path": "*/variant", "kind": "status", "status": 429, "count": 1})
    get(emulator, "variant?chrom=22&pos=1")
    counts = stats(emulator)
    assert counts == {
        "requests": 5,
        "by_status": {"200": 2, "400": 1, "404": 1, "429": 1},
        "by_path": {"/freeze5/hg38/api/v1/": 2, "/freeze5/hg38/api/v1/variant": 2, "/nowhere": 1},
        "by_route": {"GET /freeze5/hg38/api/v1/": 2, "GET /freeze5/hg38/api/v1/variant": 2, "GET /nowhere": 1},
    }
    assert emulator.stats() == counts
    reset = requests.delete(emulator.root + "/_emulator/stats").json()
    assert reset == {"requests": 0, "by_status": {}, "by_path": {}, "by_route": {}}


def test_stats_tell_the_methods_on_one_path_apart(emulator):
    # a submission's POST and the GET that looks its job up share a path
    requests.post(emulator.url + "variant")
    get(emulator, "variant?chrom=22&pos=16390137")
    add_faults(emulator, {"path": "*/variant", "method": "POST", "kind": "drop", "count": 1})
    with pytest.raises(requests.ConnectionError):
        requests.post(emulator.url + "variant")
    assert stats(emulator)["by_route"] == {"GET /freeze5/hg38/api/v1/variant": 1,
                                           "POST /freeze5/hg38/api/v1/variant": 2}


def test_every_service_request_is_listed_with_its_arrival_time_until_the_stats_are_reset(emulator):
    before = time.time()
    get(emulator)
    add_faults(emulator, {"path": "*/variant", "kind": "status", "status": 503, "count": 1})
    get(emulator, "variant?chrom=22&pos=1")  # answered by a fault: still a request that arrived
    requests.get(emulator.root + "/_emulator/faults")  # the control API is not listed
    listed = requests.get(emulator.root + "/_emulator/requests").json()["requests"]
    assert [(r["method"], r["path"]) for r in listed] == [("GET", "/freeze5/hg38/api/v1/"),
                                                         ("GET", "/freeze5/hg38/api/v1/variant")]
    assert before <= listed[0]["at"] <= listed[1]["at"] <= time.time()
    requests.delete(emulator.root + "/_emulator/stats")
    assert requests.get(emulator.root + "/_emulator/requests").json() == {"requests": []}


def test_stats_are_thread_safe(emulator):
    def hammer():
        for _ in range(15):
            get(emulator)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stats(emulator)["by_status"] == {"200": 90}


def test_control_api_unknown_endpoint_and_method(emulator):
    assert requests.get(emulator.root + "/_emulator/nothing").status_code == 404
    assert requests.put(emulator.root + "/_emulator/stats").status_code == 405


def test_load_fault_specs(tmp_path):
    assert load_fault_specs(None) == []
    assert load_fault_specs('{"kind": "drop"}') == [{"kind": "drop"}]
    assert load_fault_specs('[{"kind": "drop"}, {"kind": "delay"}]') == [{"kind": "drop"},
                                                                        {"kind": "delay"}]
    spec = tmp_path / "faults.json"
    spec.write_text(json.dumps([{"kind": "status", "status": 500}]))
    assert load_fault_specs(f"@{spec}") == [{"kind": "status", "status": 500}]
    for bad in ("not json", "[1, 2]", f"@{tmp_path / 'missing.json'}"):
        with pytest.raises(FaultSpecError):
            load_fault_specs(bad)


def test_config_validation():
    with pytest.raises(ValueError):
        EmulatorConfig(time_scale=0)
    with pytest.raises(ValueError):
        start_emulator("nosuchservice")


def two_free_ports() -> int:
    """A port whose successor is free too (both probed, then released)."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two neighbouring free ports")


def test_serve_forever_explicit_ports(tmp_path):
    # two emulators on port and port+1; `stop` ends it like SIGTERM would
    port = two_free_ports()
    out = tmp_path / "out.txt"
    stop = threading.Event()
    result = {}
    with out.open("w") as stream:
        thread = threading.Thread(target=lambda: result.update(code=serve_forever(
            ["bravo", "bravo"], port=port, tokens="a,b", out=stream, stop=stop)))
        thread.start()
        deadline = time.monotonic() + 10
        while len(out.read_text().splitlines()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [line["url"] for line in lines] == [
            f"http://127.0.0.1:{port}/freeze5/hg38/api/v1/",
            f"http://127.0.0.1:{port + 1}/freeze5/hg38/api/v1/"]
        for line in lines:
            assert requests.get(line["url"], headers={"Authorization": "Bearer b"}).status_code == 200
        stop.set()
        thread.join(10)
    assert result == {"code": 0}


def run_module(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "gensvc.emulators", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_module_serves_and_stops_on_sigterm():
    process = run_module("bravo", "--port", "0", "--tokens", "cli-token", "--time-scale", "0.5",
                         "--faults", '[{"path": "*/gene", "kind": "status", "status": 503}]')
    try:
        line = json.loads(process.stdout.readline())
        assert line["service"] == "bravo"
        assert line["url"].startswith("http://127.0.0.1:")
        assert line["url"].endswith("/freeze5/hg38/api/v1/")
        headers = {"Authorization": "Bearer cli-token"}
        assert requests.get(line["url"], headers=headers, timeout=10).status_code == 200
        assert requests.get(line["url"] + "gene?name=TP53", headers=headers).status_code == 503
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_module_all_and_sigint():
    process = run_module("all", "--port", "0")
    try:
        lines = [json.loads(process.stdout.readline()) for _ in EMULATORS]
        assert sorted(line["service"] for line in lines) == sorted(EMULATORS)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_module_rejects_bad_faults():
    process = run_module("bravo", "--faults", "[{oops")
    assert process.wait(timeout=20) == 2
    assert "faults" in process.stderr.read()
