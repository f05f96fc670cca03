"""OpenCGA 5 REST v2: a thin client on gensvc.core (contracts.md section 4, CLIENT-FACTS.md).

pyopencga has no session or timeouts, logs in again after every call and loops for ever on a
401, so gensvc speaks the API itself. What the server does that shapes this client:

- Every answer is an envelope: ``responses[].results``; an error is the same envelope with an
  ERROR event in ``events`` (its ``message`` is the error). A 500 carrying such an event is the
  catalog refusing the request (not found, already exists): final, never retried (``ERRORS``,
  whose ``is_final`` the runner gives the session). A 5xx without one is an outage, retried.
- Some errors come as HTTP 200 with ``{"error": "..."}`` and no envelope: caught.
- Tokens are JWTs that expire (``exp``). The client logs in once per process, refreshes with
  the refresh token only when the token is near its expiry, or once after a 401; a second
  401 ends the call (exit 3). Every token is registered as a secret, so logs mask it (the
  server's own "token is expired : <token>" messages too).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time

from gensvc.core import progress
from gensvc.core.auth import BearerToken  # its token is replaced in place by a refresh
from gensvc.core.answers import json_body, unexpected_shape
from gensvc.core.client import ServiceClient
from gensvc.core.errormap import ErrorMap, Rule
from gensvc.core.redaction import register_secret
from gensvc.errors import AuthError, RequestRejected, ServiceUnavailable, UnexpectedAnswer

log = logging.getLogger("gensvc.opencga")

API = "webservices/rest/v2/"
MAX_LIMIT = 5000  # the server cuts larger limits silently (AbstractManager.MAX_LIMIT)
AUTH_HINT = "set GENSVC_OPENCGA_USER and GENSVC_OPENCGA_PASSWORD, or GENSVC_OPENCGA_TOKEN"
TOKEN_HINT = ("give a new GENSVC_OPENCGA_TOKEN, or set GENSVC_OPENCGA_USER and GENSVC_OPENCGA_PASSWORD so "
              "gensvc can log in again")
ACTIVE = ("PENDING", "QUEUED", "RUNNING", "REGISTERING")

ENDPOINTS = {
    "login": "users/login",
    "about": "meta/about",
    "projects": "projects/search",
    "studies": "studies/search",
    "samples": "samples/search",
    "files": "files/search",
    "individuals": "individuals/search",
    "jobs": "jobs/search",
    "upload": "files/upload",
    "index": "operation/variant/index",
    "job": "jobs/{job_id}/info",
    "job_log": "jobs/{job_id}/log/tail",
    "variants": "analysis/variant/query",
}


def error_event(body) -> str | None:
    """The message of the envelope's first ERROR event (top level, then in a result)."""
    if not isinstance(body, dict):
        return None
    events = list(body.get("events") or [])
    for response in body.get("responses") or []:
        if isinstance(response, dict):
            events += response.get("events") or []
    for event in events:
        if isinstance(event, dict) and event.get("type") == "ERROR":
            return str(event.get("message") or event.get("description") or event.get("name") or "error")
    return None


def _event_message(response) -> str | None:
    """The service's own words in an answer: its envelope's ERROR event (None if it has none,
    e.g. a proxy's page or an outage's bare body)."""
    try:
        return error_event(response.json())
    except ValueError:
        return None


# a 500 carrying an ERROR event is the catalog refusing the request: final, exit 2
ERRORS = ErrorMap("opencga", message=_event_message, auth_hint=AUTH_HINT, rules=(
    Rule(500, RequestRejected, says="", what="opencga refused the request (HTTP {status}): {message}",
         hint="check the study, ids and params named in the message"),
))


def check_envelope(response) -> dict:
    """The envelope of a successful answer; an error answered with HTTP 200 is caught."""
    where = response.url.split("?")[0]
    body = json_body(response, "opencga")
    if isinstance(body, dict) and "error" in body and "responses" not in body:
        # OpenCGA's old error answer: HTTP 200 and no envelope
        raise UnexpectedAnswer(f"opencga answered HTTP 200 with an error: {body['error']}", where=where,
                               hint="the request was not carried out; check its inputs and params")
    message = error_event(body)
    if message:
        raise UnexpectedAnswer(f"opencga answered HTTP {response.status_code} with an error: {message}", where=where,
                               hint="the request was not carried out; check its inputs and params")
    if not isinstance(body, dict) or not isinstance(body.get("responses"), list):
        raise unexpected_shape("opencga", "a response envelope", body, where)
    return body


