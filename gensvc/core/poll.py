"""Waiting for a remote job: checks spaced by the job's age, under a deadline, tolerant of blips.

A job that has run for ``t`` seconds is checked again after ``fraction`` x ``t`` (between
``floor`` and ``cap``), so a job that ends is seen within ``fraction`` of its length (or
``floor`` for a short one) while the number of checks grows only with the logarithm of the
length: fixed 10 s polling asks 180 times in 30 min, this about 70 (60 s cap). The age counts from the
job's submission when the caller knows it (a poll started late asks at once). Jitter only
shortens a wait, so parallel pollers spread out and the bound still holds.

A service that reports how far a job has got (``JobState.progress``, 0..1) lets the next
check come at the end that progress foretells when that is sooner than the age rule's; it
never makes a wait longer, so a wrong forecast costs one check, not a late notice.

A check that fails with ServiceUnavailable (the session already retried it) is logged and
the polling goes on, until the total ``timeout`` (whose one line then says why the last check
failed, if it did: an outage, the service's maintenance). The job's status and the time elapsed are
reported (gensvc.core.progress): a bar on a terminal, and in the log each change at once
and, while it stays, a line every progress interval.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from gensvc.core import progress
from gensvc.errors import ServiceUnavailable

log = logging.getLogger("gensvc.poll")


@dataclass
class JobState:
    status: str
    finished: bool = False  # terminal, successfully or not
    detail: dict | None = None
    progress: float | None = None  # share of the job's work done, when the service says


@dataclass
class Forecast:
    """The job's end as its reported progress foretells it: the rate between the first and
    the latest reading of progress. A forecast is acted on once per progress value, so a
    service whose progress lies cannot make the checks come at the floor's pace."""

    first: tuple[float, float] | None = None  # (age, progress) when progress was first > 0
    latest: tuple[float, float] | None = None
    used_for: float | None = None  # the progress value a forecast already brought a check forward for

    def read(self, age: float, value: float | None) -> None:
        if value is None or not 0 < value <= 1:
            return
        if self.first is None:
            self.first = self.latest = (age, value)
        elif value > self.latest[1]:
            self.latest = (age, value)

    def remaining(self) -> float | None:
        """Seconds to the foretold end, or None: no rate yet, or already acted on."""
        if self.first is None or self.latest == self.first:
            return None
        (age0, done0), (age1, done1) = self.first, self.latest
        if done1 <= done0 or age1 <= age0 or self.used_for == done1:
            return None
        return max(0.0, (1 - done1) * (age1 - age0) / (done1 - done0))


@dataclass(frozen=True)
class PollPolicy:
    first: float = 1.0  # before the first check of a job just submitted
    fraction: float = 0.1  # of the job's age: the next wait, and the bound on a late notice
    floor: float | None = None  # the shortest wait (default: first)
    cap: float = 60.0
    jitter: float = 0.1  # a wait is shortened by up to this share, never lengthened
    timeout: float = 24 * 3600.0

    def first_wait(self, age: float) -> float:
        """Before the first check, for a job submitted ``age`` seconds ago."""
        return max(0.0, self.first - age)

    def next_wait(self, age: float, forecast: Forecast | None = None) -> float:
        """After a check of a job ``age`` seconds old that had not finished."""
        floor = self.first if self.floor is None else self.floor
        wait = min(self.cap, max(floor, self.fraction * age))
        remaining = forecast.remaining() if forecast is not None else None
        if remaining is not None and remaining < wait:
            forecast.used_for = forecast.latest[1]
            wait = max(floor, remaining)
        return wait * random.uniform(1 - self.jitter, 1)


@dataclass
class _Clock:
    """The job's age: from its submission when known (``submitted`` on time.time()'s clock)."""

    submitted: float | None
    started: float = field(default_factory=time.monotonic)

    def age(self) -> float:
        local = time.monotonic() - self.started
        if self.submitted is None:
            return local
        return max(local, time.time() - self.submitted)  # a submission time ahead of our clock: ours


def wait_for_job(check: Callable[[], JobState], policy: PollPolicy, *, what: str, where: str,
                 submitted: float | None = None) -> tuple[JobState, int]:
    """Call ``check`` until it reports a terminal state; returns it and the number of checks.
    ``submitted``: when the job was submitted (epoch seconds), if the caller knows."""
    clock, forecast = _Clock(submitted), Forecast()
    deadline = time.monotonic() + policy.timeout
    last_status, checks, failure = None, 0, None
    with progress.report(what, unit=None) as job:
        job.sleep(min(policy.first_wait(clock.age()), policy.timeout))
        while True:
            checks += 1
            try:
                state = check()
                failure = None
            except ServiceUnavailable as exc:
                log.warning("status check of %s failed (%s); still waiting", what, exc)
                state, failure = None, exc
            if state is not None:
                job.status(state.status)
                last_status = state.status
                if state.finished:
                    return state, checks
                forecast.read(clock.age(), state.progress)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failed = f"; its last check failed: {failure.what}" if failure is not None else ""
                raise ServiceUnavailable(
                    f"{what} did not finish within {policy.timeout:.0f} s (last status: {last_status or 'unknown'}{failed})",
                    where=where,
                    hint="poll again later with the same receipt, or raise the timeout param",
                )
            job.sleep(min(policy.next_wait(clock.age(), forecast), remaining))
