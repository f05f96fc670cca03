"""What every emulator shares: its configuration, fault injection, request counters and the
control API, as WSGI middleware wrapped around a service's own app.

Control API, served at the root of every emulator (never under the service's base path,
never faulted, never counted):

- `GET /_emulator/faults`: the active faults.
- `POST /_emulator/faults`: body is one fault object or a list; appends; returns the active list.
- `DELETE /_emulator/faults`: clears them.
- `GET /_emulator/stats`: `{"requests": N, "by_status": {"200": n, "drop": m}, "by_path": {...},
  "by_route": {"POST /path": n, ...}}` (by_route tells a POST from the GET on its path).
- `DELETE /_emulator/stats`: resets the counters and the service's own windows (rate limits).
- `GET /_emulator/requests`: `{"requests": [{"at": <epoch s>, "method": "GET", "path": ...}]}`,
  every service request as it arrived, faulted ones too (the last 100000), so a test can check a
  client's rate against a window; reset with the stats.

A fault is a JSON object:

    {"path": "<glob on the request path, default *>", "method": "GET" (any if absent),
     "kind": "status" | "drop" | "truncate" | "delay" | <service-specific kind>,
     "status": 503, "headers": {...}, "body": <JSON or string>,
     "count": N (the next N requests it fires on, then it expires; forever if absent),
     "rate": 0.2 (probability of firing; deterministic, seeded), "seconds": 2 (delay),
     "after": true (delay only: sleep after the answer is built, before it is sent),
     "processed": true (status and drop only: the service handles the request first)}

- `status`: answer at once with `status`, `headers` and `body` (JSON-encoded unless a
  string; default `{"error": "injected fault"}`).
- `drop`: close the connection without any HTTP response.
- `status` or `drop` with `"processed": true`: the service handles the request first, and
  its effect stands (a POST has made its job, visible to later requests), then the fault
  answers in its place: a gateway's 502/504 after the backend acted, a crash after the
  write, a connection lost on the way back. The client cannot tell from the answer
  whether anything happened (what makes a submission look for its job before sending it
  again). Without it, a status or drop fault answers before the service sees the request.
- `truncate`: the real response's status, headers and Content-Length, but half its body,
  then the connection closes.
- `delay`: sleep `seconds` (never time-scaled), then go on; delays add up and may precede
  another fault on the same request. With `"after": true` the service runs first and its
  whole answer is built (so a POST has taken effect, visible to other requests), then the
  sleep, then the answer is sent: a client killed or timed out meanwhile never learns what
  the server did (how exactly-once submission is tested). On a request that a
  status/drop fault answers, `after` only moves the sleep behind that fault's decision;
  with a truncate fault the half body is sent after the sleep.

Faults are checked in the order they were added; the first status/drop/truncate that fires
decides the answer. Service-specific kinds are only stored here: the service takes them
with `FaultInjector.take(kind, method, path)`, reaching the injector through
`environ["gensvc.emulator.faults"]`.
"""

from __future__ import annotations

import fnmatch
import json
import random
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

CONTROL_PREFIX = "/_emulator"
ENVIRON_FAULTS = "gensvc.emulator.faults"

STANDARD_FAULT_KINDS = ("status", "drop", "truncate", "delay")
_STANDARD_KEYS = {"path", "method", "kind", "status", "headers", "body", "count", "rate", "seconds",
                  "after", "processed"}
DEFAULT_FAULT_BODY = {"error": "injected fault"}


@dataclass
class EmulatorConfig:
    """How one emulator runs.

    time_scale: multiplies every window and job duration (0.01 turns 15 minutes into 9 s).
    tokens: the secrets accepted; None means the service's documented default set.
    faults: fault objects active from the start.
    seed: seeds the fault injector's random draws (rate).
    extra: service-specific settings, e.g. Bravo's `rate_limit` = (requests, seconds).
    """

    time_scale: float = 1.0
    tokens: list[str] | None = None
    faults: list[dict] = field(default_factory=list)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError(f"time_scale must be positive, got {self.time_scale!r}")

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    def rate_limit(self, service: str, default: tuple[int, float]) -> tuple[int, float]:
        """``extra["rate_limit"]`` as (requests, seconds), given as a pair or as "requests/seconds"."""
        value = self.extra.get("rate_limit", default)
        if isinstance(value, str):
            requests_text, _, seconds_text = value.partition("/")
            value = (int(requests_text), float(seconds_text))
        limit, seconds = value
        if int(limit) < 1 or float(seconds) <= 0:
            raise ValueError(f"{service} rate_limit must be positive (requests, seconds), got {value!r}")
        return int(limit), float(seconds)


