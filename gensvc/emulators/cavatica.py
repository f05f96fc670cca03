"""Emulator of the CAVATICA (Seven Bridges Platform) API v2.

Service URL: `http://HOST:PORT/v2` (BASE_PATH). Presigned storage URLs (upload parts,
downloads) are served by the same server under `/storage/`, outside the API: no auth
header, an expiring HMAC signature in the query instead, S3-style XML errors. In-memory
records, file bytes in a temporary directory.

Every API request goes through, in order:
1. the `maintenance` fault, if one fires: 503 with the platform's maintenance body
   (`"code": 0`), JSON;
2. authentication: `X-SBG-Auth-Token: <token>` (or `Authorization: Bearer <token>`), the
   token one of `EmulatorConfig.tokens`, by default `DEFAULT_TOKENS`; all tokens belong to
   the user `gensvc-demo`. `GET /v2/` needs none. Otherwise 401, code 90001;
3. the rate limit: 1000 requests per 5 minutes (× time scale) per user, a fixed window from
   the first request; `GET /rate_limit` is not counted. Every API answer carries
   `X-RateLimit-Limit`, `-Remaining` and `-Reset` (epoch seconds, an integer) and
   `X-Request-Id`; past the limit, 429 with code 1000 and no Retry-After.
   `EmulatorConfig.extra["rate_limit"]` = (requests, seconds) or "requests/seconds" changes it.

Errors are always the platform's JSON, `{"status", "code", "message", "more_info"}`, with
its status codes (3002 project not found, 5002 file, 6002 app, 7002 task, 8xxx uploads,
9xxxx general). Datetimes are `YYYY-MM-DDTHH:MM:SSZ`; task ids are UUIDs; projects have
`type` "v2"; every `href` is absolute, on the host the client used. Lists take `offset`
and `limit` (1..100, default 50), answer `{"href", "items", "links"}` with `rel` next/prev
links and `X-Total-Matching-Query`; items are short unless `fields=_all` (or a list).

Endpoints: `GET /`, `/user`, `/users/{name}`, `/rate_limit`; `GET /projects[/]`,
`/projects/{owner}`, `/projects/{owner}/{slug}`; `GET /apps`, `/apps/{id}[/{rev}][/raw]`;
files, folders and uploads (see `cavatica_files`); tasks (see `cavatica_tasks`).

Seeded state: the user `gensvc-demo`, projects `gensvc-demo/demo-project` (empty) and
`gensvc-demo/apps` (where the apps of `cavatica_apps` live).

Timing (`EmulatorConfig.extra`, seconds, all × time scale): `queued_seconds` (10),
`running_seconds` (50), `abort_seconds` (2). `min_part_size` (5 MiB, not scaled): the
smallest part an upload may be cut in but its last (the init answer raises a smaller
`part_size` to it).

Service-specific faults: `maintenance` (any API request: the 503 above); `task_fail`
(taken when a task is run: the run fails at its end, with execution details; `"message"`);
`ignore_range` (a storage download: 200 with the whole file whatever the Range);
`short_download` (a storage download: the file's size minus one byte, consistently).
"""

from __future__ import annotations

import secrets
import uuid

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from . import cavatica_apps
from .cavatica_files import files_api, storage
from .cavatica_store import RATE_LIMIT, CavaticaStore, RateWindow, StoreError, User
from .cavatica_tasks import tasks_api
from .cavatica_wire import (
    BASE_PATH,
    MAINTENANCE,
    RATE_LIMITED,
    STORAGE_PATH,
    api_url,
    error_response,
    general_error,
    json_response,
    page_response,
    project_json,
    resource_response,
    storage_error,
    store_error_response,
    user_json,
)
from .framework import ENVIRON_FAULTS, EmulatorConfig

DEFAULT_TOKENS = ["cavatica-demo-token"]
DEMO_USER = User(username="gensvc-demo", email="demo@example.org", first_name="Demo",
                 last_name="User")
FAULT_KINDS = frozenset({"maintenance", "task_fail", "ignore_range", "short_download"})
TIMING = {"queued_seconds": 10.0, "running_seconds": 50.0, "abort_seconds": 2.0}

api = Blueprint("cavatica", __name__)


