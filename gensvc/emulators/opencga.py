"""Emulator of OpenCGA 5's REST API v2 (what pyopencga 5.0.0 calls; contracts.md section 4,
CLIENT-FACTS.md).

Base URL (the client's `rest.host`): `http://HOST:PORT/opencga`; the web services are under
`/opencga/webservices/rest/v2/`. `HEAD`/`GET /opencga` answers 302 to `/opencga/` (as Tomcat
does; pyopencga's start-up HEAD accepts it), which answers 200.

Every answer is the RestResponse envelope (`apiVersion`, `time`, `events`, `params`, `type`,
`responses[]` of OpenCGAResult `{time, events, numResults, results, resultType,
numTotalResults, numMatches, numInserted, numUpdated, numDeleted, numErrors, attributes,
federationNode}`) with `Content-Type: application/json` exactly. Errors are the same envelope
with one ERROR event `{type, code, id (exception class), name, message, description}` in the
top-level `events` and one empty result; the status follows the exception as OpenCGA's
does: 401 a bad or expired token or a failed login, 403 no token, 500 anything else the
catalog refuses (not found, already exists, a missing parameter), 400 an unreadable value
(a `limit` that is not a number), 404/405 no such endpoint. The exception: `files/upload`
without a file part answers **HTTP 200 `{"error": "No file or chunk found"}`**, as
FileWSServer does.

Projections: `include` / `exclude` (dotted field paths; `id` always comes); a variant query's
`summary=true` leaves out the samples' data.

Paging: `skip` and `limit` (default 10; above MAX_LIMIT 5000 silently cut to 5000, as
OpenCGA's managers do); `numMatches` is the total when `count=true`, else -1.

Auth: `users/login` with `{user, password[, organization]}` or `{refreshToken}` answers
`{token, refreshToken}` (JWT-shaped, see opencga_store). Other calls take
`Authorization: Bearer <token>` or `?sid=<token>`. `EmulatorConfig.tokens` lists the
accepted `user:password` pairs (default `demouser:demouser`). The catalog starts with one
organization `gensvc`, project `demo` and study `gensvc@demo:demo`.

Jobs: `operation/variant/index` answers the Job (PENDING); `jobs/{ids}/info`, `jobs/search`
(by `status`, `tags`, `toolId`, `input`, ...), `jobs/{id}/kill` (ABORTED) and
`jobs/{id}/log/tail|head` (`lines`, `type` stdout or stderr) follow it; see opencga_store.

`EmulatorConfig.extra`: `token_seconds` (access token lifetime, default 3600),
`refresh_seconds` (default 86400), `job_seconds` (an index job's duration, default 60), all
time-scaled; `max_upload_bytes` (default 1 GiB).

Service-specific faults (through the framework's injector):
- `error_200` on any path: HTTP 200 with `{"error": <"message" or "No file or chunk
  found">}` and no envelope, the quirk of OpenCGA's old error answers.
- `index_error` on `operation/variant/index`: the job is accepted and fails halfway through
  RUNNING with `"message"` (default: a storage error) as its description and in its log.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

from flask import Blueprint, Flask, Response, current_app, g, json, redirect, request
from werkzeug.exceptions import HTTPException

from . import opencga_variants as variants
from .framework import ENVIRON_FAULTS, EmulatorConfig, int_query_arg
from .opencga_store import (
    AUTHORIZATION_EXCEPTION,
    GIT_COMMIT,
    PARAMETER_EXCEPTION,
    VARIANT_QUERY_EXCEPTION,
    VERSION,
    OpencgaError,
    OpencgaState,
    TokenIssuer,
)

BASE_PATH = "/opencga/"
REST_PATH = "/opencga/webservices/rest/v2"
DEFAULT_TOKENS = ["demouser:demouser"]
DEFAULT_LIMIT = 10
MAX_LIMIT = 5000
TOKEN_SECONDS = 3600.0
REFRESH_SECONDS = 86400.0
JOB_SECONDS = 60.0
MAX_UPLOAD_BYTES = 1024 ** 3
NO_FILE_MESSAGE = "No file or chunk found"
INDEX_ERROR_MESSAGE = "Error loading variants: storage engine failure (injected fault)"
FAULT_KINDS = frozenset({"error_200", "index_error"})
FEDERATION_NODE = {"id": "gensvc-emulator", "uri": "", "commit": GIT_COMMIT, "version": VERSION}

api = Blueprint("opencga", __name__)


# --- the envelope ------------------------------------------------------------------------

def state() -> OpencgaState:
    return current_app.extensions["opencga"]


def _json(data: Any, status: int = 200) -> Response:
    # Exactly application/json: pyopencga refuses "; charset=utf-8".
    return Response(json.dumps(data), status=status, content_type="application/json")


def request_params() -> dict[str, str]:
    """The request's query parameters as OpenCGA echoes them (never the token)."""
    params = {key: value for key, value in request.args.items() if key != "sid"}
    params.update(request.view_args or {})
    return params


