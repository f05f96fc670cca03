"""A request limiter shared by every process on the host.

At most ``requests`` requests start in any window of ``seconds`` seconds (an
exact sliding window over recorded start times, not an average). The start
times live in a JSON file in the directory given (by default the user's state
dir, whatever the working directory), guarded by a file lock, one file per
service and credential, so parallel Snakemake jobs share one budget.
A wait of a second or more is logged (INFO) and shown on the progress bar.

A service that tells its budget on every answer (``X-RateLimit-Remaining`` and
``-Reset``, CAVATICA) feeds it in with ``observe``: the figure is shared beside the
start times, every process counts it down as it starts a request, and once it is
spent they all wait for the reset, before the server answers 429.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from gensvc.core import progress
from gensvc.core.files import replace_json
from gensvc.errors import UsageError

log = logging.getLogger("gensvc.ratelimit")


@dataclass(frozen=True)
class RateLimit:
    requests: int
    seconds: float

    @classmethod
    def parse(cls, text: str | None) -> "RateLimit | None":
        """``"180/900"`` -> 180 requests per 900 s; ``off``/``none``/empty -> no limit."""
        if text is None:
            return None
        text = str(text).strip()
        if text.lower() in ("", "off", "none", "0"):
            return None
        try:
            count, _, window = text.partition("/")
            limit = cls(int(count), float(window))
        except ValueError:
            raise UsageError(f"rate limit {text!r} is not REQUESTS/SECONDS", hint="write it like 180/900") from None
        if limit.requests < 1 or limit.seconds <= 0:
            raise UsageError(f"rate limit {text!r} must have positive numbers", hint="write it like 180/900")
        return limit

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds:g}"


class SharedRateLimiter:
    """Blocks in ``acquire()`` until a request may start without breaking the limit."""

    # A server's window starts when our request arrives, a moment after we
    # record it; a small margin keeps the two clocks from disagreeing at the edge.
    MARGIN_FRACTION = 0.01
    MARGIN_SECONDS = 0.05

    def __init__(self, limit: RateLimit, state_dir: Path, service: str, credential: str | None):
        self.limit = limit
        self.service = service
        key = hashlib.sha256(f"{service}\0{credential or ''}".encode()).hexdigest()[:16]
        directory = Path(state_dir) / "ratelimit"
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{service}-{key}.json"
        self._lock = FileLock(str(self.path) + ".lock")
        self.window = limit.seconds * (1 + self.MARGIN_FRACTION) + self.MARGIN_SECONDS
        self.waited = 0.0

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.time()
                starts = [t for t in self._read() if t > now - self.window]
                if len(starts) >= self.limit.requests:
                    wait = starts[-self.limit.requests] + self.window - now
                else:
                    wait = self._server_wait(now)
                    if not wait:
                        starts.append(now)
                        self._write(starts)
                        # the decision's own time, to the microsecond: what a test holds to the limit
                        log.debug("%s: a request starts at %.6f (%d in the window)", self.service, now, len(starts))
                        return
            wait = max(wait, 0.001)
            self.waited += wait
            if wait >= progress.NOTICEABLE:
                log.info("waiting %s for %s's window (%s s)", progress.duration(wait), self.service, self.limit)
            progress.current().sleep(wait, f"for {self.service}'s window")

    def observe(self, headers) -> None:
        """Take the server's own count of what is left of its window (a response's
        X-RateLimit-Remaining and -Reset, epoch seconds or milliseconds)."""
        budget = ServerBudget.from_headers(headers)
        if budget is None:
            return
        with self._lock:
            self._write_budget(budget.merged_with(self._read_budget()))

    def _server_wait(self, now: float) -> float:
        """Seconds to wait for the server's window to reset, or 0 after counting this
        request against it. Call with the lock held."""
        budget = self._read_budget()
        if budget is None or now >= budget.reset:
            return 0.0
        if budget.remaining <= 0:
            return budget.reset - now + self.MARGIN_SECONDS
        self._write_budget(ServerBudget(budget.remaining - 1, budget.reset))
        return 0.0

    def _budget_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".server.json")

    def _read_budget(self) -> "ServerBudget | None":
        try:
            data = json.loads(self._budget_path().read_text())
            return ServerBudget(int(data["remaining"]), float(data["reset"]))
        except (FileNotFoundError, ValueError, TypeError, KeyError):
            return None

    def _write_budget(self, budget: "ServerBudget") -> None:
        replace_json(self._budget_path(), {"remaining": budget.remaining, "reset": budget.reset}, indent=None)

    def time_for(self, count: int) -> float:
        """Seconds from now until ``count`` more requests can all have started, if no other
        process takes a turn: the sliding window played forward from the recorded starts."""
        if count <= 0:
            return 0.0
        now = time.time()
        recent = deque((t for t in self._read() if t > now - self.window), maxlen=self.limit.requests)
        first = []  # the next requests, up to one window's worth
        for _ in range(min(count, self.limit.requests)):
            start = max(now, recent[0] + self.window) if len(recent) == self.limit.requests else now
            recent.append(start)
            first.append(start)
        # from then on each request starts one window after the one a window's worth before it
        rounds, index = divmod(count - 1, self.limit.requests)
        return first[index] + rounds * self.window - now

    def fill(self) -> None:
        """The server says the window is used up: make everyone wait a whole window."""
        with self._lock:
            self._write([time.time()] * self.limit.requests)

    def _read(self) -> list[float]:
        try:
            return sorted(float(t) for t in json.loads(self.path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return []

    def _write(self, starts: list[float]) -> None:
        replace_json(self.path, starts, indent=None)


@dataclass(frozen=True)
class ServerBudget:
    """What the server says is left of its window, and when (epoch seconds) it resets."""

    remaining: int
    reset: float

    @classmethod
    def from_headers(cls, headers) -> "ServerBudget | None":
        try:
            remaining = int(headers["X-RateLimit-Remaining"])
            reset = float(headers["X-RateLimit-Reset"])
        except (KeyError, TypeError, ValueError):
            return None
        if reset > 1e11:  # milliseconds, as one of the platform's documents shows
            reset /= 1000
        return cls(remaining, reset)

    def merged_with(self, known: "ServerBudget | None") -> "ServerBudget":
        """Within one window the lower count wins: answers to requests started before
        others were counted down arrive late and must not raise it again."""
        if known is not None and abs(known.reset - self.reset) < 1 and known.remaining < self.remaining:
            return ServerBudget(known.remaining, max(known.reset, self.reset))
        return self