def token_expiry(token: str) -> tuple[float, float] | None:
    """(issued at, expires at) from a JWT's claims, or None if it says neither."""
    try:
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=" * (-len(token.split(".")[1]) % 4)))
        return float(claims.get("iat", 0)), float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


class Tokens:
    """The tokens of one user on one server, shared by every client in this process."""

    _known: dict[tuple[str, str], "Tokens"] = {}
    _lock = threading.Lock()

    def __init__(self):
        self.access: str | None = None
        self.refresh: str | None = None
        self.logins = 0
        self.refreshes = 0

    @classmethod
    def of(cls, base: str, who: str) -> "Tokens":
        with cls._lock:
            return cls._known.setdefault((base, who), cls())

    def keep(self, access: str, refresh: str | None) -> None:
        register_secret(access)
        register_secret(refresh)
        self.access, self.refresh = access, refresh

    def near_expiry(self) -> bool:
        times = token_expiry(self.access or "")
        if times is None:
            return False
        issued, expires = times
        # a tenth of its life, at most a minute: short-lived (time-scaled) tokens too
        margin = min(60.0, max(expires - issued, 0.0) / 10)
        return time.time() >= expires - margin


class OpencgaClient(ServiceClient):
    """One OpenCGA server: ``call(method, endpoint, ...)`` gives the envelope."""

    SERVICE = "opencga"
    ENDPOINTS = ENDPOINTS
    ERRORS = ERRORS

    def __init__(self, step, base_url: str | None = None):
        self.host = (base_url or step.settings.url).rstrip("/") + "/"
        super().__init__(step.session, self.host + API, auth=BearerToken(""))
        creds = step.settings.credentials
        self.user, self.password, self.given = creds.get("user"), creds.get("password"), creds.get("token")
        self.organization = creds.get("organization")  # OpenCGA 5 servers of several organizations need it
        if not ((self.user and self.password) or self.given):
            raise AuthError("opencga needs a user and password, or a token", where=self.host, hint=AUTH_HINT)
        self.tokens = Tokens.of(self.host, self.user or f"token:{hash(self.given)}")

    # ---- tokens -------------------------------------------------------------------------

    def token(self) -> str:
        if self.tokens.access is None:
            if self.given and not (self.user and self.password):
                self.tokens.keep(self.given, None)
            else:
                self._login({"user": self.user, "password": self.password})
        elif self.tokens.near_expiry() and self.can_renew():
            log.info("the opencga token is near its expiry; refreshing it")
            self.renew()
        return self.tokens.access

    def _login(self, body: dict) -> None:
        if self.organization:
            body = {**body, "organization": self.organization}
        try:
            response = self.session.post(self.url("login"), json=body)
            ERRORS.check(response)
            envelope = check_envelope(response)
        except AuthError as exc:
            what = "refreshing the token" if "refreshToken" in body else f"logging in as {self.user!r}"
            raise AuthError(f"opencga refused {what}: {exc.what}", where=exc.where, hint=AUTH_HINT) from None
        result = first_result(envelope, response.url)
        if not isinstance(result, dict) or not isinstance(result.get("token"), str):
            raise unexpected_shape("opencga", "a login's tokens", result, response.url.split("?")[0])
        self.tokens.keep(result["token"], result.get("refreshToken"))
        if "refreshToken" in body:
            self.tokens.refreshes += 1
            log.info("refreshed the opencga token (refresh %d)", self.tokens.refreshes)
        else:
            self.tokens.logins += 1
            log.info("logged in to opencga as %s", self.user)

    def can_renew(self) -> bool:
        return bool(self.tokens.refresh or (self.user and self.password))

    def renew(self) -> None:
        """A new token: by the refresh token, else by logging in again; AuthError if neither can."""
        if self.tokens.refresh:
            try:
                self._login({"refreshToken": self.tokens.refresh})
                return
            except AuthError:
                if not (self.user and self.password):
                    raise
                log.info("the opencga refresh token was refused; logging in again")
        if self.user and self.password:
            self._login({"user": self.user, "password": self.password})
            return
        raise AuthError("the opencga token was refused or has expired, and there is no password to log in again",
                        where=self.host, hint=TOKEN_HINT)

    # ---- requests -----------------------------------------------------------------------

    def send(self, method: str, url: str, **kwargs):
        """One checked request; after a 401 the token is renewed once and the request sent once more."""
        self.auth.token = self.token()
        response = self.session.request(method, url, auth=self.auth, **kwargs)
        if response.status_code == 401 and not self.can_renew():
            refused = self.ERRORS.error_for(response)
            raise AuthError(f"{refused.what}; a given token cannot be renewed", where=refused.where, hint=TOKEN_HINT)
        if response.status_code == 401:
            log.info("opencga refused the token (HTTP 401); renewing it once")
            self.renew()
            self.auth.token = self.tokens.access
            response = self.session.request(method, url, auth=self.auth, **kwargs)
        self.ERRORS.check(response)
        return response

    def answer(self, response) -> dict:
        return check_envelope(response)

    def results(self, method: str, name: str, **kwargs) -> list:
        response = self.request(method, name, **kwargs)
        return all_results(self.answer(response), response.url)

    def version(self) -> str | None:
        """The server's OpenCGA version (meta/about), or None if it does not say."""
        try:
            response = self.session.get(self.url("about"))
            ERRORS.check(response)
            about = first_result(check_envelope(response), response.url)
        except (ServiceUnavailable, UnexpectedAnswer, RequestRejected):
            return None
        return str(about.get("Version")) if isinstance(about, dict) and about.get("Version") else None

    def pages(self, name: str, params: dict, page_size: int):
        """Every result of a search or query, a page at a time: ``skip``/``limit`` to the end,
        the count checked against the first page's ``numMatches``."""
        page_size = max(1, min(int(page_size), MAX_LIMIT))
        skip, total, seen, last = 0, None, 0, None
        while True:
            query = {**params, "skip": skip, "limit": page_size, "count": "true" if total is None else "false"}
            response = self.request("GET", name, params=query)
            first = first_response(self.answer(response), response.url)
            results = page_results(first, response.url)
            # a server that ignores skip sends the first page for ever
            if results and results == last:
                raise UnexpectedAnswer(f"opencga paging does not end: the page at skip={skip} repeats the one before",
                                       where=self.url(name), hint="the server ignores skip; check GENSVC_OPENCGA_URL")
            last = results
            if total is None:
                matches = first.get("numMatches")
                total = matches if isinstance(matches, int) and matches >= 0 else -1
                if total >= 0:
                    progress.current().expect(total)  # the bar of the operation reading these pages
            seen += len(results)
            if results:
                yield results
            done = len(results) < page_size if total < 0 else seen >= total
            if done or not results:
                break
            skip += len(results)
        if total >= 0 and seen != total:
            raise ServiceUnavailable(f"opencga gave {seen} results where it counted {total}",
                                     where=self.url(name), hint="the data changed while it was read; run again")


def first_response(envelope: dict, url: str) -> dict:
    responses = envelope.get("responses") or []
    if not responses or not isinstance(responses[0], dict):
        raise unexpected_shape("opencga", "a result", envelope, url.split("?")[0])
    return responses[0]


def page_results(response: dict, url: str) -> list[dict]:
    """A response's results, each a record (a dict), or UnexpectedAnswer."""
    results = response.get("results") or []
    where = url.split("?")[0]
    if not isinstance(results, list):
        raise unexpected_shape("opencga", "a page of results", results, where)
    for record in results:
        if not isinstance(record, dict):
            raise unexpected_shape("opencga", "a record", record, where)
    return results


def first_result(envelope: dict, url: str):
    results = first_response(envelope, url).get("results") or []
    if not results:
        raise unexpected_shape("opencga", "a result", envelope.get("responses"), url.split("?")[0])
    return results[0]


def all_results(envelope: dict, url: str) -> list:
    return [item for response in envelope.get("responses") or [] if isinstance(response, dict)
            for item in response.get("results") or []]
