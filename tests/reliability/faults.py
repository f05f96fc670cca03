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
- ``Cell`` and ``matrix(service, operations, faults=FAULTS, skip=..., survives=...)``: the
  cells, ids like ``cgi-submit-503-bounded``, figure ``survived`` (bounded, or an unbounded
  cell marked ``survives``: a submission whose answers are all lost still finds its one job;
  ``cell.succeeds``) or ``refused`` (unbounded).
  ``params(cells, xfail={id: reason})`` makes pytest params marked with their figure (and
  a strict xfail where a defect is known and not fixed yet); pass them through
  ``cases(..., fast=N)`` for make test's subset.
- ``FAST_SETTINGS`` / ``settings_env(service, **overrides)``: small retry, backoff and
  timeout settings as GENSVC_<SERVICE>_* variables, so a cell takes a second or two.
  ``max_attempts(env, service)`` reads back what a cell allows.
- ``Emulated``: an emulator that can be stopped, restarted on its port with its state, and
  asked for its stats and how often a bounded cell's fault ``fired(cell)`` (assert it did); ``requests_to(stats, glob)`` counts requests to matching paths.
- ``run_cli(args, env)`` runs the CLI as a subprocess (it talks HTTP to the emulator on
  loopback); ``run_cli_during(args, env, action)`` runs ``action()`` while it runs (a restart).
- ``inject(emulated, cell, path, method, env)``: put the cell's fault in place (any
  mechanism) and return a callable that undoes it; ``files_under(dirs)`` (what was there
  before) / ``assert_refused_cleanly(done, cell, outputs, before)`` /
  ``assert_requests_bounded(cell, n, env)`` / ``assert_same_outputs(outputs, clean)``: the
  expectations.
- Job services: describe one as a ``JobService`` (its emulator, environment, the submit,
  poll and fetch calls, each kind's faulted path and method, its job list, the fault that
  fails a job, more kinds as ``Kind`` objects); ``job_matrix(service)`` makes its cells (a submission whose answers are all
  lost after it acted must still succeed with one job), ``finish_job(service, dir)`` the
  clean reference (one finished job and its outputs, once per module) and
  ``run_job_cell(service, cell, dir, finished)`` runs one cell and checks all of it.
  tests/reliability/test_faults_cgi.py is a whole example.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
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
# the results of a job that failed, asked for anyway: refused as the poll refuses the job
JOB_FAILED_DOWNLOAD = Fault("job-fails", "service", bounded=False, retried=False, exit=4, only=("download",))


@dataclass(frozen=True)
class Cell:
    service: str
    operation: str
    fault: Fault
    bounded: bool
    # an unbounded fault the operation still gets through (a submission whose every answer
    # is lost finds the job it made): expected to succeed, counted as survived
    survives: bool = False

    @property
    def id(self) -> str:
        return f"{self.service}-{self.operation}-{self.fault.name}-{'bounded' if self.bounded else 'unbounded'}"

    @property
    def succeeds(self) -> bool:
        """The operation must succeed under this cell's fault."""
        return self.bounded or self.survives

    @property
    def figure(self) -> str:
        return "survived" if self.succeeds else "refused"

    @property
    def lingers(self) -> bool:
        """The emulator may still be answering once the client is gone (a held answer)."""
        made = self.fault.fault
        return isinstance(made, dict) and made.get("kind") == "delay"

    @property
    def count(self) -> int | None:
        """How many times the fault fires: BOUNDED_COUNT, or for ever."""
        return BOUNDED_COUNT if self.bounded else None


def matrix(service: str, operations: Iterable[str], faults: Iterable[Fault] = FAULTS,
           skip: Callable[[str, Fault], bool] | None = None,
           survives: Callable[[str, Fault], bool] | None = None) -> list[Cell]:
    """Every cell of ``service``: each operation × each fault that applies to it × bounded
    and unbounded as the fault has them; ``skip(operation, fault)`` leaves a pair out;
    ``survives(operation, fault)`` marks an unbounded cell the operation must get through."""
    cells = []
    operations = list(operations)
    # fault by fault, so that an even spread of the list (make test's subset) covers many faults
    for fault in faults:
        for operation in operations:
            if not fault.applies_to(operation) or (skip is not None and skip(operation, fault)):
                continue
            for bounded in (True, False):
                if (fault.bounded if bounded else fault.unbounded):
                    lives = not bounded and survives is not None and survives(operation, fault)
                    cells.append(Cell(service, operation, fault, bounded, lives))
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

    def fired(self, cell: Cell) -> int:
        """How many times the bounded ``cell``'s fault fired (it is gone once it fired
        BOUNDED_COUNT times); a cell whose fault never fired proves nothing."""
        left = sum(fault.get("count", 0) for fault in self.app.faults.active())
        return BOUNDED_COUNT - left

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


