"""The one HTTP layer every service client goes through.

``ServiceSession`` is a ``requests.Session`` that adds, to every request:
timeouts, a shared rate limiter, bounded retries (429, 500, 502, 503, 504 and
connection errors only) with full-jitter exponential backoff under a total
deadline, ``Retry-After`` and ``X-RateLimit-Reset`` honoured, TLS verification
on, and debug logs with secrets redacted.

A request that is not safe to repeat (POST) is sent again only when it provably
was not taken: 429, 503, or no connection made. Any other failure after it was
sent raises ``OutcomeUnknown``; the caller that can look up what happened decides
(``gensvc.core.receipts`` does, for submissions). A POST the service can take twice
with one effect (OpenCRAVAT making a report) goes inside ``with session.repeatable():``
and is retried like a GET. ``session.budget()`` makes the requests of one operation
step share one budget of attempts and one deadline.

An answer saying the service is down for maintenance (a service's error map says which:
CAVATICA's 503 ``"code": 0``) is not a blip: unless it says when to come back, each wait
before the next attempt is the longest the settings allow (``backoff_max``; the official
CAVATICA client sleeps 300 s), and when attempts or deadline run out the one line says the
service is under maintenance and how to wait longer.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

import gensvc
from gensvc.core.ratelimit import SharedRateLimiter
from gensvc.core.redaction import redact, redact_headers
from gensvc.errors import ServiceUnavailable, UnexpectedAnswer

log = logging.getLogger("gensvc.http")

MiB = 1 << 20
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# the server says it did not take the request: safe to send again, whatever the method
NOT_TAKEN_STATUSES = frozenset({429, 503})
USER_AGENT = f"gensvc/{gensvc.__version__}"


class DeadlineExceeded(Exception):
    pass


class OutcomeUnknown(ServiceUnavailable):
    """A request that is not safe to repeat (a POST) failed after it was sent: another
    5xx than 429/503, a connection lost, no answer in time. The server may have acted
    on it, so the session does not send it again; the attempt is spent. A caller that
    can find out what happened (a submission looks its job up) waits with
    ``session.wait_after(budget, error)`` and decides; anyone else sees exit 5."""

    def __init__(self, what, *, where, hint, request, response=None, error=None):
        super().__init__(what, where=where, hint=hint)
        self.request, self.response, self.error = request, response, error


class ServiceRetry(Retry):
    """urllib3's Retry with full jitter, a total deadline and ``X-RateLimit-Reset``."""

    def __init__(self, *args, deadline_at: float | None = None, started_at: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline_at = deadline_at
        self.started_at = time.monotonic() if started_at is None else started_at

    def new(self, **kw):
        kw.setdefault("deadline_at", self.deadline_at)
        kw.setdefault("started_at", self.started_at)
        return super().new(**kw)

    def get_backoff_time(self) -> float:
        # full jitter: uniform over [0, min(cap, base * 2^(n-1))]
        attempts = len(self.history)
        if attempts < 1:
            return 0.0
        ceiling = min(self.backoff_max, self.backoff_factor * 2 ** (attempts - 1))
        return random.uniform(0, ceiling)

    def get_retry_after(self, response) -> float | None:
        try:
            seconds = super().get_retry_after(response)
        except InvalidHeader:
            seconds = None  # a malformed hint: fall back to backoff
        if seconds is not None:
            return seconds
        reset = response.headers.get("X-RateLimit-Reset")
        exhausted = response.status == 429 or response.headers.get("X-RateLimit-Remaining") == "0"
        if reset and exhausted:
            try:
                at = float(reset)
            except ValueError:
                return None
            if at > 1e11:  # some servers send milliseconds
                at /= 1000
            return max(0.0, at - time.time())
        return None

    def wait_time(self, response=None) -> float:
        if response is not None and self.respect_retry_after_header:
            after = self.get_retry_after(response)
            if after:
                return after
        return self.get_backoff_time()

    def check_deadline(self, wait: float) -> None:
        if self.deadline_at is not None and time.monotonic() + wait > self.deadline_at:
            raise DeadlineExceeded(wait)

    def sleep(self, response=None) -> None:
        wait = self.wait_time(response)
        self.check_deadline(wait)
        if wait > 0:
            time.sleep(wait)


class RetryBudget:
    """The failed attempts and the deadline one operation step may spend.

    Each request normally gets a budget of its own. Inside ``with session.budget():``
    every request draws on one, so a step made of several requests (a download that
    resumes, a submission looked up and sent again) stops after ``max_attempts``
    failed attempts in all, within one deadline, not per request."""

    def __init__(self, retry: ServiceRetry):
        self.retry = retry


class ServiceSession(requests.Session):
    """A session bound to one service: use ``session.get(url)`` as usual.

    ``service``: its name in messages and settings' variables. ``limiter``: the shared
    rate limiter, if the service has a limit. ``connect_timeout``, ``read_timeout``:
    seconds, per attempt (cut to what is left of the deadline). ``max_attempts``,
    ``deadline``: the budget of one request (or of one ``budget()`` step). ``backoff``,
    ``backoff_max``: full-jitter exponential backoff, in seconds. ``is_final(response)``:
    True for a retryable status that is the service's answer, not an outage (OpenCRAVAT's
    500 ``{"status": "error"}``); such an answer is returned, not retried. Clients do not
    change the session: credentials go in per request, as a requests auth object.
    ``maintenance(response)``: the service's words when an answer says it is down for
    maintenance, else None (a service's ``ERRORS.maintenance``).
    """

    def __init__(
        self,
        service: str,
        *,
        limiter: SharedRateLimiter | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        max_attempts: int = 6,
        deadline: float = 1800.0,
        backoff: float = 1.0,
        backoff_max: float = 120.0,
        is_final: Callable[[requests.Response], bool] | None = None,
        maintenance: Callable[[requests.Response], str | None] | None = None,
        max_answer_bytes: int = 128 * MiB,
        max_download_bytes: int = 16 * 1024 * MiB,
    ):
        super().__init__()
        self.max_answer_bytes = max_answer_bytes
        self.max_download_bytes = max_download_bytes  # read by core.download, which streams
        self.service = service
        self.limiter = limiter
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max_attempts
        self.deadline = deadline
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.request_count = 0
        self.is_final = is_final
        self.maintenance = maintenance
        self.verify = True
        self.headers["User-Agent"] = USER_AGENT
        self._budgets = threading.local()  # a step's budget belongs to the thread running it
        self._repeatable = threading.local()

    @contextmanager
    def budget(self) -> Iterator[RetryBudget]:
        """One budget for every request made inside; nested, the outer one goes on."""
        outer = getattr(self._budgets, "active", None)
        if outer is not None:
            yield outer
            return
        self._budgets.active = budget = RetryBudget(self.new_retry())
        try:
            yield budget
        finally:
            self._budgets.active = None

    @contextmanager
    def repeatable(self) -> Iterator[None]:
        """Requests made inside are safe to send again whatever their method: the
        service gives one effect however often it takes them."""
        outer = getattr(self._repeatable, "on", False)
        self._repeatable.on = True
        try:
            yield
        finally:
            self._repeatable.on = outer

    def new_retry(self) -> ServiceRetry:
        return ServiceRetry(
            total=self.max_attempts - 1,
            connect=None,
            read=None,
            status=None,
            redirect=0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=Retry.DEFAULT_ALLOWED_METHODS,
            backoff_factor=self.backoff,
            backoff_max=self.backoff_max,
            retry_after_max=self.deadline,
            raise_on_status=False,
            respect_retry_after_header=True,
            deadline_at=time.monotonic() + self.deadline,
        )

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        # requests.Session.request always passes timeout=None, so a setdefault never takes
        ours = kwargs.get("timeout") is None
        stream = kwargs.get("stream", False)
        budget = getattr(self._budgets, "active", None) or RetryBudget(self.new_retry())
        repeatable = (request.method.upper() in budget.retry.allowed_methods
                      or getattr(self._repeatable, "on", False))
        while True:
            if ours:
                kwargs["timeout"] = self._attempt_timeout(budget.retry)
            if self.limiter is not None:
                self.limiter.acquire()
            self.request_count += 1
            self._log_request(request)
            try:
                # streamed underneath, so a body read whole is read under its bound
                response = super().send(request, **{**kwargs, "stream": True})
                if not stream:
                    self._read_whole(response)  # a body cut short raises here, inside the retry loop
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                log.debug("%s %s -> %s", request.method, redact(request.url), type(exc).__name__)
                if not repeatable and not _never_reached_server(exc):
                    raise self._outcome_unknown(budget, request, error=exc) from None
                self.next_attempt(budget, request, error=exc)
                continue
            self._log_response(request, response)
            if response.status_code not in RETRY_STATUSES or (self.is_final is not None and self.is_final(response)):
                return response
            if not repeatable and response.status_code not in NOT_TAKEN_STATUSES:
                raise self._outcome_unknown(budget, request, response=response)
            self.next_attempt(budget, request, response=response)

    def _read_whole(self, response: requests.Response) -> None:
        """The body into ``response.content``, or UnexpectedAnswer past ``max_answer_bytes``."""
        limit = self.max_answer_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            response.close()
            raise self._too_large(response, f"it declares {int(declared)} bytes")
        body, size = [], 0
        for chunk in response.iter_content(1 << 16):
            size += len(chunk)
            if size > limit:
                response.close()
                raise self._too_large(response, "it went on past that")
            body.append(chunk)
        response._content = b"".join(body)

    def _too_large(self, response, how: str) -> UnexpectedAnswer:
        key = self.service.upper()
        return UnexpectedAnswer(
            f"{self.service}'s answer is larger than the {self.max_answer_bytes / MiB:g} MiB an answer may be ({how})",
            where=redact(response.url.split("?")[0]),
            hint=f"check GENSVC_{key}_URL names the service's API; if the answer is real, raise "
                 f"GENSVC_{key}_MAX_ANSWER_BYTES")

    def _attempt_timeout(self, retry: ServiceRetry) -> tuple[float, float]:
        """The connect and read timeouts, cut to what is left of the deadline, so that
        no attempt runs past it."""
        connect, read = self.timeout
        if retry.deadline_at is None:
            return connect, read
        left = max(retry.deadline_at - time.monotonic(), 0.001)
        return min(connect, left), min(read, left)

    def next_attempt(self, budget: RetryBudget, request, *, response=None, error=None) -> None:
        """Spend one failed attempt from ``budget`` and wait before the next, or raise
        ServiceUnavailable when none is left."""
        self._spend(budget, request, response, error)
        self._wait(budget, request, response, error)

    def wait_after(self, budget: RetryBudget, unknown: OutcomeUnknown) -> None:
        """Wait as before a retry after ``unknown`` (its attempt already spent), or raise
        ServiceUnavailable if that would pass the deadline."""
        self._wait(budget, unknown.request, unknown.response, unknown.error, uncertain=True)

    def _outcome_unknown(self, budget: RetryBudget, request, *, response=None, error=None) -> OutcomeUnknown:
        self._spend(budget, request, response, error, uncertain=True)
        plain = self._unavailable(request, budget.retry.started_at, response, error, None)
        return OutcomeUnknown(plain.what, where=plain.where, hint=plain.hint, request=request, response=response,
                              error=error)

    def _spend(self, budget: RetryBudget, request, response, error, uncertain: bool = False) -> None:
        raw = response.raw if response is not None else None
        if response is not None:
            response.close()
        retry = budget.retry
        # an unknown outcome, or any failure of a request made repeatable, is counted like
        # any failure, whatever the method (Retry itself refuses to count a read error on a POST)
        any_method = uncertain or getattr(self._repeatable, "on", False)
        cause = None if any_method else _as_urllib3_error(error)
        try:
            budget.retry = retry.increment(request.method, request.url, response=raw, error=cause)
        except (MaxRetryError, ProtocolError, ConnectTimeoutError) as stop:
            raise self._unavailable(request, retry.started_at, response, error, stop, uncertain=uncertain) from None

    def next_wait(self, retry: ServiceRetry, response=None) -> float | None:
        """Seconds to wait before the next attempt after ``response`` (or an error, when
        None); None when a 429 says nothing of when to come back and the shared window is
        to be taken as spent."""
        raw = response.raw if response is not None else None
        if self._window_is_full(retry, response):
            return None
        if self._maintenance_words(response) is not None and not retry.get_retry_after(raw):
            # down for a while: the longest step allowed, jittered so that parallel processes spread
            return self.backoff_max * random.uniform(0.5, 1.0)
        return retry.wait_time(raw)

    def _wait(self, budget: RetryBudget, request, response, error, uncertain: bool = False) -> None:
        retry = budget.retry
        try:
            wait = self.next_wait(retry, response)
            if wait is None:
                # no hint of when to come back: treat the shared window as used up,
                # so this and every other process waits for it to pass
                retry.check_deadline(self.limiter.window)
                self.limiter.fill()
            else:
                retry.check_deadline(wait)
                if wait > 0:
                    time.sleep(wait)
        except DeadlineExceeded as stop:
            raise self._unavailable(request, retry.started_at, response, error, stop, uncertain=uncertain) from None

    def _window_is_full(self, retry, response) -> bool:
        # a hint of 0 (a reset already passed) means "now", not "no hint"
        return (
            self.limiter is not None
            and response is not None
            and response.status_code == 429
            and retry.get_retry_after(response.raw) is None
        )

    def _maintenance_words(self, response) -> str | None:
        if self.maintenance is None or response is None:
            return None
        try:
            return self.maintenance(response)
        except Exception:  # a body that cannot be read says nothing
            return None

    def _unavailable(self, request, started, response, error, stop, *, uncertain=False) -> ServiceUnavailable:
        url = redact(request.url.split("?")[0])
        what = f"HTTP {response.status_code}" if response is not None else _describe(error)
        spent = time.monotonic() - started
        if isinstance(stop, DeadlineExceeded):
            reason = f"the next wait ({stop.args[0]:.0f} s) would pass the {self.deadline:.0f} s deadline"
        elif isinstance(stop, MaxRetryError):
            reason = f"after {self.max_attempts} attempts in {spent:.1f} s"
        else:
            reason = "not retried: the request may already have been processed"
        key = self.service.upper()
        hint = f"try again later, or raise GENSVC_{key}_MAX_ATTEMPTS / GENSVC_{key}_DEADLINE"
        words = self._maintenance_words(response)
        if words is not None:
            what = f"{self.service} is under maintenance ({words or f'HTTP {response.status_code}'})"
            reason = reason.replace("after", "still so after", 1) if isinstance(stop, MaxRetryError) else reason
            hint = (f"try again once the maintenance is over, or raise GENSVC_{key}_DEADLINE and "
                    f"GENSVC_{key}_BACKOFF_MAX (the wait between attempts) to wait it out")
            return ServiceUnavailable(f"{what}: {request.method} {reason}", where=url, hint=hint)
        if isinstance(error, requests.ConnectTimeout):
            what = f"no connection within the {self.timeout[0]:g} s connect timeout"
            hint += f" / GENSVC_{key}_CONNECT_TIMEOUT"
        elif _is_read_timeout(error):
            what = f"no answer within the {self.timeout[1]:g} s read timeout"
            hint += f" / GENSVC_{key}_READ_TIMEOUT"
        if error is not None and _never_reached_server(error):  # often a wrong URL, not a busy service
            hint = f"check GENSVC_{key}_URL (or the url param) names a server that is up; then {hint}"
        if uncertain and stop is not None:
            hint = f"the server may have acted on the last attempt; {hint}"
        return ServiceUnavailable(f"{self.service} {request.method} failed: {what}, {reason}", where=url, hint=hint)

    def _log_request(self, request) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s headers=%s", request.method, redact(request.url), redact_headers(request.headers))

    def _log_response(self, request, response) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %s in %.3f s headers=%s",
                request.method,
                redact(request.url),
                response.status_code,
                response.elapsed.total_seconds(),
                redact_headers(response.headers),
            )


