"""Progress of long work: a bar on a terminal, a line now and then in a log.

An operation opens a reporter around its request loop (``with report(...) as
progress``); what runs inside - the client counting its requests, the limiter
waiting for its window, a poll checking a job - reaches it through
``current()``, so the layers below need no extra argument. On a terminal
(stderr is a TTY) the reporter draws a tqdm bar. Whatever the terminal, it logs
at INFO (what a Snakemake ``log:`` file holds) the plan, a status change at
once, and otherwise at most one line every ``GENSVC_PROGRESS_INTERVAL`` seconds
(default 30; 0 logs every step).

The ETA counts the rate limit: the limiter knows when the remaining requests
can start (``SharedRateLimiter.time_for``), which an average of past requests
cannot know when most of them came in one burst at the start of a window.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from typing import Iterator

from gensvc.errors import UsageError

log = logging.getLogger("gensvc.progress")

INTERVAL_VARIABLE = "GENSVC_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 30.0
BAR_REFRESH = 0.5  # seconds between redraws while sleeping, so the clock on the bar moves
NOTICEABLE = 1.0  # seconds: a shorter wait is neither logged nor shown

_active: list["Reporter"] = []  # innermost last; shared by threads (a worker pool reports to its operation)


def interval() -> float:
    """Seconds between two progress lines in the log, from GENSVC_PROGRESS_INTERVAL."""
    text = os.environ.get(INTERVAL_VARIABLE, "").strip()
    if not text:
        return DEFAULT_INTERVAL
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (0 <= seconds < math.inf):
        raise UsageError(f"{INTERVAL_VARIABLE}={text!r} is not a number of seconds",
                         hint=f"set it like {INTERVAL_VARIABLE}=30 (0 logs every step), or unset it")
    return seconds


def duration(seconds: float, coarse: bool = False) -> str:
    """``850`` -> ``14 min 10 s``; coarse drops the seconds from 10 min on (for estimates)."""
    seconds = max(0, round(seconds))
    if coarse and seconds >= 600:
        seconds = round(seconds / 60) * 60
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def current() -> "Reporter":
    """The innermost active reporter, or one that reports nothing."""
    return _active[-1] if _active else _SILENT


@contextmanager
def report(what: str, *, total: int | None = None, unit: str = "request", limiter=None) -> Iterator["Reporter"]:
    """Report the progress of ``what`` inside the block; ``unit=None`` reports a status (a job)."""
    reporter = Reporter(what, total=total, unit=unit, limiter=limiter, terminal=sys.stderr.isatty())
    _active.append(reporter)
    try:
        with reporter.console_logging():
            yield reporter
    finally:
        _active.remove(reporter)
        reporter.close()


class Reporter:
    """Counts done out of ``total`` units (or follows a status) and tells the terminal and the log.

    what: names the work in every line, e.g. ``bravo frequencies`` or ``opencravat job 42``.
    total: units planned; may be revised (``expect``) and grows if the work does.
    unit: what is counted, singular (``request``, ``variant``); None for a job's status.
    limiter: the SharedRateLimiter the requests go through, for the ETA and the plan.
    terminal: draw a bar on stderr.
    every: seconds between progress lines in the log; by default ``interval()``.
    """

    def __init__(self, what: str, *, total: int | None, unit: str | None, limiter=None, terminal: bool = False,
                 every: float | None = None):
        self.what, self.total, self.unit, self.limiter = what, total, unit, limiter
        self.done = 0
        self.status_text: str | None = None
        self.started = time.monotonic()
        self.waited = 0.0  # spent waiting for the limiter: no work was done then
        self._interval = interval() if every is None else every
        self._logged_at = self.started
        self._logged_any = False
        self._lock = threading.RLock()
        self._bar = self._make_bar() if terminal else None

    # ---- what the work tells the reporter ---------------------------------------

    def plan(self, note: str = "") -> None:
        """One line before the work starts: its size and, under a rate limit, how long it takes."""
        if not self.total:
            return
        line = f"{self.what}: planned {_count(self.total, self.unit)}{note}"
        if self.limiter is not None:
            rate = f"{self.limiter.limit.requests} per {duration(self.limiter.limit.seconds)}"
            needed = self.limiter.time_for(self.total)
            line += f": about {duration(needed, coarse=True)} at {rate}" if needed >= 1 else f": within {rate}"
        self._say(line)

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done += count
            if self.total is not None and self.done > self.total:
                self.total = self.done  # more pages than planned: the plan grows
                if self._bar is not None:
                    self._bar.total = self.total
            if self._bar is not None:
                self._bar.set_postfix_str(self._eta_text(), refresh=False)
                self._bar.update(count)
            if self._due():
                self._log_progress()

    def expect(self, total: int) -> None:
        """A better estimate of the units the whole work takes (never below those done)."""
        with self._lock:
            self.total = max(int(total), self.done)
            if self._bar is not None:
                self._bar.total = self.total
                self._bar.set_postfix_str(self._eta_text(), refresh=True)

    def status(self, text: str) -> None:
        """A job's remote status: logged when it changes, and every interval while it stays."""
        with self._lock:
            changed = text != self.status_text
            self.status_text = text
            if self._bar is not None:
                self._bar.set_description_str(f"{self.what}: {text}", refresh=True)
            if changed or self._due():
                self._log_line(f"{self.what}: {text if changed else 'still ' + text}, "
                               f"{duration(self.elapsed())} elapsed")

    def sleep(self, seconds: float, reason: str = "") -> None:
        """Sleep. With a ``reason`` (the limiter's ``for bravo's window``) the time is a wait, not
        work, and a noticeable one shows on the bar as a countdown."""
        if reason:
            self.waited += seconds
        if self._bar is None:
            time.sleep(seconds)
            return
        shown = bool(reason) and seconds >= NOTICEABLE
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            if shown:
                self._bar.set_postfix_str(f"waiting {duration(max(left, 1))} {reason}", refresh=False)
            self._bar.refresh()
            time.sleep(min(left, BAR_REFRESH))
        if shown:
            self._bar.set_postfix_str(self._eta_text(), refresh=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def close(self) -> None:
        if self._logged_any and self.unit is not None:
            self._log_line(f"{self.what}: {_count(self.done, self.unit)} in {duration(self.elapsed())}")
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ---- estimates and lines ---------------------------------------------------------

    def eta(self) -> float | None:
        """Seconds left: the work at its pace so far, or the limiter's window, whichever is longer."""
        if self.total is None or self.done == 0:
            return None
        left = self.total - self.done
        per_unit = max(self.elapsed() - self.waited, 0.0) / self.done
        estimate = left * per_unit
        if self.limiter is not None and left > 0:
            estimate = max(estimate, self.limiter.time_for(left) + per_unit)
        return estimate

    def _eta_text(self) -> str:
        eta = self.eta()
        return "" if eta is None or self.done >= self.total else f"ETA {duration(eta, coarse=True)}"

    def _due(self) -> bool:
        return time.monotonic() - self._logged_at >= self._interval

    def _log_progress(self) -> None:
        counted = f"{self.done}/{self.total} {self.unit}s" if self.total is not None else _count(self.done, self.unit)
        line = f"{self.what}: {counted}, {duration(self.elapsed())} elapsed"
        eta = self.eta()
        if eta is not None and self.done < (self.total or 0):
            line += f", about {duration(eta, coarse=True)} left"
        self._log_line(line)

    def _log_line(self, line: str) -> None:
        self._logged_at, self._logged_any = time.monotonic(), True
        log.info("%s", line)

    def _say(self, line: str) -> None:
        """A line for the log and, above the bar, for the terminal (once, if the log is there too)."""
        log.info("%s", line)
        if self._bar is not None and not _console_logs(logging.INFO):
            self._bar.write(line, file=sys.stderr)

    # ---- the terminal -------------------------------------------------------------------

    def _make_bar(self):
        from tqdm import tqdm  # only when a bar is drawn

        if self.unit is None:
            bar_format = "{desc} [{elapsed} elapsed]"
        elif self.total is None:
            bar_format = "{desc}: {n_fmt} {unit}s [{elapsed}{postfix}]"
        else:
            bar_format = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit}s [{elapsed}{postfix}]"
        return tqdm(total=self.total, desc=self.what, unit=self.unit or "check", file=sys.stderr,
                    bar_format=bar_format, dynamic_ncols=True, mininterval=0.2, leave=True)

    def console_logging(self):
        """While a bar is drawn, log lines meant for the terminal go above it, not through it."""
        if self._bar is None or not _console_logs(logging.CRITICAL):
            return nullcontext()
        from tqdm.contrib.logging import logging_redirect_tqdm

        return logging_redirect_tqdm()


class _Silent(Reporter):
    """Reports nothing: what runs outside any ``report`` block."""

    def __init__(self):
        super().__init__("", total=None, unit=None, every=math.inf)

    def advance(self, count: int = 1) -> None:
        pass

    def expect(self, total: int) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def sleep(self, seconds: float, reason: str = "") -> None:
        time.sleep(seconds)


def _count(number: int, unit: str | None) -> str:
    return f"{number} {unit or 'check'}{'' if number == 1 else 's'}"


def _console_logs(level: int) -> bool:
    """Whether log lines at ``level`` reach the terminal through a handler on stderr (CRITICAL:
    whether there is such a handler at all)."""
    root = logging.getLogger()
    return root.isEnabledFor(level) and any(
        isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (sys.stderr, sys.stdout)
        for h in root.handlers)


_SILENT = _Silent()