def requests_to(stats: dict, glob: str, method: str | None = None) -> int:
    """Requests counted on paths matching ``glob`` (of ``method`` only, if given)."""
    if method is None:
        return sum(n for path, n in stats["by_path"].items() if fnmatch.fnmatchcase(path, glob))
    prefix = method.upper() + " "
    return sum(n for route, n in stats["by_route"].items()
               if route.startswith(prefix) and fnmatch.fnmatchcase(route[len(prefix):], glob))


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


def run_under_fault(emulated: Emulated, cell: Cell, args: Iterable[Any], env: Mapping[str, str],
                    path: str, method: str | None, failing: bool) -> tuple[subprocess.CompletedProcess, int]:
    """Run the CLI with the cell's fault at `path` (a restart between polls, a job that fails, or an
    emulator fault injected for the run); (the finished process, requests to the faulted path)."""
    emulated.app.stats.reset()
    if cell.fault.how == "restart":
        def restart_between_polls():
            wait_for_request(emulated, path)
            emulated.restart(down=0.5)
        done = run_cli_during(args, env, restart_between_polls)
    elif failing:
        done = run_cli(args, env)
    else:
        undo = inject(emulated, cell, path, method)
        try:
            done = run_cli(args, env)
        finally:
            undo()
    emulated.settle()
    return done, requests_to(emulated.stats(), path, method)


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


# a log record the CLI writes to stderr without --log ("still waiting" while a poll rides out
# an outage): not part of the error
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) gensvc[.\w]*: ")


def assert_one_clear_line(done: subprocess.CompletedProcess, exit_code: int) -> str:
    """Exit ``exit_code``, the error in one line on stderr (after any log records of the
    wait), no traceback; the line."""
    assert done.returncode == exit_code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if not LOG_RECORD.match(line)]
    assert len(lines) == 1, done.stderr
    assert done.stderr.strip().endswith(lines[0]), done.stderr
    return lines[0]


def scratch_env(workdir: Path) -> dict[str, str]:
    """TMPDIR of the cell's own, so that a temporary file left behind is seen."""
    scratch = Path(workdir) / "scratch"
    scratch.mkdir(exist_ok=True)
    return {"TMPDIR": str(scratch)}


def assert_refused_cleanly(done: subprocess.CompletedProcess, cell: Cell, outputs: Iterable[Path],
                           before: set[Path], exit_code: int | None = None, scratch: Path | None = None) -> str:
    """The unbounded cell: one clear line with the expected exit, no output, and no file
    left in the outputs' directories that was not there before, nor in ``scratch`` (its
    TMPDIR): no partial or temporary file."""
    line = assert_one_clear_line(done, cell.fault.exit if exit_code is None else exit_code)
    outputs = [Path(p) for p in outputs]
    for output in outputs:
        assert not output.exists(), f"{output} written by a failed run"
    left = files_under({p.parent for p in outputs}) - before
    if scratch is not None:  # the host's shared submission locks live there by design
        shared = Path(scratch) / f"gensvc-{os.getuid()}"
        left |= {p for p in files_under([scratch]) if shared not in p.parents}
    assert not left, f"files left behind: {sorted(map(str, left))}"
    return line


def assert_says_what_was_spent(line: str, cell: Cell, env: Mapping[str, str]) -> None:
    """An outage that outlasted the retries says so: the attempts made, or the deadline."""
    if cell.fault.retried and cell.fault.exit == 5:
        spent = f"after {max_attempts(env, cell.service)} attempts"
        assert spent in line or "deadline" in line or "may already have been processed" in line, line


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
        if data != want:
            import difflib

            diff = difflib.unified_diff(want.decode(errors="replace").splitlines(),
                                        data.decode(errors="replace").splitlines(), "clean", "faulted", n=0, lineterm="")
            raise AssertionError(f"{name} differs from a clean run's: " + " | ".join(list(diff)[2:12]))



# ---- job services: submit, poll, download -----------------------------------------------


@dataclass(frozen=True)
class Kind:
    """An operation kind beyond submit, poll and download: ``call(workdir, receipt, outdir)``
    -> (arguments, outputs). ``own_job``: each cell needs a finished job of its own (the
    call changes the job: a report made, which a second call would find made).
    ``normalise(name, data)``: what of its output differs between two jobs, taken out."""

    call: Callable[[Path, Path, Path], tuple[list, list[Path]]]
    own_job: bool = False
    normalise: Callable[[str, bytes], bytes] | None = None


