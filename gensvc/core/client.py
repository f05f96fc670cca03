"""The shape of every service client.

A client is a small class on ``ServiceClient``::

    ERRORS = ErrorMap("demo", message=json_field("error"), auth_hint="set GENSVC_DEMO_TOKEN",
                      rules=(Rule(400, AuthError, says="token expired"),))

    class DemoClient(ServiceClient):
        SERVICE = "demo"
        ENDPOINTS = {                   # every path, once, by name; {ids} filled in by url()
            "jobs": "jobs",
            "job": "jobs/{job_id}",
        }
        ERRORS = ERRORS

        def __init__(self, step):
            super().__init__(step.session, step.settings.url,
                             auth=BearerToken(step.settings.credentials.get("token")))

        def job(self, job_id: str) -> dict:
            return self.call("GET", "job", job_id=job_id)

and its module sets ``ERRORS`` at top level too, so the runner builds the session with
its ``is_final`` rule (``gensvc.core.http.build_session``).

- ``url(name, **ids)``: the endpoint's URL; ids are quoted, so an id cannot add a path.
- ``call(method, name, **ids_and_request_kwargs)``: one request; the answer's JSON,
  or the error the service's ``ERRORS`` map gives for a refusal (carrying service,
  status, URL and the service's message), or UnexpectedAnswer for a body that is not JSON.
- ``request(...)``: the same, returning the checked response (a body that is not JSON).
- ``send(method, url, ...)``: a URL of this service not built from a name (a next link).

The client never changes the shared session (no headers, no attributes): its ``auth``
(a ``requests.auth.AuthBase``, ``gensvc.core.auth``) goes with each request. Retries,
timeouts and the rate limit are the session's; what answers mean is the error map's.
"""

from __future__ import annotations

from string import Formatter
from urllib.parse import quote

from gensvc.core.answers import json_body
from gensvc.core.errormap import ErrorMap


class ServiceClient:
    """Base of the service clients; see the module's docstring for the shape.

    ``session``: the operation's ``ServiceSession``. ``base_url``: the service's API root
    (``url`` of an endpoint whose path is empty is this root as given). ``auth``: a
    requests auth object sent with every request, or None.
    """

    SERVICE: str = ""
    ENDPOINTS: dict[str, str] = {}
    ERRORS: ErrorMap

    def __init__(self, session, base_url: str, *, auth=None):
        self.session = session
        self.base = base_url
        self.auth = auth

    def url(self, name: str, **ids) -> str:
        path = self.ENDPOINTS[name].format(**{key: quote(str(value), safe="") for key, value in ids.items()})
        return f"{self.base.rstrip('/')}/{path}" if path else self.base

    def call(self, method: str, name: str, **kwargs):
        return self.answer(self.request(method, name, **kwargs))

    def request(self, method: str, name: str, **kwargs):
        fields = {field for _, field, _, _ in Formatter().parse(self.ENDPOINTS[name]) if field}
        ids = {field: kwargs.pop(field) for field in fields}
        return self.send(method, self.url(name, **ids), **kwargs)

    def send(self, method: str, url: str, **kwargs):
        kwargs.setdefault("auth", self.auth)
        response = self.session.request(method, url, **kwargs)
        self.ERRORS.check(response)
        return response

    def answer(self, response):
        """The answer's JSON (UnexpectedAnswer if it is not JSON)."""
        return json_body(response, self.SERVICE)