def _as_urllib3_error(error: Exception | None) -> Exception | None:
    """Map a requests error to the urllib3 class that Retry reasons about."""
    if error is None:
        return None
    if _never_reached_server(error):
        return ConnectTimeoutError(str(error))  # safe to repeat for any method
    return ProtocolError(str(error))  # may have reached it: only idempotent methods


def _never_reached_server(error: Exception) -> bool:
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)


def _is_read_timeout(error: Exception | None) -> bool:
    # a stalled streamed body arrives as a ConnectionError wrapping urllib3's ReadTimeoutError
    first = error.args[0] if error is not None and error.args else None
    return isinstance(error, requests.ReadTimeout) or isinstance(first, ReadTimeoutError)


def _describe(error: Exception | None) -> str:
    if error is None:
        return "no answer"
    if _never_reached_server(error):
        return "no connection"
    if isinstance(error, requests.Timeout):
        return "a timeout"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "a response cut short"
    return "a dropped connection"


def build_session(settings, *, is_final: Callable[[requests.Response], bool] | None = None,
                  maintenance: Callable[[requests.Response], str | None] | None = None) -> ServiceSession:
    """A session for one service from its resolved settings; ``is_final`` and ``maintenance``
    as ServiceSession takes them (a service module's ``ERRORS.is_final`` and ``ERRORS.maintenance``)."""
    limiter = None
    if settings.rate_limit is not None:
        credential = next(iter(settings.credentials.values.values()), None)
        limiter = SharedRateLimiter(settings.rate_limit, settings.limiter_dir, settings.service, credential)
    return ServiceSession(
        settings.service,
        limiter=limiter,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_attempts=settings.max_attempts,
        deadline=settings.deadline,
        backoff=settings.backoff,
        backoff_max=settings.backoff_max,
        is_final=is_final,
        maintenance=maintenance,
        max_answer_bytes=settings.max_answer_bytes,
        max_download_bytes=settings.max_download_bytes,
    )