def result(results: list, result_type: str = "", num_matches: int | None = None) -> dict:
    """One OpenCGAResult."""
    matches = len(results) if num_matches is None else num_matches
    return {"time": 0, "events": [], "numResults": len(results), "results": results,
            "resultType": result_type, "numTotalResults": matches, "numMatches": matches,
            "numInserted": 0, "numUpdated": 0, "numDeleted": 0, "numErrors": 0,
            "attributes": {}, "federationNode": FEDERATION_NODE}


def envelope(responses: list[dict], query_type: str = "QUERY", events: list | None = None,
             status: int = 200) -> Response:
    started = g.get("started", time.monotonic())
    return _json({"apiVersion": "v2", "time": int((time.monotonic() - started) * 1000),
                  "events": events or [], "params": request_params(), "type": query_type,
                  "responses": responses}, status)


def error_envelope(error: OpencgaError) -> Response:
    event = {"type": "ERROR", "code": 0, "id": error.exception,
             "name": error.exception.rsplit(".", 1)[-1], "message": error.message,
             "description": error.message}  # pyopencga's print_results reads 'description'
    return envelope([result([])], events=[event], status=error.status)


def paged(items: list, result_type: str) -> Response:
    skip, limit = paging()
    total = len(items) if counted() else -1
    return envelope([result(projected(items[skip:skip + limit]), result_type, total)])


def _only(value: Any, paths: list[list[str]]) -> Any:
    if isinstance(value, list):
        return [_only(item, paths) for item in value]
    if not isinstance(value, dict) or any(not path for path in paths):
        return value
    kept = {}
    for key, item in value.items():
        below = [path[1:] for path in paths if path[0] == key]
        if below:
            kept[key] = _only(item, below)
    return kept


