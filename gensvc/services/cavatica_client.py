"""The CAVATICA (Seven Bridges Platform API v2) client: endpoints, auth, errors, pages.

Every API request carries ``X-SBG-Auth-Token`` (redacted everywhere). Every answer's
``X-RateLimit-Limit/-Remaining/-Reset`` feeds the shared limiter, so parallel processes
slow down before the platform's budget is spent. A refusal ends in one line with the
platform's own ``message`` and ``code``. Lists are read whole: ``limit`` at most 100,
``links`` rel=next followed (only on the API's own host), and the number received checked
against ``X-Total-Matching-Query``.

Presigned storage URLs (upload parts, downloads) get no platform header and go through
a session of their own: they do not count against the API's budget.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

import requests

from gensvc.core.answers import body_summary, json_body, unexpected_shape
from gensvc.errors import AuthError, RequestRejected, ServiceUnavailable, UnexpectedAnswer

log = logging.getLogger("gensvc.cavatica")

SERVICE = "cavatica"
PAGE_LIMIT = 100  # the platform's largest page
AUTH_HINT = "set GENSVC_CAVATICA_TOKEN (or SB_AUTH_TOKEN, or the credentials file) to a valid developer token"


class SbgToken(requests.auth.AuthBase):
    """``X-SBG-Auth-Token: <token>``; its repr never shows the token."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, request):
        request.headers["X-SBG-Auth-Token"] = self.token
        return request

    def __repr__(self) -> str:
        return "SbgToken(***)"


def platform_error(response) -> tuple[str, int | None]:
    """The platform's own words in an error answer: (message, code)."""
    try:
        body = response.json()
    except ValueError:
        return body_summary(response), None
    if not isinstance(body, dict):
        return body_summary(response), None
    code = body.get("code")
    return str(body.get("message") or body_summary(response)), code if isinstance(code, int) else None


def check_answer(response) -> None:
    """Raise the error a refused answer means; the platform's message and code in it."""
    status = response.status_code
    if status < 400:
        return
    message, code = platform_error(response)
    said = f"HTTP {status}" + (f", code {code}" if code is not None else "")
    where = response.url.split("?")[0]
    if status in (401, 403):
        raise AuthError(f"cavatica refused the credentials ({said}: {message})", where=where, hint=AUTH_HINT)
    if status == 429 or status >= 500:
        hint = "the platform is under maintenance; try again later" if code == 0 else "try again later"
        raise ServiceUnavailable(f"cavatica answered {said}: {message}", where=where, hint=hint)
    error = RequestRejected(f"cavatica answered {said}: {message}", where=where)
    error.status, error.code = status, code
    raise error