@dataclass
class JobService:
    """What a job service's test module tells ``run_job_cell``.

    ``env(workdir, settings)``: the CLI's environment with ``settings`` (GENSVC_* values).
    ``submit(workdir, receipt)``: the submit call's arguments, its input unique to the call
    (a submission is known by its inputs' digests). ``poll(receipt, status, timeout)`` and
    ``fetch(receipt, outdir)`` -> (arguments, outputs): the other two kinds. ``paths``: each
    operation kind's faulted (glob, method); ``{job}`` stands for the job id. ``jobs()``:
    the job ids the server holds. ``job_fails``: the emulator fault object (on the submit
    path) that makes the next job fail. ``volatile``: receipt keys that differ between two
    jobs of one call (its job id, key, time), left out when receipts are compared.
    ``poll_first_wait``: the poll's first wait, which bounds its checks. ``kinds``: more
    operation kinds (a synchronous query, a report made on request), each a ``Kind``, its
    faulted path in ``paths`` under the same name.
    """

    emulated: Emulated
    env: Callable[[Path, Mapping[str, str]], dict]
    submit: Callable[[Path, Path], list]
    poll: Callable[[Path, Path, float], list]
    fetch: Callable[[Path, Path], tuple[list, list[Path]]]
    paths: Mapping[str, tuple[str, str]]
    jobs: Callable[[], set[str]]
    job_fails: dict
    volatile: tuple[str, ...] = ("job_id", "idempotency_key", "submitted_at")
    poll_first_wait: float = 0.2
    forget: Callable[[str], None] | None = None  # deletes a job (keeps look-ups short)
    kinds: Mapping[str, Kind] = field(default_factory=dict)  # more operation kinds, by name
    # requests a kind makes to its faulted path after a refusal as a bad call that are no retry
    # of it (CGI's download reads the job's status there, to tell a failed job from a bad call)
    refusal_reads: Mapping[str, int] = field(default_factory=dict)


# an unbounded poll cell: the outage outlasts the poll's own timeout
UNBOUNDED_POLL_TIMEOUT = 1.0
OPERATION_KINDS = ("submit", "poll", "download")
# a submission's answer lost after the job was made: the job is found, however often it happens
FOUND_AFTER_LOSS = frozenset({"drop-after", "truncated", "stall"})


def job_matrix(service: str, faults: Iterable[Fault] = FAULTS, operations: Iterable[str] = OPERATION_KINDS,
               skip: Callable[[str, Fault], bool] | None = None) -> list[Cell]:
    """A job service's cells: an unbounded lost answer to a submission must still succeed."""
    return matrix(service, operations, faults, skip=skip,
                  survives=lambda operation, fault: operation == "submit" and fault.name in FOUND_AFTER_LOSS)


def run_ok(args: Iterable[Any], env: Mapping[str, str]) -> subprocess.CompletedProcess:
    done = run_cli(args, env)
    assert done.returncode == 0, done.stderr
    return done


def finish_job(service: JobService, workdir: Path) -> dict:
    """A job run to the end through the CLI, and what a clean poll and download of it write:
    the reference of every bounded cell."""
    env = service.env(workdir, {})
    receipt, status, out = workdir / "receipt.json", workdir / "status.json", workdir / "out"
    out.mkdir()
    run_ok(service.submit(workdir, receipt), env)
    run_ok(service.poll(receipt, workdir / "first-status.json", 60), env)
    # the reference is a poll of the job once it has finished, as every poll cell's is
    # (one check), not the first poll's wait for it
    run_ok(service.poll(receipt, status, 60), env)
    args, outputs = service.fetch(receipt, out)
    run_ok(args, env)
    made = {"receipt": receipt, "job": json.loads(receipt.read_text())["job_id"],
            "submit": read_outputs([receipt]), "poll": read_outputs([status]), "download": read_outputs(outputs)}
    for name, kind in service.kinds.items():
        outdir = workdir / name
        outdir.mkdir()
        # a call that changes its job gets a job of its own, so the reference job stays as polled
        args, outputs = kind.call(workdir, _finished_job_of_its_own(service, outdir) if kind.own_job else receipt,
                                  outdir)
        run_ok(args, env)
        made[name] = read_outputs(outputs)
    return made


def _finished_job_of_its_own(service: JobService, workdir: Path) -> Path:
    receipt, env = workdir / "own-receipt.json", service.env(workdir, {})
    run_ok(service.submit(workdir, receipt), env)
    run_ok(service.poll(receipt, workdir / "own-status.json", 60), env)
    return receipt


def _receipt_without(volatile: tuple[str, ...]) -> Callable[[str, bytes], bytes]:
    def normalise(name: str, data: bytes) -> bytes:
        receipt = json.loads(data)
        for key in volatile:
            receipt.pop(key, None)
        return json.dumps(receipt, sort_keys=True).encode()

    return normalise