def _without(value: Any, paths: list[list[str]]) -> Any:
    if isinstance(value, list):
        return [_without(item, paths) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        below = [path[1:] for path in paths if path[0] == key]
        if any(not path for path in below):
            continue  # this key itself is excluded
        out[key] = _without(item, below) if below else item
    return out


def projected(records: list[dict], excluded: tuple[str, ...] = ()) -> list[dict]:
    """`include` / `exclude`: comma-separated dotted field paths (`id,annotation.id`)."""
    include = [p.split(".") for p in (request.args.get("include") or "").split(",") if p]
    exclude = [p.split(".") for p in [*(request.args.get("exclude") or "").split(","), *excluded] if p]
    if include:
        records = [_only(record, include + [["id"]]) for record in records]  # id always comes
    if exclude:
        records = [_without(record, exclude) for record in records]
    return records


def paging(default: int = DEFAULT_LIMIT) -> tuple[int, int]:
    skip, limit = int_param("skip", 0), int_param("limit", default)
    if skip < 0:
        skip = 0
    limit = default if limit <= 0 else min(limit, MAX_LIMIT)  # cut silently, as OpenCGA does
    return skip, limit


def counted() -> bool:
    return request.args.get("count", "false").lower() == "true"


def int_param(name: str, default: int) -> int:
    return int_query_arg(request.args, name, default, lambda raw: OpencgaError(
        f"Invalid value '{raw}' for parameter '{name}': not an integer",
        "org.glassfish.jersey.server.ParamException.QueryParamException", status=400))


def ids_of(text: str) -> list[str]:
    ids = [part for part in text.split(",") if part]
    if not ids:
        raise OpencgaError("ID is null or Empty", "org.opencb.opencga.server.WebServiceException")
    if len(set(ids)) != len(ids):
        raise OpencgaError("Provided  IDs are not unique. Only unique IDs are accepted.",
                           "org.opencb.opencga.server.WebServiceException")
    return ids


def matching(records: list[dict], filters: dict[str, Callable[[dict], Any]]) -> list[dict]:
    """Records whose fields equal one of each given filter's comma-separated values."""
    for name, pick in filters.items():
        raw = request.args.get(name)
        if not raw:
            continue
        wanted = {value for value in raw.split(",") if value}

        def keep(record: dict, pick=pick, wanted=wanted) -> bool:
            value = pick(record)
            values = value if isinstance(value, (list, set, tuple)) else [value]
            return bool({str(v) for v in values} & wanted)

        records = [record for record in records if keep(record)]
    return records


def status_id(record: dict) -> str:
    return record["internal"]["status"]["id"]


# --- auth --------------------------------------------------------------------------------

def authenticated(view: Callable) -> Callable:
    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any):
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer "):].strip() if header.startswith("Bearer ") else ""
        if header and not header.startswith("Bearer "):
            raise OpencgaError("Authorization header must start with Bearer JWToken",
                               "org.glassfish.jersey.server.ParamException.HeaderParamException", 400)
        token = token or request.args.get("sid", "")
        if not token:
            raise OpencgaError("Permission denied. Anonymous user '*' cannot access this resource: "
                               "log in (users/login) and send 'Authorization: Bearer <token>'",
                               AUTHORIZATION_EXCEPTION)
        g.user = state().issuer.verify(token)["sub"]
        return view(*args, **kwargs)

    return checked


@api.before_request
def start_clock_and_take_faults():
    g.started = time.monotonic()
    injector = request.environ.get(ENVIRON_FAULTS)
    fault = injector.take("error_200", request.method, request.path) if injector else None
    if fault is not None:
        return _json({"error": str(fault.options.get("message") or NO_FILE_MESSAGE)})
    return None


@api.errorhandler(OpencgaError)
def opencga_error(error: OpencgaError):
    return error_envelope(error)


@api.errorhandler(variants.VariantQueryError)
def variant_query_error(error: variants.VariantQueryError):
    return error_envelope(OpencgaError(str(error), VARIANT_QUERY_EXCEPTION))


def http_error(error: HTTPException):
    """Unknown endpoints and methods, too large uploads: the envelope, not Flask's HTML."""
    code = error.code or 500
    names = {404: "javax.ws.rs.NotFoundException", 405: "javax.ws.rs.NotAllowedException",
             413: "javax.ws.rs.WebApplicationException"}
    messages = {404: f"HTTP 404 Not Found: {request.path}", 405: "HTTP 405 Method Not Allowed",
                413: "The uploaded file is too large"}
    return error_envelope(OpencgaError(messages.get(code, error.description or error.name),
                                       names.get(code, "javax.ws.rs.WebApplicationException"), code))


def body_json() -> dict:
    data = request.get_json(silent=True)
    if (data is None and request.get_data()) or not isinstance(data, (dict, type(None))):
        raise OpencgaError("The body must be a JSON object", PARAMETER_EXCEPTION, 400)
    return data or {}


# --- meta and users ----------------------------------------------------------------------

@api.route("/meta/about", methods=["GET"])
def meta_about():
    return envelope([result([{"Program": "OpenCGA (OpenCB)", "Version": VERSION,
                              "Git branch": "release-5.0.x", "Git commit": GIT_COMMIT,
                              "Description": "Big Data platform for processing and analysing "
                                             "NGS data (gensvc emulator)"}])])


@api.route("/meta/ping", methods=["GET"])
def meta_ping():
    return envelope([result(["pong"])])


@api.route("/users/login", methods=["POST"])
def users_login():
    tokens = state().login(body_json())
    return envelope([result([tokens], "AuthenticationResponse")])


# --- projects and studies ----------------------------------------------------------------