class CavaticaClient:
    """One operation's view of the platform: ``call`` a named endpoint, ``all`` of a list."""

    ENDPOINTS = {
        "projects": "projects/",
        "project": "projects/{project}",
        "apps": "apps",
        "app": "apps/{app}",
        "files": "files",
        "file": "files/{file_id}",
        "download_info": "files/{file_id}/download_info",
        "upload_init": "upload/multipart",
        "upload": "upload/multipart/{upload_id}",
        "upload_part_url": "upload/multipart/{upload_id}/part/{part}",
        "upload_report": "upload/multipart/{upload_id}/part/",
        "upload_complete": "upload/multipart/{upload_id}/complete",
        "tasks": "tasks",
        "task": "tasks/{task_id}",
        "task_run": "tasks/{task_id}/actions/run",
        "task_abort": "tasks/{task_id}/actions/abort",
        "execution_details": "tasks/{task_id}/execution_details",
    }
    # ids that are paths themselves (owner/project, owner/project/app/revision)
    PATH_IDS = frozenset({"project", "app"})

    def __init__(self, step, base_url: str | None = None):
        token = step.settings.credentials.get("token")
        if not token:
            raise AuthError("cavatica needs a developer token", where=base_url or step.settings.url, hint=AUTH_HINT)
        self.session = step.session
        self.base = (base_url or step.settings.url).rstrip("/") + "/"
        self.auth = SbgToken(token)
        self.limiter = getattr(step.session, "limiter", None)

    def url(self, name: str, **ids) -> str:
        quoted = {k: quote(str(v), safe="/" if k in self.PATH_IDS else "") for k, v in ids.items()}
        for key, value in quoted.items():
            if key in self.PATH_IDS and any(part in ("", ".", "..") for part in value.split("/")):
                raise RequestRejected(f"cavatica {key} {ids[key]!r} is not an id like owner/name")
        return self.base + self.ENDPOINTS[name].format(**quoted)

    def _feed_limiter(self, response, *args, **kwargs):
        if self.limiter is not None and hasattr(self.limiter, "observe"):
            self.limiter.observe(response.headers)
        return response

    def send(self, method: str, url: str, **kwargs):
        if not url.startswith(self.base):  # the token goes to the API's own host only
            raise UnexpectedAnswer(f"cavatica pointed at {url.split('?')[0]}, outside its API {self.base}",
                                   where=self.base, hint="check GENSVC_CAVATICA_URL")
        kwargs.setdefault("hooks", {"response": self._feed_limiter})
        response = self.session.request(method, url, auth=self.auth, **kwargs)
        check_answer(response)
        return response

    def call(self, method: str, name: str, *, params=None, json=None, **ids):
        response = self.send(method, self.url(name, **ids), params=params, json=json)
        if response.status_code == 204:
            return None
        return json_body(response, SERVICE)

    def resource(self, method: str, name: str, what: str, **kwargs) -> dict:
        answer = self.call(method, name, **kwargs)
        if not isinstance(answer, dict):
            raise unexpected_shape(SERVICE, what, answer, self.url(name, **{k: v for k, v in kwargs.items()
                                                                         if k not in ("params", "json")}))
        return answer

    def all(self, name: str, params: dict | None = None, *, limit: int = PAGE_LIMIT, offset: int = 0) -> list[dict]:
        """Every item of a list, page by page, checked against X-Total-Matching-Query."""
        query = {**(params or {}), "offset": offset, "limit": min(max(1, limit), PAGE_LIMIT)}
        url, items, total = self.url(name), [], None
        while url:
            response = self.send("GET", url, params=query)
            page = json_body(response, SERVICE)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise unexpected_shape(SERVICE, "a page of items", page, url)
            items.extend(page["items"])
            total = _total(response, total)
            url, query = _next_link(page, url), None  # a next link carries the whole query
        expected = (total or 0) - offset
        if total is not None and len(items) != max(0, expected):
            raise UnexpectedAnswer(
                f"cavatica said {total} items match, but its pages held {len(items) + offset}",
                where=self.url(name), hint="the list changed while it was read, or a page was lost; run it again")
        return items


def _total(response, before: int | None) -> int | None:
    text = response.headers.get("X-Total-Matching-Query")
    if text is None:
        return before
    try:
        return int(text)
    except ValueError:
        raise UnexpectedAnswer(f"cavatica answered X-Total-Matching-Query {text[:40]!r}, not a number",
                               where=response.url.split("?")[0], hint="check GENSVC_CAVATICA_URL") from None


def _next_link(page: dict, url: str) -> str | None:
    for link in page.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "next" and isinstance(link.get("href"), str):
            here, there = urlsplit(url), urlsplit(link["href"])
            if (here.scheme, here.netloc) != (there.scheme, there.netloc):
                raise UnexpectedAnswer(f"cavatica's next page is on another host ({there.netloc})", where=url,
                                       hint="check GENSVC_CAVATICA_URL")
            return link["href"]
    return None


def storage_session(settings):
    """A session for presigned storage URLs: the same timeouts and retries, no platform
    header, and outside the API's rate limit (storage requests do not count against it)."""
    from gensvc.core.http import ServiceSession

    return ServiceSession(
        SERVICE, limiter=None, connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        max_attempts=settings.max_attempts, deadline=settings.deadline, backoff=settings.backoff,
        backoff_max=settings.backoff_max,
    )


def destination(project: str | None, parent: str | None) -> dict:
    """Where files go or are looked for: a project (owner/slug) or a folder id, one of them."""
    from gensvc.errors import UsageError

    if bool(project) == bool(parent):
        raise UsageError("give exactly one of project (owner/slug) or parent (a folder id)")
    return {"project": project} if project else {"parent": parent}
