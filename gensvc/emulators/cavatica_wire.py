"""What the CAVATICA emulator puts on the wire: the platform's error body, its JSON for
each record (absolute hrefs), `fields` selection, pages with `links` and
X-Total-Matching-Query, query-string parsing, and presigned storage URLs.

Everything here reads the current Flask request; nothing changes the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Callable, Sequence
from urllib.parse import urlencode

from flask import Response, current_app, request

from .cavatica_store import FileRecord, Project, StoreError, User, platform_time
from .framework import int_query_arg

BASE_PATH = "/v2"
STORAGE_PATH = "/storage"
MORE_INFO = "https://docs.cavatica.org/docs/api-status-codes"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100

# The platform's general codes (its status-code table, 9xxxx "general validation errors").
GENERAL_CODES = {
    400: (90000, "Bad request."),
    401: (90001, "Unauthorized."),
    403: (90002, "Forbidden."),
    404: (90003, "Not found."),
    405: (90006, "Method not allowed."),
    409: (90007, "Conflict."),
    415: (90008, "Unsupported Media Type."),
    500: (90004, "Unexpected error happened."),
    503: (90005, "Service unavailable."),
}
MAINTENANCE = (503, 0, "The Platform is currently under maintenance.")
RATE_LIMITED = (429, 1000, "Rate limit exceeded! Check response headers.")

# The fields a list shows when `fields` is not given (the platform's short items).
LIST_FIELDS = {
    "project": ("href", "id", "name", "category"),
    "file": ("href", "id", "name", "type", "project", "parent"),
    "app": ("href", "id", "project", "name", "revision"),
    "task": ("href", "id", "name", "status", "project", "app"),
}


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> Response:
    # Compact JSON with an explicit Content-Length (never chunked), as the platform answers.
    return Response(json.dumps(data), status=status, headers=headers,
                    mimetype="application/json")


def error_response(status: int, code: int, message: str) -> Response:
    return json_response({"status": status, "code": code, "message": message,
                          "more_info": MORE_INFO}, status)


def store_error_response(error: StoreError) -> Response:
    return error_response(error.status, error.code, error.message)


def general_error(status: int, message: str | None = None) -> StoreError:
    code, default = GENERAL_CODES.get(status, GENERAL_CODES[400])
    return StoreError(status, code, message or default)


def api_url(path: str) -> str:
    """An absolute URL under the base path, on the host the client used."""
    return request.host_url.rstrip("/") + BASE_PATH + path


def json_body() -> Any:
    """The request's JSON body; `null` and an empty body are None (the official client
    sends `null` on GET and bodiless POSTs)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise StoreError(400, 90009,
                         "An error occurred during the decoding of the request content.") from None


def json_object_body() -> dict:
    body = json_body()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise general_error(400, "Bad request: the body must be a JSON object.")
    return body


def bulk_get_response(ids_key: str, lookup: Callable[[str], Any], to_json: Callable[[Any], dict],
                      lock) -> Response:
    """``POST /bulk/<kind>/get``: one item per id asked for, its resource or its error, in order."""
    ids = json_object_body().get(ids_key)
    if not isinstance(ids, list):
        raise general_error(400, f"Bad request: {ids_key} must be a list.")
    items = []
    with lock:
        for item_id in ids:
            try:
                items.append({"resource": to_json(lookup(str(item_id)))})
            except StoreError as error:
                items.append({"error": {"status": error.status, "code": error.code,
                                        "message": error.message}})
    return json_response({"items": items})


def query_flag(name: str, default: bool = False) -> bool:
    """A boolean query parameter; the official client writes True/False."""
    value = request.args.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise general_error(400, f"Bad request: {name} must be true or false, got {value!r}.")


def _int_arg(name: str, default: int) -> int:
    return int_query_arg(request.args, name, default, lambda value: general_error(
        400, f"Bad request: {name} must be an integer, got {value!r}."))


def page_bounds() -> tuple[int, int]:
    offset = _int_arg("offset", 0)
    limit = _int_arg("limit", DEFAULT_LIMIT)
    if offset < 0:
        raise general_error(400, "Bad request: offset must not be negative.")
    if not 1 <= limit <= MAX_LIMIT:
        raise general_error(400, f"Bad request: limit must be between 1 and {MAX_LIMIT}.")
    return offset, limit


def select_fields(item: dict, kind: str, listing: bool) -> dict:
    """`fields=_all`, `fields=a,b`, or the default: whole for one resource, short in lists."""
    wanted = request.args.get("fields")
    if wanted == "_all" or (wanted is None and not listing):
        return item
    names = LIST_FIELDS[kind] if wanted is None else [name.strip() for name in wanted.split(",")]
    return {name: item[name] for name in names if name in item}