class FaultSpecError(ValueError):
    """A fault object or a --faults value that cannot be used."""


def load_fault_specs(spec: str | dict | list | None) -> list[dict]:
    """A --faults value (JSON text, `@file`, or already-parsed objects) -> list of objects."""
    if spec is None or spec == "":
        return []
    if isinstance(spec, str):
        text = spec
        if spec.startswith("@"):
            try:
                text = Path(spec[1:]).read_text()
            except OSError as error:
                raise FaultSpecError(f"cannot read faults file {spec[1:]!r}: {error}") from error
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as error:
            raise FaultSpecError(f"faults are not valid JSON: {error}") from error
    if isinstance(spec, dict):
        return [spec]
    if isinstance(spec, list) and all(isinstance(item, dict) for item in spec):
        return list(spec)
    raise FaultSpecError("faults must be a JSON object or a list of objects")


@dataclass
class Fault:
    kind: str
    path: str = "*"
    method: str | None = None
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    count: int | None = None
    rate: float = 1.0
    seconds: float = 0.0
    after: bool = False  # delay: sleep after the answer is built, before it is sent
    processed: bool = False  # status/drop: the service acts first, then the fault answers
    options: dict[str, Any] = field(default_factory=dict)  # service-specific keys
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind, "path": self.path}
        if self.method is not None:
            out["method"] = self.method
        if self.kind == "status":
            out.update(status=self.status, headers=self.headers,
                       body=DEFAULT_FAULT_BODY if self.body is None else self.body)
        if self.kind == "delay":
            out["seconds"] = self.seconds
            if self.after:
                out["after"] = True
        if self.processed:
            out["processed"] = True
        if self.count is not None:
            out["count"] = self.count  # what is left
        out["rate"] = self.rate
        out.update(self.options)
        return out


