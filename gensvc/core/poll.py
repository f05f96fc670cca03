"""Waiting for a remote job: backoff polling under a deadline, tolerant of blips.

The first check comes after ``first`` seconds; each wait grows by ``factor`` up
to ``cap``, with ±``jitter`` so parallel pollers spread out. A check that fails
with ServiceUnavailable (the session already retried it) is logged and the
polling goes on, until the total ``timeout``. The job's status and the time
elapsed are reported (gensvc.core.progress): a bar on a terminal, and in the log
each change at once and, while it stays, a line every progress interval.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable

from gensvc.core import progress
from gensvc.errors import ServiceUnavailable

log = logging.getLogger("gensvc.poll")


@dataclass(frozen=True)
class PollPolicy:
    first: float = 1.0
    factor: float = 1.5
    cap: float = 60.0
    jitter: float = 0.1
    timeout: float = 24 * 3600.0

    def waits(self):
        wait = self.first
        while True:
            yield wait * random.uniform(1 - self.jitter, 1 + self.jitter)
            wait = min(self.cap, wait * self.factor)


@dataclass
class JobState:
    status: str
    finished: bool = False  # terminal, successfully or not
    detail: dict | None = None


def wait_for_job(check: Callable[[], JobState], policy: PollPolicy, *, what: str, where: str) -> tuple[JobState, int]:
    """Call ``check`` until it reports a terminal state; returns it and the number of checks."""
    deadline = time.monotonic() + policy.timeout
    last_status, checks = None, 0
    with progress.report(what, unit=None) as job:
        for wait in policy.waits():
            checks += 1
            try:
                state = check()
            except ServiceUnavailable as exc:
                log.warning("status check of %s failed (%s); still waiting", what, exc)
                state = None
            if state is not None:
                job.status(state.status)
                last_status = state.status
                if state.finished:
                    return state, checks
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServiceUnavailable(
                    f"{what} did not finish within {policy.timeout:.0f} s (last status: {last_status or 'unknown'})",
                    where=where,
                    hint="poll again later with the same receipt, or raise the timeout param",
                )
            job.sleep(min(wait, remaining))
    raise AssertionError("unreachable")
