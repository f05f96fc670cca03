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

from gensvc.core.answers import body_summary, json_body, unexpected_shape
from gensvc.core.auth import HeaderCredential
from gensvc.core.client import ServiceClient
from gensvc.core.errormap import ErrorMap, Rule
from gensvc.errors import AuthError, RequestRejected, ServiceUnavailable, UnexpectedAnswer

log = logging.getLogger("gensvc.cavatica")

SERVICE = "cavatica"
PAGE_LIMIT = 100  # the platform's largest page
AUTH_HINT = "set GENSVC_CAVATICA_TOKEN (or SB_AUTH_TOKEN, or the credentials file) to a valid developer token"


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


def platform_message(response) -> str | None:
    """``message (code N)`` of the platform's error body, or None when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or "message" not in body:
        return None
    code = body.get("code")
    return f"{body['message']} (code {code})" if isinstance(code, int) else str(body["message"])


ERRORS = ErrorMap(
    SERVICE, message=platform_message, auth_hint=AUTH_HINT,
    # code 0: the platform's maintenance answer, no word of how long it lasts; the session
    # waits it out in long steps within the deadline, then says so
    rules=(Rule(503, ServiceUnavailable, says="(code 0)", hint="the platform is under maintenance; try again later",
                maintenance=True),),
)


class CavaticaClient(ServiceClient):
    """One operation's view of the platform: ``call`` a named endpoint, ``all`` of a list."""

    SERVICE = SERVICE
    ERRORS = ERRORS
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
        super().__init__(step.session, (base_url or step.settings.url).rstrip("/") + "/",
                         auth=HeaderCredential("X-SBG-Auth-Token", token))
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
        return super().send(method, url, **kwargs)

    def call(self, method: str, name: str, **kwargs):
        response = self.request(method, name, **kwargs)
        return None if response.status_code == 204 else self.answer(response)

    def resource(self, method: str, name: str, what: str, **kwargs) -> dict:
        answer = self.call(method, name, **kwargs)
        if not isinstance(answer, dict):
            raise unexpected_shape(SERVICE, what, answer, self.url(name, **{k: v for k, v in kwargs.items()
                                                                         if k not in ("params", "json")}))
        return answer

    def all(self, name: str, params: dict | None = None, *, limit: int = PAGE_LIMIT, offset: int = 0) -> list[dict]:
        """Every item of a list, page by page, checked against X-Total-Matching-Query."""
        query = {**(params or {}), "offset": offset, "limit": min(max(1, limit), PAGE_LIMIT)}
        url, items, total, followed = self.url(name), [], None, set()
        while url:
            if url in followed:
                raise UnexpectedAnswer(f"cavatica paging does not end: page {len(followed)} links to a page already read",
                                       where=url.split("?")[0], hint="the platform's next links loop; try again later")
            followed.add(url)
            if total is not None and len(items) > total:
                raise UnexpectedAnswer(f"cavatica paging does not end: {len(items)} items read, {total} said to match",
                                       where=url.split("?")[0], hint="the platform's next links loop; try again later")
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
        backoff_max=settings.backoff_max, max_answer_bytes=settings.max_answer_bytes,
        max_download_bytes=settings.max_download_bytes,
    )


def destination(project: str | None, parent: str | None) -> dict:
    """Where files go or are looked for: a project (owner/slug) or a folder id, one of them."""
    from gensvc.errors import UsageError

    if bool(project) == bool(parent):
        raise UsageError("give exactly one of project (owner/slug) or parent (a folder id)")
    return {"project": project} if project else {"parent": parent}