def parse_fault(spec: dict, service_kinds: Iterable[str] = (), ordinal: int = 0,
                seed: int = 0) -> Fault:
    if not isinstance(spec, dict):
        raise FaultSpecError("a fault must be a JSON object")
    kind = spec.get("kind")
    service_kinds = set(service_kinds)
    if kind not in STANDARD_FAULT_KINDS and kind not in service_kinds:
        known = ", ".join(list(STANDARD_FAULT_KINDS) + sorted(service_kinds))
        raise FaultSpecError(f"unknown fault kind {kind!r}; known kinds: {known}")
    unknown = set(spec) - _STANDARD_KEYS
    if unknown and kind in STANDARD_FAULT_KINDS:
        raise FaultSpecError(f"unknown keys in {kind} fault: {', '.join(sorted(unknown))}")
    path = spec.get("path", "*")
    if not isinstance(path, str) or not path:
        raise FaultSpecError("fault path must be a non-empty glob string")
    method = spec.get("method")
    if method is not None and not isinstance(method, str):
        raise FaultSpecError("fault method must be a string")
    status = spec.get("status", 503)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise FaultSpecError("fault status must be an HTTP status code (100-599)")
    headers = spec.get("headers", {})
    if not isinstance(headers, dict):
        raise FaultSpecError("fault headers must be an object")
    count = spec.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise FaultSpecError("fault count must be a positive integer")
    rate = spec.get("rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise FaultSpecError("fault rate must be a number between 0 and 1")
    seconds = spec.get("seconds", 1.0 if kind == "delay" else 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise FaultSpecError("fault seconds must be a non-negative number")
    after = spec.get("after", False)
    if not isinstance(after, bool):
        raise FaultSpecError("fault after must be true or false")
    if after and kind != "delay":
        raise FaultSpecError("fault after applies only to delay faults")
    processed = spec.get("processed", False)
    if not isinstance(processed, bool):
        raise FaultSpecError("fault processed must be true or false")
    if processed and kind not in ("status", "drop"):
        raise FaultSpecError("fault processed applies only to status and drop faults "
                             "(a truncate fault always lets the service act)")
    return Fault(
        kind=kind,
        path=path,
        method=method.upper() if method else None,
        status=status,
        headers={str(name): str(value) for name, value in headers.items()},
        body=spec.get("body"),
        count=count,
        rate=float(rate),
        seconds=float(seconds),
        after=after,
        processed=processed,
        options={key: spec[key] for key in unknown},
        # One generator per fault, seeded by its place: same requests, same outcomes.
        rng=random.Random(f"gensvc-fault:{seed}:{ordinal}"),
    )


class FaultInjector:
    """The active faults of one emulator; thread-safe."""

    def __init__(self, seed: int = 0, service_kinds: Iterable[str] = ()):
        self.seed = seed
        self.service_kinds = frozenset(service_kinds)
        self._faults: list[Fault] = []
        self._added = 0
        self._lock = threading.Lock()

    def add(self, specs: dict | list) -> list[dict]:
        specs = [specs] if isinstance(specs, dict) else specs
        if not isinstance(specs, list):
            raise FaultSpecError("faults must be a JSON object or a list of objects")
        with self._lock:
            parsed = [parse_fault(spec, self.service_kinds, self._added + i, self.seed)
                      for i, spec in enumerate(specs)]
            self._added += len(parsed)
            self._faults.extend(parsed)
            return [fault.to_json() for fault in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._added = 0

    def active(self) -> list[dict]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def _fires(self, fault: Fault) -> bool:
        # Called with the lock held; a fault that fires uses up one of its count.
        if fault.rate < 1.0 and fault.rng.random() >= fault.rate:
            return False
        if fault.count is not None:
            fault.count -= 1
            if fault.count <= 0:
                self._faults.remove(fault)
        return True

    def select(self, method: str, path: str) -> tuple[list[Fault], Fault | None]:
        """The delays to apply and the terminal fault (status/drop/truncate), if any."""
        delays: list[Fault] = []
        with self._lock:
            for fault in list(self._faults):
                if fault.kind not in STANDARD_FAULT_KINDS or not fault.matches(method, path):
                    continue
                if self._fires(fault):
                    if fault.kind == "delay":
                        delays.append(fault)
                    else:
                        return delays, fault
        return delays, None

    def take(self, kind: str, method: str = "GET", path: str = "") -> Fault | None:
        """For services: the first fault of a service-specific kind that fires, if any."""
        with self._lock:
            for fault in list(self._faults):
                if fault.kind == kind and fault.matches(method, path) and self._fires(fault):
                    return fault
        return None


class RequestStats:
    """Counts every service request by status, by path and by method and path, and lists
    when each arrived; thread-safe."""

    ARRIVALS_KEPT = 100_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_status: Counter[str] = Counter()
        self._by_path: Counter[str] = Counter()
        self._by_route: Counter[str] = Counter()
        self._requests = 0
        self._arrivals: deque[dict] = deque(maxlen=self.ARRIVALS_KEPT)

    def arrived(self, method: str, path: str) -> None:
        with self._lock:
            self._arrivals.append({"at": time.time(), "method": method, "path": path})

    def arrivals(self) -> list[dict]:
        with self._lock:
            return list(self._arrivals)

    def record(self, path: str, status: str, method: str = "GET") -> None:
        with self._lock:
            self._requests += 1
            self._by_status[status] += 1
            self._by_path[path] += 1
            self._by_route[f"{method} {path}"] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": self._requests,
                "by_status": dict(sorted(self._by_status.items())),
                "by_path": dict(sorted(self._by_path.items())),
                "by_route": dict(sorted(self._by_route.items())),
            }

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._by_status.clear()
            self._by_path.clear()
            self._arrivals.clear()
            self._by_route.clear()


def int_query_arg(args, name: str, default: int, invalid: Callable[[str], Exception]) -> int:
    """An integer query parameter, ``default`` when absent or empty; anything else not an integer
    raises ``invalid(raw)``, the service's own error for it."""
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid(raw) from None


def _shutdown_socket(environ: dict) -> None:
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data) + "\n", status=status, mimetype="application/json")


