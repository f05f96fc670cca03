"""The fault matrix's catalogue, as data, and what every cell of it shares.

A cell is one service × one operation kind × one fault × bounded or unbounded. The
service's test module (tests/reliability/test_faults_<service>.py) knows how to run its
operation kinds; this module knows the faults, what each must lead to, and how to check it.

API (import as ``from tests.reliability.faults import ...``):

- ``Fault``: one row of the catalogue. ``name`` is the id fragment (``503``, ``refused``);
  ``how`` says how it is injected: ``"emulator"`` (``fault`` is an emulator fault object for
  /_emulator/faults, see gensvc/emulators/framework.py, or a callable making one, without
  path/method/count; ``Fault.spec(path, method, count)`` completes it), ``"refused"`` (nobody
  listens on the port: the emulator is stopped, and for the bounded cell started again on
  the same port, state kept, after ``REFUSED_FOR`` s), ``"restart"`` (the emulator stops and
  starts again on the same port, state kept, while the operation runs: between two polls)
  or ``"service"`` (a fault kind of the service's own emulator: the test module supplies the
  object, e.g. CGI's ``job_error``). ``bounded``/``unbounded``: which cells exist.
  ``retried``: False for answers that must never be sent again (4xx, a failed job): the
  faulted path sees exactly one request. ``exit``: the unbounded cell's exit code (a test
  module may override it per operation). ``settings``: GENSVC_<SERVICE>_<KEY> values the
  cell needs (a read timeout shorter than the stall). ``only``: the operation kinds it
  applies to (empty: every kind).
- ``FAULTS``: every fault of issue 14 item 1. Add a service's own (CAVATICA's maintenance
  503) as another ``Fault`` in your module: ``FAULTS + (Fault("maintenance-503", ...),)``.
- ``Cell`` and ``matrix(service, operations, faults=FAULTS, skip=...)``: the cells, ids like
  ``cgi-submit-503-bounded``, figure ``survived`` (bounded) or ``refused`` (unbounded).
  ``params(cells, xfail={id: reason})`` makes pytest params marked with their figure (and
  a strict xfail where a defect is known and not fixed yet); pass them through
  ``cases(..., fast=N)`` for make test's subset.
- ``FAST_SETTINGS`` / ``settings_env(service, **overrides)``: small retry, backoff and
  timeout settings as GENSVC_<SERVICE>_* variables, so a cell takes a second or two.
  ``max_attempts(env, service)`` reads back what a cell allows.
- ``Emulated``: an emulator that can be stopped, restarted on its port with its state, and
  asked for its stats; ``requests_to(stats, glob)`` counts requests to matching paths.
- ``run_cli(args, env)`` runs the CLI as a subprocess (it talks HTTP to the emulator on
  loopback); ``run_cli_during(args, env, action)`` runs ``action()`` while it runs (a restart).
- ``inject(emulated, cell, path, method, env)``: put the cell's fault in place (any
  mechanism) and return a callable that undoes it; ``outputs_before(paths)`` /
  ``assert_refused_cleanly(done, cell, outputs, ...)`` / ``assert_same_outputs(...)``: the
  expectations.
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pytest

from gensvc.emulators.server import RunningEmulator, _listen, start_emulator

# a bounded fault fires this many times, then the service answers as usual
BOUNDED_COUNT = 2
# how long the bounded "refused" cell keeps the port closed before the emulator is back
REFUSED_FOR = 0.6
# a stalled read: the answer is held this long, past the cell's read timeout
STALL_SECONDS = 2.5
STALL_READ_TIMEOUT = "1"

# small enough that a cell takes a second or two, large enough to ride out BOUNDED_COUNT
FAST_SETTINGS: dict[str, str] = {
    "MAX_ATTEMPTS": "4",
    "DEADLINE": "20",
    "BACKOFF": "0.05",
    "BACKOFF_MAX": "0.2",
    "CONNECT_TIMEOUT": "2",
    "READ_TIMEOUT": "5",
}
# the bounded "refused" cell: enough attempts, with long enough waits, to outlast REFUSED_FOR
REFUSED_SETTINGS: dict[str, str] = {"MAX_ATTEMPTS": "12", "BACKOFF": "0.4", "BACKOFF_MAX": "0.4"}


def _rate_headers_only() -> dict:
    # made when injected: X-RateLimit-Reset is a moment, a second or two from now
    return {"kind": "status", "status": 429, "body": {"error": "rate limit exceeded"},
            "headers": {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(int(time.time()) + 2)}}


@dataclass(frozen=True)
class Fault:
    name: str
    how: str  # "emulator" | "refused" | "restart" | "service"
    fault: dict | Callable[[], dict] | None = None
    bounded: bool = True
    unbounded: bool = True
    retried: bool = True
    exit: int = 5
    settings: Mapping[str, str] = field(default_factory=dict)
    only: tuple[str, ...] = ()

    def spec(self, path: str = "*", method: str | None = None, count: int | None = None,
             fault: dict | None = None) -> dict:
        """The emulator fault object on ``path`` (a glob), ``method``, fired ``count`` times
        (for ever if None). ``fault`` replaces the row's own object (a service's kind)."""
        made = fault if fault is not None else (self.fault() if callable(self.fault) else self.fault)
        if made is None:
            raise ValueError(f"fault {self.name!r} is injected by {self.how!r}, not by an emulator fault object")
        spec = {**made, "path": path}
        if method is not None:
            spec["method"] = method
        if count is not None:
            spec["count"] = count
        return spec

    def applies_to(self, operation: str) -> bool:
        return not self.only or operation in self.only


def _status(code: int, **extra) -> dict:
    return {"kind": "status", "status": code, **extra}


FAULTS: tuple[Fault, ...] = (
    Fault("500", "emulator", _status(500)),
    Fault("502", "emulator", _status(502)),
    Fault("503", "emulator", _status(503)),
    Fault("504", "emulator", _status(504)),
    Fault("429-retry-after", "emulator",
          _status(429, headers={"Retry-After": "1"}, body={"error": "too many requests"})),
    Fault("429-bare", "emulator", _status(429, body={"error": "too many requests"})),
    Fault("429-rate-headers", "emulator", _rate_headers_only),
    Fault("refused", "refused"),
    # the server closes the connection without acting on the request ...
    Fault("drop-before", "emulator", {"kind": "drop"}),
    # ... or after acting on it (a POST has made its job): the answer is lost on the way back
    Fault("drop-after", "emulator", {"kind": "drop", "processed": True}),
    Fault("truncated", "emulator", {"kind": "truncate"}),
    # the service acts, then holds its answer past the read timeout
    Fault("stall", "emulator", {"kind": "delay", "seconds": STALL_SECONDS, "after": True},
          settings={"READ_TIMEOUT": STALL_READ_TIMEOUT}),
    Fault("restart", "restart", unbounded=False, only=("poll",)),
    Fault("job-fails", "service", bounded=False, retried=False, exit=4, only=("poll",)),
    Fault("400", "emulator", _status(400, body={"error": "bad request"}), bounded=False, retried=False, exit=2),
    Fault("401", "emulator", _status(401, body={"error": "unauthorized"}), bounded=False, retried=False, exit=3),
    Fault("403", "emulator", _status(403, body={"error": "forbidden"}), bounded=False, retried=False, exit=3),
    Fault("404", "emulator", _status(404, body={"error": "not found"}), bounded=False, retried=False, exit=2),
)
FAULTS_BY_NAME: dict[str, Fault] = {fault.name: fault for fault in FAULTS}


@dataclass(frozen=True)
class Cell:
    service: str
    operation: str
    fault: Fault
    bounded: bool

    @property
    def id(self) -> str:
        return f"{self.service}-{self.operation}-{self.fault.name}-{'bounded' if self.bounded else 'unbounded'}"

    @property
    def figure(self) -> str:
        return "survived" if self.bounded else "refused"

    @property
    def count(self) -> int | None:
        """How many times the fault fires: BOUNDED_COUNT, or for ever."""
        return BOUNDED_COUNT if self.bounded else None


def matrix(service: str, operations: Iterable[str], faults: Iterable[Fault] = FAULTS,
           skip: Callable[[str, Fault], bool] | None = None) -> list[Cell]:
    """Every cell of ``service``: each operation × each fault that applies to it × bounded
    and unbounded as the fault has them; ``skip(operation, fault)`` leaves a pair out."""
    cells = []
    for operation in operations:
        for fault in faults:
            if not fault.applies_to(operation) or (skip is not None and skip(operation, fault)):
                continue
            for bounded in (True, False):
                if (fault.bounded if bounded else fault.unbounded):
                    cells.append(Cell(service, operation, fault, bounded))
    return cells


def params(cells: Iterable[Cell], xfail: Mapping[str, str] | None = None) -> list:
    """pytest params of ``cells``, each marked with its figure; an id in ``xfail`` gets a
    strict xfail with that reason (a known defect: the cell must fail until it is fixed)."""
    xfail = dict(xfail or {})
    out = []
    for cell in cells:
        marks = [pytest.mark.reliability(cell.figure)]
        if cell.id in xfail:
            marks.append(pytest.mark.xfail(reason=xfail.pop(cell.id), strict=True))
        out.append(pytest.param(cell, id=cell.id, marks=marks))
    if xfail:
        raise ValueError(f"xfail names cells that do not exist: {sorted(xfail)}")
    return out


# ---- settings ---------------------------------------------------------------------------


def settings_env(service: str, **overrides: str) -> dict[str, str]:
    """FAST_SETTINGS with ``overrides`` as GENSVC_<SERVICE>_<KEY> variables."""
    key = service.upper()
    return {f"GENSVC_{key}_{name}": str(value) for name, value in {**FAST_SETTINGS, **overrides}.items()}


def cell_settings(cell: Cell) -> dict[str, str]:
    """The settings this cell needs beyond FAST_SETTINGS."""
    extra = dict(cell.fault.settings)
    if cell.fault.how == "refused" and cell.bounded:
        extra.update(REFUSED_SETTINGS)
    return settings_env(cell.service, **extra)


def max_attempts(env: Mapping[str, str], service: str) -> int:
    return int(env[f"GENSVC_{service.upper()}_MAX_ATTEMPTS"])


# ---- the emulator ----------------------------------------------------------------------


class Emulated:
    """An emulator on a fixed port that can go away and come back with its state (its
    app, jobs and all, is kept; only the listening socket goes)."""

    def __init__(self, service: str, **settings: Any):
        self.service = service
        self.running: RunningEmulator | None = start_emulator(service, **settings)
        self.app = self.running.app
        self.host, self.port = self.running.host, self.running.port
        self._root, self._url = self.running.root, self.running.url

    @property
    def root(self) -> str:
        return self._root

    @property
    def url(self) -> str:
        return self._url

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    def start(self) -> None:
        if self.running is None:
            server = _listen(self.host, self.port, self.app, False)
            self.running = RunningEmulator(self.service, self.app, server, self.host)

    def restart(self, down: float = 0.0) -> None:
        self.stop()
        time.sleep(down)
        self.start()

    def add_faults(self, specs: dict | list) -> None:
        self.app.faults.add(specs)

    def reset(self) -> None:
        """No faults, zeroed counters (and the service's windows); serving again."""
        self.start()
        self.app.faults.clear()
        self.app.reset()

    def stats(self) -> dict:
        return self.app.stats.snapshot()

    def settle(self, quiet: float = 0.3, at_most: float = 10.0) -> None:
        """Wait until no request has been counted for ``quiet`` s (a stalled answer is
        counted only once sent), so that it does not land in the next cell's counters."""
        end = time.monotonic() + at_most
        last, since = self.stats()["requests"], time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.05)
            now = self.stats()["requests"]
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def close(self) -> None:
        self.stop()