PROJECT_FILTERS = {"id": lambda p: p["id"], "name": lambda p: p["name"], "fqn": lambda p: p["fqn"],
                   "uuid": lambda p: p["uuid"]}
STUDY_FILTERS = {"id": lambda s: s["id"], "name": lambda s: s["name"], "fqn": lambda s: s["fqn"],
                 "alias": lambda s: s["alias"], "uuid": lambda s: s["uuid"]}


@api.route("/projects/search", methods=["GET"])
@authenticated
def projects_search():
    return paged(matching(list(state().projects.values()), PROJECT_FILTERS), "Project")


@api.route("/projects/<projects>/info", methods=["GET"])
@authenticated
def projects_info(projects: str):
    return envelope([result([state().find_project(ref)], "Project") for ref in ids_of(projects)])


@api.route("/projects/create", methods=["POST"])
@authenticated
def projects_create():
    return envelope([result([state().create_project(g.user, body_json())], "Project")])


def _studies_of(project_ref: str) -> list[dict]:
    fqn = state().find_project(project_ref)["fqn"]
    return [study for key, study in state().studies.items() if key.startswith(fqn + ":")]


@api.route("/projects/<project>/studies", methods=["GET"])
@authenticated
def projects_studies(project: str):
    return paged(_studies_of(project), "Study")


@api.route("/studies/search", methods=["GET"])
@authenticated
def studies_search():
    project = request.args.get("project")
    if not project:
        raise OpencgaError("Missing mandatory parameter 'project'", PARAMETER_EXCEPTION)
    return paged(matching(_studies_of(project), STUDY_FILTERS), "Study")


@api.route("/studies/<studies>/info", methods=["GET"])
@authenticated
def studies_info(studies: str):
    return envelope([result([state().find_study(ref)], "Study") for ref in ids_of(studies)])


@api.route("/studies/create", methods=["POST"])
@authenticated
def studies_create():
    study = state().create_study(g.user, request.args.get("project"), body_json())
    return envelope([result([study], "Study")])


# --- files -------------------------------------------------------------------------------

FILE_FILTERS = {"id": lambda f: f["id"], "uuid": lambda f: f["uuid"], "name": lambda f: f["name"],
                "path": lambda f: f["path"], "type": lambda f: f["type"], "format": lambda f: f["format"],
                "bioformat": lambda f: f["bioformat"], "status": status_id, "internalStatus": status_id,
                "sampleIds": lambda f: f["sampleIds"], "size": lambda f: f["size"],
                "checksum": lambda f: f.get("checksum", ""), "tags": lambda f: f["tags"],
                "directory": lambda f: f["path"].rsplit("/", 1)[0] + "/" if "/" in f["path"] else "",
                "internalVariantIndexStatus":
                    lambda f: f["internal"].get("variant", {}).get("index", {}).get("status", {}).get("id", "")}


def study_fqn() -> str:
    return state().find_study(request.args.get("study"))["fqn"]


@api.route("/files/search", methods=["GET"])
@authenticated
def files_search():
    fqn = study_fqn()
    with state().lock:
        files = list(state().files[fqn].values())
    return paged(matching(files, FILE_FILTERS), "File")


@api.route("/files/<files>/info", methods=["GET"])
@authenticated
def files_info(files: str):
    fqn = study_fqn()
    return envelope([result([state().find_file(fqn, ref)], "File") for ref in ids_of(files)])


def form_value(*names: str) -> str | None:
    """A multipart field, else the same option from the query string (pyopencga sends both)."""
    for source in (request.form, request.args):
        for name in names:
            if source.get(name) not in (None, ""):
                return source.get(name)
    return None


@api.route("/files/upload", methods=["POST"])
@authenticated
def files_upload():
    part = request.files.get("file")
    if part is None:
        return _json({"error": NO_FILE_MESSAGE})  # HTTP 200, as FileWSServer answers
    name = form_value("name", "fileName") or part.filename or ""
    parents = (form_value("parents") or "true").lower() != "false"
    record = state().upload(
        form_value("study"), name, form_value("relativeFilePath") or "", parents, part.read(),
        form_value("format", "fileFormat"), form_value("bioformat"), form_value("description") or "",
        form_value("checksum"))
    return envelope([result([record], "File")])


