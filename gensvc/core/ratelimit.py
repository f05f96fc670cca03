"""A request limiter shared by every process on the host.

At most ``requests`` requests start in any window of ``seconds`` seconds (an
exact sliding window over recorded start times, not an average). The start
times live in a JSON file in the directory given (by default the user's state
dir, whatever the working directory), guarded by a file lock, one file per
service and credential, so parallel Snakemake jobs share one budget.
A wait of a second or more is logged (INFO) and shown on the progress bar.
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
                if len(starts) < self.limit.requests:
                    starts.append(now)
                    self._write(starts)
                    return
                wait = starts[-self.limit.requests] + self.window - now
            wait = max(wait, 0.001)
            self.waited += wait
            if wait >= progress.NOTICEABLE:
                log.info("waiting %s for %s's window (%s s)", progress.duration(wait), self.service, self.limit)
            progress.current().sleep(wait, f"for {self.service}'s window")

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
