"""Reading a service's answer body: JSON where JSON belongs, or one clear line.

A 200 that is an HTML page (a proxy's maintenance page, a login portal, a base URL that
points at the website instead of the API) or JSON cut short must not reach code that
expects a dict: it ends the operation with UnexpectedAnswer (exit 5), naming what came.
"""

from __future__ import annotations

import html
import json
import re

from gensvc.errors import UnexpectedAnswer

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def is_html(response) -> bool:
    kind = response.headers.get("Content-Type", "").lower()
    return "html" in kind or response.text.lstrip()[:1] == "<"


def body_summary(response, limit: int = 200) -> str:
    """The body as one short line: an HTML page by its title (or its text), never its markup."""
    text = response.text
    if is_html(response):
        title = _TITLE.search(text)
        words = html.unescape(_TAG.sub(" ", title.group(1) if title else text))
        words = " ".join(words.split())[:limit]
        return f"an HTML page ({words!r})" if words else "an HTML page"
    return " ".join(text.split())[:limit]


def json_body(response, service: str):
    """The answer's JSON, or UnexpectedAnswer saying it is an HTML page or invalid JSON."""
    try:
        return response.json()
    except ValueError:
        pass
    what = body_summary(response, 80) if is_html(response) else f"invalid JSON ({body_summary(response, 60)!r})"
    raise UnexpectedAnswer(
        f"{service} answered {what}, not JSON",
        where=response.url.split("?")[0],
        hint=f"check GENSVC_{service.upper()}_URL (it must be the service's API) and that no proxy answers for it",
    )


def unexpected_shape(service: str, what: str, value, where: str) -> UnexpectedAnswer:
    """The error for JSON of the wrong shape, e.g. a list where a job's info belongs."""
    shown = json.dumps(value)[:80] if not isinstance(value, str) else repr(value[:80])
    return UnexpectedAnswer(f"{service} answered {shown} where {what} belongs", where=where,
                            hint=f"check GENSVC_{service.upper()}_URL (it must be the service's API)")