def store() -> CavaticaStore:
    return current_app.extensions["cavatica"]


# Hooks, in the order a request meets them.
def _token() -> str | None:
    token = request.headers.get("X-SBG-Auth-Token")
    if token:
        return token
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def guard_api_request() -> Response | None:
    if not request.path.startswith(BASE_PATH):
        return None
    faults = request.environ.get(ENVIRON_FAULTS)
    if faults is not None and faults.take("maintenance", request.method, request.path):
        return error_response(*MAINTENANCE)
    state = store()
    username = state.tokens.get(_token() or "")
    g.rate_key = username or f"anonymous:{request.remote_addr}"
    counted = request.path.rstrip("/") != BASE_PATH + "/rate_limit"
    allowed, g.rate_remaining, g.rate_reset = state.limiter.hit(g.rate_key, count=counted)
    if username is None and request.path.rstrip("/") != BASE_PATH:
        return error_response(401, 90001, "Unauthorized.")
    g.username = username
    if counted and not allowed:  # reading the limit is free, even when it is spent
        return error_response(*RATE_LIMITED)
    return None


def add_platform_headers(response: Response) -> Response:
    if request.path.startswith(BASE_PATH):
        state = store()
        if "rate_reset" not in g:  # answered before the guard ran (e.g. a routing error)
            _, g.rate_remaining, g.rate_reset = state.limiter.hit(
                f"anonymous:{request.remote_addr}", count=False)
        response.headers["X-RateLimit-Limit"] = str(state.limiter.limit)
        response.headers["X-RateLimit-Remaining"] = str(max(0, g.rate_remaining))
        response.headers["X-RateLimit-Reset"] = str(int(-(-g.rate_reset // 1)))  # rounded up
        response.headers["X-Request-Id"] = uuid.uuid4().hex
    return response


def handle_store_error(error: StoreError) -> Response:
    if request.path.startswith(STORAGE_PATH):
        return storage_error(error.status, "InvalidRequest", error.message)
    return store_error_response(error)


def handle_http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if request.path.startswith(STORAGE_PATH):
        return storage_error(status, "NoSuchKey" if status == 404 else "InvalidRequest",
                             error.name)
    return store_error_response(general_error(status if status in (400, 401, 403, 404, 405, 409, 415)
                                              else 500))


def handle_unexpected(error: Exception) -> Response:
    current_app.logger.exception("cavatica emulator error")
    return store_error_response(general_error(500))


# General endpoints.
@api.route("/", methods=["GET"])
def endpoints():
    paths = {"rate_limit_url": "/rate_limit", "user_url": "/user", "users_url": "/users/{username}",
             "billing_url": "/billing", "projects_url": "/projects", "files_url": "/files/{id}",
             "tasks_url": "/tasks", "apps_url": "/apps", "action_url": "/action",
             "upload_url": "/upload/multipart"}
    return json_response({key: api_url(path) for key, path in paths.items()})


@api.route("/user", methods=["GET"], strict_slashes=False)
def current_user():
    return resource_response(user_json(store().users[g.username]), "user")


@api.route("/users/<username>", methods=["GET"])
def one_user(username: str):
    user = store().users.get(username)
    if user is None:
        raise StoreError(404, 2002, "Requested user does not exist.")
    return resource_response(user_json(user), "user")


@api.route("/rate_limit", methods=["GET"], strict_slashes=False)
def rate_limit():
    limiter = store().limiter
    _, remaining, reset = limiter.hit(g.rate_key, count=False)
    return json_response({"rate": {"limit": limiter.limit, "remaining": remaining,
                                   "reset": int(-(-reset // 1))},
                          "instance_limit": {"limit": -1, "remaining": 9223372036854775807}})


# Projects.
def _filtered_projects(owner: str | None) -> list:
    name = request.args.get("name")
    category = request.args.get("category")
    tags = set(request.args.getlist("tags"))
    with store().lock:
        projects = list(store().projects.values())
    return [project for project in projects
            if (owner is None or project.owner == owner)
            and (name is None or name.lower() in project.name.lower())
            and (category is None or project.category == category.upper())
            and (not tags or tags & set(project.tags))]


@api.route("/projects", methods=["GET"], strict_slashes=False)
def list_projects():
    return page_response(_filtered_projects(None), "project", project_json)


@api.route("/projects/<owner>", methods=["GET"], strict_slashes=False)
def list_owner_projects(owner: str):
    if owner not in store().users:
        raise StoreError(404, 2002, "Requested user does not exist.")
    return page_response(_filtered_projects(owner), "project", project_json)


@api.route("/projects/<owner>/<slug>", methods=["GET"], strict_slashes=False)
def one_project(owner: str, slug: str):
    with store().lock:
        project = store().project(f"{owner}/{slug}")
    return resource_response(project_json(project), "project")


# Apps.
def app_json(app: cavatica_apps.App) -> dict:
    return {"href": api_url(f"/apps/{app.id}/{app.revision}"), "id": f"{app.id}/{app.revision}",
            "project": app.project, "name": app.name, "revision": app.revision, "raw": app.raw()}


@api.route("/apps", methods=["GET"], strict_slashes=False)
def list_apps():
    visibility = request.args.get("visibility")
    if visibility is not None and visibility.upper() not in ("PUBLIC", "PRIVATE"):
        raise StoreError(400, 6012, "Invalid visibility query parameter. Allowed values: [PUBLIC, PRIVATE].")
    project = request.args.get("project")
    terms = [term.lower() for term in request.args.getlist("q")]
    ids = set(request.args.getlist("id"))
    apps = [app for app in cavatica_apps.latest_apps()
            if (project is None or app.project == project)
            and all(term in f"{app.id} {app.name}".lower() for term in terms)
            and (not ids or app.id in ids or f"{app.id}/{app.revision}" in ids)]
    return page_response(apps, "app", app_json)


def _app(owner: str, project: str, name: str, revision: int | None) -> cavatica_apps.App:
    app_id = f"{owner}/{project}/{name}" + ("" if revision is None else f"/{revision}")
    return cavatica_apps.find_app(app_id)


@api.route("/apps/<owner>/<project>/<name>", methods=["GET"], strict_slashes=False)
@api.route("/apps/<owner>/<project>/<name>/<int:revision>", methods=["GET"], strict_slashes=False)
def one_app(owner: str, project: str, name: str, revision: int | None = None):
    return resource_response(app_json(_app(owner, project, name, revision)), "app")


@api.route("/apps/<owner>/<project>/<name>/raw", methods=["GET"])
@api.route("/apps/<owner>/<project>/<name>/<int:revision>/raw", methods=["GET"])
def app_raw(owner: str, project: str, name: str, revision: int | None = None):
    return json_response(_app(owner, project, name, revision).raw())


def create_app(config: EmulatorConfig | None = None) -> Flask:
    config = config or EmulatorConfig()
    limit, window = config.rate_limit("cavatica", RATE_LIMIT)
    state = CavaticaStore(min_part_size=int(config.extra.get("min_part_size", 5 * 1024 * 1024)))
    state.limiter = RateWindow(limit, config.scaled(window))
    state.url_secret = secrets.token_bytes(32)
    state.timing = {key: config.scaled(float(config.extra.get(key, default)))
                    for key, default in TIMING.items()}
    state.add_user(DEMO_USER, config.tokens if config.tokens is not None else DEFAULT_TOKENS)
    state.add_project(DEMO_USER.username, "demo-project", "Demo project",
                      description="Where the demo's files and tasks go.")
    state.add_project(DEMO_USER.username, "apps", "Apps", description="The emulator's apps.")

    app = Flask("gensvc.emulators.cavatica")
    app.extensions["cavatica"] = state
    app.reset_state = state.limiter.reset  # called by DELETE /_emulator/stats
    app.url_map.strict_slashes = False
    app.before_request(guard_api_request)
    app.after_request(add_platform_headers)
    app.register_error_handler(StoreError, handle_store_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
    app.register_blueprint(api, url_prefix=BASE_PATH)
    app.register_blueprint(files_api, url_prefix=BASE_PATH)
    app.register_blueprint(tasks_api, url_prefix=BASE_PATH)
    app.register_blueprint(storage, url_prefix=STORAGE_PATH)
    return app


__all__ = ["BASE_PATH", "DEFAULT_TOKENS", "FAULT_KINDS", "create_app"]