def _page_link(offset: int, limit: int, rel: str) -> dict:
    args = [(key, value) for key, value in request.args.items(multi=True)
            if key not in ("offset", "limit")]
    args += [("offset", str(offset)), ("limit", str(limit))]
    return {"href": f"{request.base_url}?{urlencode(args)}", "rel": rel, "method": "GET"}


def page_response(items: Sequence[Any], kind: str, render: Callable[[Any], dict]) -> Response:
    """One page of `items`: the page's own href (the whole query, so re-getting it gives
    this page again), links rel=next/prev, and X-Total-Matching-Query."""
    offset, limit = page_bounds()
    chosen = items[offset:offset + limit]
    links = []
    if offset + limit < len(items):
        links.append(_page_link(offset + limit, limit, "next"))
    if offset > 0:
        links.append(_page_link(max(0, offset - limit), limit, "prev"))
    body = {"href": request.url, "items": [select_fields(render(item), kind, True) for item in chosen],
            "links": links}
    return json_response(body, headers={"X-Total-Matching-Query": str(len(items))})


def resource_response(item: dict, kind: str, status: int = 200) -> Response:
    return json_response(select_fields(item, kind, False), status)


# Records as JSON.
def user_json(user: User) -> dict:
    return {"href": api_url(f"/users/{user.username}"), "username": user.username,
            "email": user.email, "first_name": user.first_name, "last_name": user.last_name,
            "affiliation": "gensvc emulator", "phone": "", "address": "", "state": "",
            "country": "", "zip_code": "", "city": "", "role": "USER"}


def project_json(project: Project) -> dict:
    return {"href": api_url(f"/projects/{project.id}"), "id": project.id,
            "name": project.name, "billing_group": project.billing_group,
            "description": project.description, "type": "v2", "tags": list(project.tags),
            "settings": {"locked": False, "use_interruptible_instances": True,
                         "use_memoization": False, "allow_network_access": False,
                         "use_elastic_disk": False, "intermediate_files": {"retention": "LIMITED", "duration": 24}},
            "root_folder": project.root_folder, "created_by": project.owner,
            "created_on": platform_time(project.created_on),
            "modified_on": platform_time(project.modified_on), "category": project.category,
            "permissions": {"write": True, "read": True, "copy": True, "execute": True,
                            "admin": True}}


def file_json(record: FileRecord) -> dict:
    out = {"href": api_url(f"/files/{record.id}"), "id": record.id, "name": record.name,
           "type": record.type, "project": record.project, "parent": record.parent,
           "created_on": platform_time(record.created_on),
           "modified_on": platform_time(record.modified_on)}
    if record.type == "file":
        out.update(size=record.size,
                   origin={"task": record.origin_task} if record.origin_task else {},
                   storage={"type": "PLATFORM", "hosted_on_locations": ["aws:us-east-1"]},
                   metadata=dict(record.metadata), tags=list(record.tags))
    return out


# Presigned storage URLs: the emulator is also the storage, on its own path outside /v2.
URL_LIFETIME = 3600.0  # seconds; a presigned URL's life is not time-scaled


def _signature(method: str, path: str, expires: int) -> str:
    secret: bytes = current_app.extensions["cavatica"].url_secret
    return hmac.new(secret, f"{method}\n{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def presigned_url(method: str, path: str) -> tuple[str, float]:
    """An absolute storage URL for `path` (under STORAGE_PATH) and when it expires."""
    expires = int(time.time() + URL_LIFETIME)
    query = urlencode({"X-Expires": expires, "X-Signature": _signature(method, path, expires)})
    return f"{request.host_url.rstrip('/')}{STORAGE_PATH}{path}?{query}", expires


def signature_problem(method: str, path: str) -> str | None:
    """Why the request's presigned query does not allow it, or None."""
    try:
        expires = int(request.args.get("X-Expires", ""))
    except ValueError:
        return "missing or malformed X-Expires"
    given = request.args.get("X-Signature", "")
    if not hmac.compare_digest(given, _signature(method, path, expires)):
        return "the signature does not match"
    if time.time() > expires:
        return "the URL has expired"
    return None


def storage_error(status: int, code: str, message: str) -> Response:
    """Errors from the storage side look like S3's: XML, not the platform's JSON."""
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>\n")
    return Response(body, status=status, mimetype="application/xml")