@api.route("/files/<file>/download", methods=["GET"])
@authenticated
def files_download(file: str):
    fqn = study_fqn()
    record = state().find_file(fqn, file)
    if record["type"] != "FILE":
        raise OpencgaError(f"'{record['path']}' is a folder: only files can be downloaded")
    data = state().contents[(fqn, record["id"])]
    return Response(data, content_type="application/octet-stream",
                    headers={"content-disposition": f"attachment; filename ={record['name']}"})


# --- samples and individuals -------------------------------------------------------------

SAMPLE_FILTERS = {"id": lambda s: s["id"], "uuid": lambda s: s["uuid"],
                  "individualId": lambda s: s["individualId"], "fileIds": lambda s: s["fileIds"],
                  "somatic": lambda s: str(s["somatic"]).lower(), "status": status_id,
                  "internalStatus": status_id}
INDIVIDUAL_FILTERS = {"id": lambda i: i["id"], "uuid": lambda i: i["uuid"], "name": lambda i: i["name"],
                      "sex": lambda i: i["sex"].get("id", ""), "samples": lambda i: [s["id"] for s in i["samples"]],
                      "karyotypicSex": lambda i: i["karyotypicSex"], "internalStatus": status_id}


def _catalog(table: str) -> list[dict]:
    fqn = study_fqn()
    with state().lock:
        return list(getattr(state(), table)[fqn].values())


def _one(table: str, kind: str, ref: str) -> dict:
    fqn = study_fqn()
    with state().lock:
        for record in getattr(state(), table)[fqn].values():
            if ref in (record["id"], record["uuid"]):
                return record
    raise OpencgaError(f"{kind} '{ref}' not found")


@api.route("/samples/search", methods=["GET"])
@authenticated
def samples_search():
    return paged(matching(_catalog("samples"), SAMPLE_FILTERS), "Sample")


@api.route("/samples/<samples>/info", methods=["GET"])
@authenticated
def samples_info(samples: str):
    return envelope([result([_one("samples", "Sample", ref)], "Sample") for ref in ids_of(samples)])


@api.route("/individuals/search", methods=["GET"])
@authenticated
def individuals_search():
    return paged(matching(_catalog("individuals"), INDIVIDUAL_FILTERS), "Individual")


@api.route("/individuals/<individuals>/info", methods=["GET"])
@authenticated
def individuals_info(individuals: str):
    return envelope([result([_one("individuals", "Individual", ref)], "Individual")
                     for ref in ids_of(individuals)])


@api.route("/individuals/create", methods=["POST"])
@authenticated
def individuals_create():
    record = state().create_individual(request.args.get("study"), body_json())
    return envelope([result([record], "Individual")])


# --- jobs --------------------------------------------------------------------------------

JOB_FILTERS = {"id": lambda j: j["id"], "uuid": lambda j: j["uuid"], "toolId": lambda j: j["tool"]["id"],
               "status": status_id, "internalStatus": status_id, "tags": lambda j: j["tags"],
               "userId": lambda j: j["userId"], "priority": lambda j: j["priority"],
               "input": lambda j: [f["id"] for f in j["input"]] + [f["path"] for f in j["input"]],
               "description": lambda j: j["description"]}


@api.route("/operation/variant/index", methods=["POST"])
@authenticated
def variant_index():
    injector = request.environ.get(ENVIRON_FAULTS)
    fault = injector.take("index_error", "POST", request.path) if injector else None
    failure = str(fault.options.get("message") or INDEX_ERROR_MESSAGE) if fault else None
    tags = [tag for tag in (request.args.get("jobTags") or "").split(",") if tag]
    job = state().submit_index(g.user, request.args.get("study"), body_json(), request.args.get("jobId"),
                               request.args.get("jobDescription") or "", tags, failure)
    return envelope([result([job], "Job")])


@api.route("/jobs/search", methods=["GET"])
@authenticated
def jobs_search():
    fqn = study_fqn()
    jobs = [state().job_json(job) for job in state().study_jobs(fqn)]
    return paged(matching(jobs, JOB_FILTERS), "Job")