class EmulatorApp:
    """WSGI middleware: control API, fault injection and counters around a service app.

    The service app may define `reset_state()`; `DELETE /_emulator/stats` calls it.
    """

    def __init__(self, service_app: Callable, config: EmulatorConfig,
                 service_kinds: Iterable[str] = ()):
        self.service_app = service_app
        self.config = config
        self.faults = FaultInjector(seed=config.seed, service_kinds=service_kinds)
        self.stats = RequestStats()
        if config.faults:
            self.faults.add(load_fault_specs(config.faults))

    def reset(self) -> None:
        """Zero the counters and the service's own windows."""
        self.stats.reset()
        reset_state = getattr(self.service_app, "reset_state", None)
        if callable(reset_state):
            reset_state()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return self._control(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        self.stats.arrived(method, path)
        environ[ENVIRON_FAULTS] = self.faults
        delays, fault = self.faults.select(method, path)
        for delay in delays:
            if not delay.after:
                time.sleep(delay.seconds)
        pause = sum(delay.seconds for delay in delays if delay.after)
        if fault is None:
            if pause:
                return self._serve_after(environ, start_response, path, pause)
            return self._serve(environ, start_response, path)
        if fault.processed:
            self._run_buffered(environ, path, record=False)  # acted on; the client never hears
        if fault.kind == "status":
            self.stats.record(path, str(fault.status), method)
            time.sleep(pause)
            return self._fault_response(fault)(environ, start_response)
        if fault.kind == "drop":
            self.stats.record(path, "drop", method)
            time.sleep(pause)
            _shutdown_socket(environ)
            # werkzeug treats a ConnectionError from the app as a dropped connection: no reply.
            raise ConnectionAbortedError("connection dropped by an injected fault")
        return self._truncated(environ, start_response, path, pause)

    def _serve(self, environ: dict, start_response: Callable, path: str) -> Iterable[bytes]:
        def counting_start_response(status: str, headers: list, exc_info: Any = None):
            self.stats.record(path, status.split(None, 1)[0], environ.get("REQUEST_METHOD", "GET"))
            return start_response(status, headers, exc_info)

        return self.service_app(environ, counting_start_response)

    @staticmethod
    def _fault_response(fault: Fault) -> Response:
        headers = Headers(fault.headers)
        body = DEFAULT_FAULT_BODY if fault.body is None else fault.body
        if isinstance(body, str):
            text, mimetype = body, "text/plain; charset=utf-8"
        else:
            text, mimetype = json.dumps(body), "application/json"
        if "Content-Type" not in headers:  # Headers look names up case-insensitively
            headers["Content-Type"] = mimetype
        return Response(text, status=fault.status, headers=headers)

    def _run_buffered(self, environ: dict, path: str, record: bool = True) -> tuple[str, list, bytes]:
        """Run the service app to the end: its status, headers and whole body (counted
        unless a fault answers in its place)."""
        captured: dict[str, Any] = {}
        written: list[bytes] = []

        def capture(status: str, headers: list, exc_info: Any = None):
            captured["status"], captured["headers"] = status, headers
            return written.append

        result = self.service_app(environ, capture)
        try:
            body = b"".join(written) + b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status = captured["status"]
        if record:
            self.stats.record(path, status.split(None, 1)[0], environ.get("REQUEST_METHOD", "GET"))
        return status, captured["headers"], body

    def _serve_after(self, environ: dict, start_response: Callable, path: str,
                     pause: float) -> Iterable[bytes]:
        # The service acts now; the client hears of it only after the pause.
        status, headers, body = self._run_buffered(environ, path)
        time.sleep(pause)
        start_response(status, headers)
        return [body]

    def _truncated(self, environ: dict, start_response: Callable, path: str,
                   pause: float = 0.0) -> Iterable[bytes]:
        status, headers, body = self._run_buffered(environ, path)
        time.sleep(pause)
        headers = [(name, value) for name, value in headers
                   if name.lower() not in ("content-length", "transfer-encoding")]
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)

        def half_then_close() -> Iterable[bytes]:
            yield body[: len(body) // 2]
            _shutdown_socket(environ)

        return half_then_close()

    def _control(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path.rstrip("/")
        if path == CONTROL_PREFIX + "/faults":
            if request.method == "GET":
                response = _json_response(self.faults.active())
            elif request.method == "POST":
                try:
                    specs = json.loads(request.get_data(as_text=True) or "null")
                    if specs is None:
                        raise FaultSpecError("the body must be a fault object or a list of them")
                    response = _json_response(self.faults.add(load_fault_specs(specs)))
                except (json.JSONDecodeError, FaultSpecError) as error:
                    response = _json_response({"error": str(error)}, 400)
            elif request.method == "DELETE":
                self.faults.clear()
                response = _json_response([])
            else:
                response = _json_response({"error": "method not allowed"}, 405)
        elif path == CONTROL_PREFIX + "/stats":
            if request.method == "GET":
                response = _json_response(self.stats.snapshot())
            elif request.method == "DELETE":
                self.reset()
                response = _json_response(self.stats.snapshot())
            else:
                response = _json_response({"error": "method not allowed"}, 405)
        elif path == CONTROL_PREFIX + "/requests" and request.method == "GET":
            response = _json_response({"requests": self.stats.arrivals()})
        else:
            response = _json_response({"error": f"no emulator control endpoint {request.path}"}, 404)
        return response(environ, start_response)
