"""Which error a service's refusal is: one table for every service.

A status the session did not retry away reaches ``ErrorMap.check``, which raises the
error it means, carrying service, status, URL and the service's own message (see
``gensvc.errors.GensvcError``). The shared rows, read last:

=========  ===================  ==========================================
status     error                what it says
=========  ===================  ==========================================
401, 403   AuthError (exit 3)   "<service> refused the credentials (...)"
429, 5xx   ServiceUnavailable   "<service> answered HTTP <n>: <message>"
other 4xx  RequestRejected (2)  "<service> answered HTTP <n>: <message>"
=========  ===================  ==========================================

A service gives only what is its own: where its answers put their words (``message``),
what to do about credentials (``auth_hint``), and rows read before the shared ones
(``rules``), e.g. Bravo's ``400 {"error": "not authorized"}`` is an AuthError, and
OpenCRAVAT's ``500 {"status": "error"}`` is a refusal, not an outage. A 5xx that a
service's row makes anything but ServiceUnavailable is final: ``is_final`` is the rule
``gensvc.core.http.build_session`` takes, so the session does not retry it. A row marked
``maintenance`` names an answer saying the service is down for a while (CAVATICA's 503
``"code": 0``): ``maintenance`` is the rule the session waits such answers out by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gensvc.core.answers import body_summary
from gensvc.errors import AuthError, GensvcError, RequestRejected, ServiceUnavailable

ANSWERED = "{service} answered HTTP {status}: {message}"


@dataclass(frozen=True)
class Rule:
    """One row: an answer with ``status`` (None: any status) whose service message
    contains ``says`` (None: whatever it says, or none; ``""``: any message of the
    service's own) raises ``error``, saying ``what`` (a template of service, status,
    message), with ``hint`` (None: the auth hint for AuthError, else none).
    ``maintenance``: the answer says the service is down for a while, not a blip."""

    status: int | None
    error: type[GensvcError]
    says: str | None = None
    what: str = ANSWERED
    hint: str | None = None
    maintenance: bool = False

    def matches(self, status: int, message: str | None) -> bool:
        if self.status is not None and self.status != status:
            return False
        return self.says is None or (message is not None and self.says in message)


SHARED_RULES = (
    Rule(401, AuthError, what="{service} refused the credentials (HTTP {status}: {message})"),
    Rule(403, AuthError, what="{service} refused the credentials (HTTP {status}: {message})"),
    Rule(429, ServiceUnavailable, hint="try again later"),
)


def json_field(name: str) -> Callable[[object], str | None]:
    """The service's message as the ``name`` field of a JSON object, or a JSON string body."""

    def message(response) -> str | None:
        try:
            body = response.json()
        except ValueError:
            return None
        if isinstance(body, dict):
            value = body.get(name)
            return None if value is None else str(value)
        return body if isinstance(body, str) else None

    return message


class ErrorMap:
    """The errors of one service's refused answers.

    ``service``: its name in messages. ``message(response)``: the service's own words
    in an answer, or None (the body's summary is quoted then). ``auth_hint``: what to do
    when credentials are refused. ``rules``: the service's own rows, read in order
    before ``SHARED_RULES``; past every row, a 5xx is ServiceUnavailable and any other
    refusal RequestRejected.
    """

    def __init__(self, service: str, *, message: Callable[[object], str | None], auth_hint: str,
                 rules: tuple[Rule, ...] = ()):
        self.service = service
        self.message = message
        self.auth_hint = auth_hint
        self.rules = tuple(rules) + SHARED_RULES

    def check(self, response) -> None:
        """Raise the error ``response`` means, unless it is a success (below 400)."""
        error = self.error_for(response)
        if error is not None:
            raise error

    def _rule_for(self, status: int, own: str | None) -> Rule | None:
        return next((r for r in self.rules if r.matches(status, own)), None)

    def error_for(self, response) -> GensvcError | None:
        status = response.status_code
        if status < 400:
            return None
        own = self.message(response)
        rule = self._rule_for(status, own)
        if rule is None:
            rule = Rule(status, ServiceUnavailable, hint="try again later") if status >= 500 else Rule(status, RequestRejected)
        shown = own if own is not None else body_summary(response)
        hint = rule.hint if rule.hint is not None or rule.error is not AuthError else self.auth_hint
        return rule.error(rule.what.format(service=self.service, status=status, message=shown), hint=hint,
                          service=self.service, status=status, url=response.url.split("?")[0], message=own)

    def maintenance(self, response) -> str | None:
        """The service's words when ``response`` says it is down for maintenance (a row so
        marked), else None."""
        if response.status_code < 400:
            return None
        own = self.message(response)
        rule = self._rule_for(response.status_code, own)
        return (own or "") if rule is not None and rule.maintenance else None

    def is_final(self, response) -> bool:
        """A 5xx that is the service's answer, not an outage: not to be retried."""
        if response.status_code < 500:
            return False
        return not isinstance(self.error_for(response), ServiceUnavailable)