def requests_to(stats: dict, glob: str) -> int:
    """Requests counted on paths matching ``glob``."""
    return sum(n for path, n in stats["by_path"].items() if fnmatch.fnmatchcase(path, glob))


def inject(emulated: Emulated, cell: Cell, path: str, method: str | None = None,
           service_fault: dict | None = None) -> Callable[[], None]:
    """Put ``cell``'s fault on ``path`` (a glob) before the operation runs; returns what
    undoes it afterwards. "restart" is not injected here (see run_cli_during)."""
    how = cell.fault.how
    if how in ("emulator", "service"):
        emulated.add_faults(cell.fault.spec(path, method, cell.count, fault=service_fault))
        return lambda: None
    if how == "refused":
        emulated.stop()
        if not cell.bounded:
            return emulated.start
        timer = threading.Timer(REFUSED_FOR, emulated.start)
        timer.start()
        return lambda: (timer.join(), emulated.start())
    if how == "restart":
        return lambda: None
    raise ValueError(f"unknown fault mechanism {how!r}")


# ---- running the CLI -------------------------------------------------------------------


def run_cli(args: Iterable[Any], env: Mapping[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, as a shell or Nextflow user runs it."""
    return subprocess.run([sys.executable, "-m", "gensvc.cli", *map(str, args)], env=dict(env),
                          capture_output=True, text=True, timeout=timeout)


def run_cli_during(args: Iterable[Any], env: Mapping[str, str], action: Callable[[], None],
                   timeout: float = 120) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, with ``action()`` run in this one meanwhile (it may
    wait for the emulator to see a request, then restart it)."""
    command = [sys.executable, "-m", "gensvc.cli", *map(str, args)]
    with subprocess.Popen(command, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        try:
            action()
            stdout, stderr = process.communicate(timeout=timeout)
        except BaseException:
            process.kill()
            process.communicate()
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def wait_for_request(emulated: Emulated, glob: str, at_least: int = 1, at_most: float = 30.0) -> None:
    """Wait until ``glob`` has seen ``at_least`` requests (the operation has started)."""
    end = time.monotonic() + at_most
    while requests_to(emulated.stats(), glob) < at_least:
        if time.monotonic() > end:
            raise AssertionError(f"no request to {glob} within {at_most} s: {emulated.stats()}")
        time.sleep(0.02)


# ---- expectations ----------------------------------------------------------------------


def files_under(directories: Iterable[Path]) -> set[Path]:
    """Every file (and link) under ``directories``, to tell what a run left behind."""
    found: set[Path] = set()
    for directory in directories:
        directory = Path(directory)
        if directory.exists():
            found.update(p for p in directory.rglob("*") if p.is_file() or p.is_symlink())
    return found


def assert_one_clear_line(done: subprocess.CompletedProcess, exit_code: int) -> str:
    """Exit ``exit_code``, one line on stderr, no traceback; the line."""
    assert done.returncode == exit_code, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return lines[0]


def assert_refused_cleanly(done: subprocess.CompletedProcess, cell: Cell, outputs: Iterable[Path],
                           before: set[Path], exit_code: int | None = None) -> str:
    """The unbounded cell: one clear line with the expected exit, no output, and no file
    left in the outputs' directories that was not there before (no partial or temp file)."""
    line = assert_one_clear_line(done, cell.fault.exit if exit_code is None else exit_code)
    outputs = [Path(p) for p in outputs]
    for output in outputs:
        assert not output.exists(), f"{output} written by a failed run"
    left = files_under({p.parent for p in outputs}) - before
    assert not left, f"files left behind: {sorted(map(str, left))}"
    return line


def assert_requests_bounded(cell: Cell, faulted: int, env: Mapping[str, str], most: int | None = None) -> None:
    """The unbounded cell's faulted path saw at most ``max_attempts`` requests (``most``
    when the operation documents more, e.g. a poll's checks), and exactly one for a
    fault that must never be retried."""
    if not cell.fault.retried:
        assert faulted == 1, f"{cell.fault.name} sent {faulted} times: a 4xx or a failed job is never retried"
        return
    limit = max_attempts(env, cell.service) if most is None else most
    assert 1 <= faulted <= limit, f"{faulted} requests to the faulted path, at most {limit} allowed"


def read_outputs(paths: Iterable[Path]) -> dict[str, bytes]:
    return {Path(p).name: Path(p).read_bytes() for p in paths}


def assert_same_outputs(outputs: Iterable[Path], clean: Mapping[str, bytes],
                        normalise: Callable[[str, bytes], bytes] | None = None) -> None:
    """The bounded cell's outputs are byte-identical to a clean run's (after ``normalise``,
    for what differs between two jobs by nature: a job id, a timestamp)."""
    got = read_outputs(outputs)
    assert set(got) == set(clean), (sorted(got), sorted(clean))
    for name, data in got.items():
        want = clean[name]
        if normalise is not None:
            data, want = normalise(name, data), normalise(name, want)
        assert data == want, f"{name} differs from a clean run's"


__all__ = [
    "BOUNDED_COUNT", "Cell", "Emulated", "FAST_SETTINGS", "FAULTS", "FAULTS_BY_NAME", "Fault",
    "REFUSED_FOR", "REFUSED_SETTINGS", "STALL_SECONDS", "assert_one_clear_line", "assert_refused_cleanly",
    "assert_requests_bounded", "assert_same_outputs", "cell_settings", "files_under", "inject", "matrix",
    "max_attempts", "params", "read_outputs", "requests_to", "run_cli", "run_cli_during", "settings_env",
    "wait_for_request",
]