@api.route("/jobs/<jobs>/info", methods=["GET"])
@authenticated
def jobs_info(jobs: str):
    study = request.args.get("study")
    return envelope([result([state().job_json(state().find_job(study, ref))], "Job")
                     for ref in ids_of(jobs)])


@api.route("/jobs/<job>/kill", methods=["POST"])
@authenticated
def jobs_kill(job: str):
    record = state().kill(state().find_job(request.args.get("study"), job))
    return envelope([result([record], "Job")])


def _job_log(job_id: str, from_end: bool) -> Response:
    job = state().find_job(request.args.get("study"), job_id)
    lines = min(max(int_param("lines", 20), 1), 1000)
    stream = request.args.get("type", "stderr")
    if stream not in ("stdout", "stderr"):
        raise OpencgaError(f"Unknown log type '{stream}': use stdout or stderr", PARAMETER_EXCEPTION)
    log = state().job_log(job, stream)
    shown = log[-lines:] if from_end else log[:lines]
    content = "".join(line + "\n" for line in shown)
    path = job.record[stream]["path"]
    return envelope([result([{"fileId": path.replace("/", ":"), "eof": True, "offset": 0,
                              "size": len(content), "lines": len(shown), "content": content}],
                            "FileContent")])


@api.route("/jobs/<job>/log/tail", methods=["GET"])
@authenticated
def jobs_log_tail(job: str):
    return _job_log(job, from_end=True)


@api.route("/jobs/<job>/log/head", methods=["GET"])
@authenticated
def jobs_log_head(job: str):
    return _job_log(job, from_end=False)


# --- variants ----------------------------------------------------------------------------

@api.route("/analysis/variant/query", methods=["GET"])
@authenticated
def variant_query():
    fqn = study_fqn()
    skip, limit = paging()
    store = state()
    store.advance_all(fqn)
    with store.lock:
        params = dict(request.args)
        known = set(store.samples[fqn])
        found = store.variants[fqn].query(params, known)
        page = [variant.to_json(fqn) for variant in found[skip:skip + limit]]
    total = len(found) if counted() else -1
    # summary=true: the variants without their samples' data, as OpenCGA's summary does
    summary = ("studies.samples",) if request.args.get("summary", "").lower() == "true" else ()
    return envelope([result(projected(page, summary), "Variant", total)])


# --- the host ----------------------------------------------------------------------------

def host_root():
    return redirect(BASE_PATH, code=302)


def host_index():
    return Response(f"<html><body>OpenCGA {VERSION} (gensvc emulator)</body></html>",
                    content_type="text/html")


def create_app(config: EmulatorConfig | None = None) -> Flask:
    config = config or EmulatorConfig()
    pairs = config.tokens if config.tokens is not None else DEFAULT_TOKENS
    users = {}
    for pair in pairs:
        user, separator, password = pair.partition(":")
        if not separator or not user or not password:
            raise ValueError(f"opencga tokens are user:password pairs, got {pair!r}")
        users[user] = password
    extra = config.extra
    issuer = TokenIssuer(config.scaled(float(extra.get("token_seconds", TOKEN_SECONDS))),
                         config.scaled(float(extra.get("refresh_seconds", REFRESH_SECONDS))))
    job_seconds = config.scaled(float(extra.get("job_seconds", JOB_SECONDS)))

    app = Flask("gensvc.emulators.opencga")
    app.json.sort_keys = False  # keys in the order OpenCGA writes them
    app.config["MAX_CONTENT_LENGTH"] = int(extra.get("max_upload_bytes", MAX_UPLOAD_BYTES))
    app.extensions["opencga"] = OpencgaState(users, issuer, job_seconds)
    app.add_url_rule("/opencga", "host_root", host_root, methods=["GET"])
    app.add_url_rule(BASE_PATH, "host_index", host_index, methods=["GET"])
    app.register_error_handler(HTTPException, http_error)
    app.register_blueprint(api, url_prefix=REST_PATH)
    return app


__all__ = ["BASE_PATH", "DEFAULT_TOKENS", "FAULT_KINDS", "MAX_LIMIT", "NO_FILE_MESSAGE",
           "REST_PATH", "create_app"]