def run_job_cell(service: JobService, cell: Cell, workdir: Path, finished: dict) -> None:
    """Run one cell of a job service and check what it must lead to (see the module's
    docstring); ``finished`` is finish_job's, on the same emulator."""
    emulated = service.emulated
    emulated.reset()
    if service.forget is not None:
        for job in service.jobs() - {finished["job"]}:
            service.forget(job)
    out = workdir / "out"
    out.mkdir()
    env = service.env(workdir, {**cell_settings(cell), **scratch_env(workdir)})
    receipt = finished["receipt"]
    if cell.operation == "submit":
        receipt = out / "receipt.json"
        args, outputs = service.submit(workdir, receipt), [receipt]
    elif cell.fault.how == "service":  # a job of its own that fails (and, for other kinds, has failed)
        receipt = workdir / "receipt.json"
        glob, method = service.paths["submit"]
        emulated.add_faults(cell.fault.spec(glob, method, 1, fault=service.job_fails))
        run_ok(service.submit(workdir, receipt), service.env(workdir, {}))
        if cell.operation != "poll":
            assert run_cli(service.poll(receipt, workdir / "failed.json", 60), service.env(workdir, {})).returncode == 4
        if cell.operation == "poll":
            status = out / "status.json"
            args, outputs = service.poll(receipt, status, 60), [status]
        elif cell.operation in service.kinds:
            args, outputs = service.kinds[cell.operation].call(workdir, receipt, out)
        else:
            args, outputs = service.fetch(receipt, out)
    elif cell.operation == "poll":
        if cell.fault.how == "restart":  # a job of its own, still running
            receipt = workdir / "receipt.json"
            run_ok(service.submit(workdir, receipt), service.env(workdir, {}))
        status = out / "status.json"
        args, outputs = service.poll(receipt, status, 60 if cell.succeeds else UNBOUNDED_POLL_TIMEOUT), [status]
    elif cell.operation in service.kinds:
        kind = service.kinds[cell.operation]
        if kind.own_job:
            receipt = _finished_job_of_its_own(service, workdir)
        args, outputs = kind.call(workdir, receipt, out)
    else:
        args, outputs = service.fetch(receipt, out)
    job = json.loads(receipt.read_text())["job_id"] if receipt.exists() else None
    glob, method = service.paths[cell.operation]
    glob = glob.replace("{job}", str(job))
    before_jobs = service.jobs()
    emulated.app.stats.reset()
    before = files_under([out])
    if cell.fault.how == "service":
        done = run_cli(args, env)
    elif cell.fault.how == "restart":
        def restart_between_polls():
            wait_for_request(emulated, glob)
            emulated.restart(down=0.5)
        done = run_cli_during(args, env, restart_between_polls)
    else:
        undo = inject(emulated, cell, glob, method)
        try:
            done = run_cli(args, env)
        finally:
            undo()
    if cell.lingers:
        emulated.settle()
    made = service.jobs() - before_jobs
    if cell.succeeds:
        assert done.returncode == 0, done.stderr
        if cell.bounded and cell.fault.how == "emulator":
            # a submission's lost answer may be found before the fault fires again
            assert emulated.fired(cell) >= (1 if cell.operation == "submit" else BOUNDED_COUNT)
        if cell.operation == "submit":
            assert made == {json.loads(receipt.read_text())["job_id"]}, made  # one job: the receipt's
            assert_same_outputs(outputs, finished["submit"], _receipt_without(service.volatile))
        else:
            assert not made, f"jobs made by a {cell.operation}: {made}"
            if cell.fault.how == "restart":  # a job of its own: its end, not the reference's bytes
                assert json.loads(outputs[0].read_text())["status"] == json.loads(
                    finished["poll"]["status.json"])["status"]
            else:
                kind = service.kinds.get(cell.operation)
                assert_same_outputs(outputs, finished[cell.operation], kind.normalise if kind else None)
        return
    line = assert_refused_cleanly(done, cell, outputs, before, scratch=workdir / "scratch")
    if cell.operation != "poll":  # a poll rides out outages until its own timeout
        assert_says_what_was_spent(line, cell, env)
    stats = emulated.stats()
    if cell.fault.how == "service":  # the failed job: read, never submitted again
        submit_glob, submit_method = service.paths["submit"]
        assert not made and requests_to(stats, submit_glob, submit_method) == 0
        return
    if cell.fault.how == "refused":
        return
    if cell.operation == "submit":
        assert not made, f"an unbounded {cell.fault.name} made jobs {made}"
    faulted = requests_to(stats, glob, method)
    if cell.operation == "poll" and cell.fault.retried:
        # every check spends at most max_attempts, and the checks stop at the poll's timeout
        checks = int(UNBOUNDED_POLL_TIMEOUT / (service.poll_first_wait * 0.9)) + 2
        assert_requests_bounded(cell, faulted, env, most=checks * max_attempts(env, cell.service))
    else:
        # reads after a refusal as a bad call (exit 2); an auth refusal ends at once
        extra = service.refusal_reads.get(cell.operation, 0) if cell.fault.exit == 2 else 0
        assert_requests_bounded(cell, faulted - extra, env)
