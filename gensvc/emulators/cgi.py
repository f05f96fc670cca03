"""Emulator of the Cancer Genome Interpreter REST API v1 (cancergenomeinterpreter.org/rest_api).

Service URL: `http://HOST:PORT/api/v1` (BASE_PATH, no trailing slash; a trailing slash is
accepted too). In-memory state; jobs live until deleted.

Authentication, on every request: `Authorization: <email> <token>`, exactly two
whitespace-separated parts, the first with an `@`, the token one of `EmulatorConfig.tokens`
(any email), by default `DEFAULT_TOKENS` = ["cgi-demo-token"]. A user is an email: each sees
only their own jobs. Anything else answers HTTP 401 with the quota error's shape,
`{"error_code": 401, "message": "..."}` (the docs say nothing; chosen by this emulator).

Endpoints (documented by the service unless marked as the emulator's choice):

- `POST /api/v1`, multipart: files `mutations`, `cnas`, `translocations` (at least one),
  fields `cancer_type` (required, a code of `cgi_results.CANCER_TYPES`, exact case),
  `title` (optional, default ""), `reference` (hg19 | hg38, also GRCh37 | GRCh38 in any
  case; default hg19). `cancer_type`, `title` and `reference` may come as URL query
  parameters instead (CGIwrapper sends them so). Answer: 200 with a bare JSON string, the job
  id (20 lowercase hex characters). Errors (emulator's wording): 400
  `{"error_code": 400, "message": ...}` for no file, a missing or unknown cancer type, or an
  unknown reference; 403 `{"error_code": 403, "message": "You have reached the maximum number
  of jobs permitted. Please, delete one before submitting a new job."}` (the real wording) when
  the user already holds `quota` jobs; 413 for an upload over `max_upload_bytes`.
- `GET /api/v1`: the user's job ids, a JSON array, oldest first.
- `GET /api/v1/<id>`: `{"status": "Running"|"Done"|"Error", "metadata": {"id", "user",
  "title", "cancertype", "reference", "dataset", "date"}}`. `dataset` is "input.tsv", as both
  published API runs show whatever the uploaded file was called; `date` is the submission
  time in UTC, "YYYY-MM-DD HH:MM:SS". Unknown id or another user's: 404 error shape.
- `GET /api/v1/<id>?action=logs`: `{"status": ..., "logs": [...]}`. The first line is
  `# cgi analyze input.tsv -c <TYPE> -g <ref>` without a newline (as published); then the
  steps reached so far, each `YYYY-MM-DD HH:MM:SS,mmm INFO     <step>\n` in CGI's local time
  (Europe/Madrid; the metadata date is UTC, so they differ by an hour or two, as published):
  Parsing input01.tsv (one line per input), Running VEP, Check cancer genes and consensus
  roles, Annotate BoostDM mutations, Annotate OncodriveMUT mutations, Annotate validated
  oncogenic mutations, Check oncogenic classification, Matching biomarkers, Prescription
  finished, Aggregate metrics, Compress output files, Analysis done. A failed job's last line
  is `... ERROR    <why>\n`.
- `GET /api/v1/<id>?action=download`: when Done, the result zip (see `cgi_results`),
  `application/zip`, `Content-Disposition: attachment; filename=<id>.zip`. Before that
  (emulator's choice): 409 error shape, saying the job is still running or failed.
  An unknown action: 400 error shape.
- `DELETE /api/v1/<id>`: 200 `{"id": "<id>", "status": "Deleted"}` (emulator's choice; the
  real body is unverified); an unknown id: 404 error shape.
- Unknown paths: 404, wrong methods: 405, both in the error shape.

Timing: a job runs `job_seconds` (default 60) × time scale, the log steps spread over it;
"Analysis done" and status Done arrive together. An input CGI cannot read (a mutations file
neither VCF nor a table with `protein`, `gdna` or `chr pos ref alt` columns; CNAs without
`gene` and `cna`; translocations without `fus`; a bad row) fails the job after a tenth of
that, the logs naming the file and the reason.

`EmulatorConfig.extra`: `quota` (jobs per user, default 10), `job_seconds` (base duration,
default 60, time-scaled), `max_upload_bytes` (default 100 MiB), `timezone` (of log and
summary times, default "Europe/Madrid").

Service-specific faults (taken through the framework's injector):
- `hostile_zip` on a download of a Done job: instead of the real zip, the real members plus a
  hostile one, by `"variant"`: `slip` (a member `../../evil.txt`), `absolute`
  (`/tmp/evil.txt`), `bomb` (`alterations.tsv` expanding to 200 MiB of zeros, built once and
  cached; `"size"` changes it), `link` (a symlink member `evil_link` -> `/etc/passwd`;
  `"name"`, `"target"`), `many` (20,000 tiny members; `"files"`). Default variant: slip.
- `job_error` on a submission (POST): the job is accepted but fails after VEP, its log ending
  in `ERROR    <"message" or a default>`.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from . import cgi_results
from .framework import ENVIRON_FAULTS, EmulatorConfig

BASE_PATH = "/api/v1"
DEFAULT_TOKENS = ["cgi-demo-token"]
DEFAULT_QUOTA = 10
JOB_SECONDS = 60.0
ERROR_FRACTION = 0.1  # an unreadable input fails after this share of the job's duration
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
TIMEZONE = "Europe/Madrid"
DATASET = "input.tsv"
FAULT_KINDS = frozenset({"hostile_zip", "job_error"})

QUOTA_MESSAGE = ("You have reached the maximum number of jobs permitted. "
                 "Please, delete one before submitting a new job.")
JOB_ERROR_MESSAGE = "VEP failed to annotate the input (injected fault)"
REFERENCES = {"hg19": "hg19", "hg38": "hg38", "grch37": "hg19", "grch38": "hg38"}

# The analysis steps after parsing, and when each is logged (share of the job's duration).
ANALYSIS_STEPS: tuple[tuple[str, float], ...] = (
    ("Running VEP", 0.30),
    ("Check cancer genes and consensus roles", 0.40),
    ("Annotate BoostDM mutations", 0.42),
    ("Annotate OncodriveMUT mutations", 0.45),
    ("Annotate validated oncogenic mutations", 0.65),
    ("Check oncogenic classification", 0.67),
    ("Matching biomarkers", 0.70),
    ("Prescription finished", 0.72),
    ("Aggregate metrics", 0.74),
    ("Compress output files", 0.97),
    ("Analysis done", 1.0),
)
PARSING_AT = 0.04
JOB_ID = re.compile(r"[0-9a-f]{20}")


def _local_zone(name: str) -> tzinfo:
    try:
        from zoneinfo import ZoneInfo
        return ZoneInfo(name)
    except Exception:  # no tz database on this machine: UTC rather than failing
        return timezone.utc


@dataclass
class Job:
    id: str
    user: str
    title: str
    cancer_type: str
    reference: str
    submitted: datetime  # UTC
    started: float  # monotonic
    duration: float
    inputs: list[cgi_results.ParsedInput] = field(default_factory=list)
    input_names: list[str] = field(default_factory=list)  # input01.tsv, ...
    # A failure: the message, when it shows, and how many normal log lines precede it.
    error: str | None = None
    error_after: float = 0.0
    lines_before_error: int = 0
    files: list[cgi_results.ResultFile] | None = None
    zip_bytes: bytes | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def status(self, elapsed: float | None = None) -> str:
        elapsed = self.elapsed() if elapsed is None else elapsed
        if self.error is not None:
            return "Error" if elapsed >= self.error_after else "Running"
        return "Done" if elapsed >= self.duration else "Running"

    def schedule(self) -> list[tuple[str, str, float]]:
        """(level, message, seconds after submission) of every log line the job will write."""
        lines = [("INFO", f"Parsing {name}", self.duration * (PARSING_AT + 0.01 * index))
                 for index, name in enumerate(self.input_names)]
        lines += [("INFO", step, self.duration * share) for step, share in ANALYSIS_STEPS]
        if self.error is None:
            return lines
        return lines[:self.lines_before_error] + [("ERROR", self.error, self.error_after)]

    def fail(self, message: str, after: float, lines_before: int) -> None:
        self.error, self.error_after, self.lines_before_error = message, after, lines_before

    def finished_at(self) -> datetime:
        return self.submitted + timedelta(seconds=self.duration)

    def metadata(self) -> dict[str, str]:
        return {"id": self.id, "user": self.user, "title": self.title,
                "cancertype": self.cancer_type, "reference": self.reference,
                "dataset": DATASET, "date": self.submitted.strftime("%Y-%m-%d %H:%M:%S")}


def _error(status: int, message: str) -> Response:
    response = jsonify({"error_code": status, "message": message})
    response.status_code = status
    return response


class JobStore:
    """Every user's jobs; thread-safe."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def add(self, job: Job, quota: int) -> bool:
        with self._lock:
            if sum(1 for other in self._jobs.values() if other.user == job.user) >= quota:
                return False
            while job.id in self._jobs:
                job.id = secrets.token_hex(10)
            self._jobs[job.id] = job
            return True

    def get(self, user: str, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job if job is not None and job.user == user else None

    def ids(self, user: str) -> list[str]:
        with self._lock:
            return [job.id for job in self._jobs.values() if job.user == user]

    def delete(self, user: str, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.user != user:
                return False
            del self._jobs[job_id]
            return True


@dataclass
class CgiState:
    """What one CGI app keeps between requests, in `current_app.extensions["cgi"]`."""

    tokens: frozenset[str]
    quota: int
    duration: float  # a job's run, seconds (time-scaled)
    zone: tzinfo  # of log and summary times
    store: JobStore = field(default_factory=JobStore)
    build_lock: threading.Lock = field(default_factory=threading.Lock)  # result files are built once

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)


def state() -> CgiState:
    return current_app.extensions["cgi"]


api = Blueprint("cgi", __name__)


# Hooks: on the app, not the blueprint, so an unknown path is authenticated and answered too.
def authenticate() -> Response | None:
    header = request.headers.get("Authorization")
    if not header:
        return _error(401, "Authentication required: send the header "
                           "'Authorization: <email> <token>'.")
    parts = header.split()
    if len(parts) != 2 or "@" not in parts[0]:
        return _error(401, "Malformed Authorization header: expected '<email> <token>'.")
    email, token = parts
    if token not in state().tokens:
        return _error(401, "Invalid user or token.")
    request.environ["gensvc.cgi.user"] = email
    return None


def http_error(error: HTTPException) -> Response:
    messages = {404: "Not found.", 405: f"Method {request.method} not allowed here.",
                413: "The uploaded files are too large."}
    code = error.code or 500
    return _error(code, messages.get(code, error.description or error.name))


def user() -> str:
    return request.environ["gensvc.cgi.user"]


def parameter(name: str) -> str | None:
    """A form field, or the URL query parameter of that name (CGIwrapper sends them so)."""
    value = request.form.get(name)
    if value is None:
        value = request.args.get(name)
    return value


@api.route("", methods=["GET"], strict_slashes=False)
def list_jobs():
    return jsonify(state().store.ids(user()))


@api.route("", methods=["POST"], strict_slashes=False)
def submit_job():
    uploads = _uploads()
    if not uploads:
        return _error(400, "At least one of the files mutations, cnas or translocations "
                           "is required.")
    cancer_type = parameter("cancer_type")
    if not cancer_type:
        return _error(400, "The parameter cancer_type is required.")
    if cancer_type not in cgi_results.CANCER_TYPES:
        return _error(400, f"Unknown cancer type {cancer_type!r}: use one of the codes "
                           "shown between brackets in the analysis page.")
    reference_text = parameter("reference") or "hg19"
    reference = REFERENCES.get(reference_text.strip().lower())
    if reference is None:
        return _error(400, f"Unknown reference genome {reference_text!r}: use hg19 or hg38.")
    job = _read_job(uploads, cancer_type, reference, title=parameter("title") or "")
    if not state().store.add(job, state().quota):
        return _error(403, QUOTA_MESSAGE)
    if job.error is None:  # an accepted job a job_error fault makes fail
        _take_job_error_fault(job, len(uploads))
    return jsonify(job.id)


def _uploads() -> list[tuple[str, bytes]]:
    uploads = []
    for field_name in cgi_results.INPUT_FIELDS:
        upload = request.files.get(field_name)
        if upload is None:
            continue
        data = upload.read()
        if not upload.filename and not data:
            continue  # an empty file input of a web form: no file
        uploads.append((field_name, data))
    return uploads


def _read_job(uploads: list[tuple[str, bytes]], cancer_type: str, reference: str, title: str) -> Job:
    """A new job of the request's user; an input CGI cannot read fails it (after a while)."""
    duration = state().duration
    job = Job(id=secrets.token_hex(10), user=user(), title=title, cancer_type=cancer_type,
              reference=reference, submitted=datetime.now(timezone.utc),
              started=time.monotonic(), duration=duration)
    for index, (field_name, data) in enumerate(uploads, start=1):
        name = f"input{index:02d}"
        job.input_names.append(f"{name}.tsv")
        if job.error is not None:
            continue
        try:
            job.inputs.append(cgi_results.read_input(name, field_name, data))
        except cgi_results.InputError as error:
            # Logged right after "Parsing <this file>".
            job.fail(f"{name}.tsv ({field_name}): {error}", duration * ERROR_FRACTION,
                     lines_before=index)
    return job


def _take_job_error_fault(job: Job, inputs: int) -> None:
    injector = request.environ.get(ENVIRON_FAULTS)
    fault = injector.take("job_error", "POST", request.path) if injector else None
    if fault is not None:
        # Logged after "Running VEP".
        job.fail(str(fault.options.get("message") or JOB_ERROR_MESSAGE),
                 job.duration * (ANALYSIS_STEPS[0][1] + 0.05), lines_before=inputs + 1)


@api.route("/<job_id>", methods=["DELETE"], strict_slashes=False)
def delete_job(job_id: str):
    if not state().store.delete(user(), job_id):
        return _error(404, f"Job {job_id} not found.")
    return jsonify({"id": job_id, "status": "Deleted"})


@api.route("/<job_id>", methods=["GET"], strict_slashes=False)
def get_job(job_id: str):
    job = state().store.get(user(), job_id) if JOB_ID.fullmatch(job_id) else None
    if job is None:
        return _error(404, f"Job {job_id} not found.")
    action = request.args.get("action")
    if action is None or action == "":
        return jsonify({"status": job.status(), "metadata": job.metadata()})
    if action == "logs":
        return _logs(job)
    if action == "download":
        return _download(job)
    return _error(400, f"Unknown action {action!r}: use download or logs.")


def _logs(job: Job) -> Response:
    elapsed = job.elapsed()
    status = job.status(elapsed)
    lines = [f"# cgi analyze {DATASET} -c {job.cancer_type} -g {job.reference}"]
    for level, message, at in job.schedule():
        if at > elapsed and status == "Running":
            continue  # not reached yet
        moment = state().local(job.submitted + timedelta(seconds=at))
        stamp = moment.strftime("%Y-%m-%d %H:%M:%S") + f",{moment.microsecond // 1000:03d}"
        lines.append(f"{stamp} {level:<8} {message}\n")
    return jsonify({"status": status, "logs": lines})


def _result_files(job: Job) -> list[cgi_results.ResultFile]:
    with state().build_lock:
        if job.files is None:
            job.files = cgi_results.result_files(
                job.id, job.title, job.cancer_type, job.reference, job.inputs,
                state().local(job.finished_at()))
        return job.files


def _download(job: Job) -> Response:
    status = job.status()
    if status == "Running":
        return _error(409, f"Job {job.id} is still running; download its results when "
                           "its status is Done.")
    if status == "Error":
        return _error(409, f"Job {job.id} failed; it has no results to download.")
    files = _result_files(job)
    finished = state().local(job.finished_at())
    injector = request.environ.get(ENVIRON_FAULTS)
    fault = injector.take("hostile_zip", "GET", request.path) if injector else None
    if fault is not None:
        variant = str(fault.options.get("variant", "slip"))
        try:
            body = cgi_results.hostile_zip(variant, files, finished, fault.options)
        except ValueError as error:
            return _error(500, str(error))
    else:
        with state().build_lock:
            if job.zip_bytes is None:
                job.zip_bytes = cgi_results.write_zip(files, finished)
            body = job.zip_bytes
    return Response(body, mimetype="application/zip", headers={
        "Content-Disposition": f"attachment; filename={job.id}.zip"})


def create_app(config: EmulatorConfig | None = None) -> Flask:
    config = config or EmulatorConfig()
    quota = int(config.extra.get("quota", DEFAULT_QUOTA))
    duration = config.scaled(float(config.extra.get("job_seconds", JOB_SECONDS)))
    if quota < 0 or duration <= 0:
        raise ValueError(f"cgi quota must be >= 0 and job_seconds > 0, got {quota}, {duration}")
    cgi = CgiState(tokens=frozenset(config.tokens if config.tokens is not None else DEFAULT_TOKENS),
                   quota=quota, duration=duration,
                   zone=_local_zone(str(config.extra.get("timezone", TIMEZONE))))
    app = Flask("gensvc.emulators.cgi")
    app.json.sort_keys = False  # keys in the service's order: status, then metadata
    app.config["MAX_CONTENT_LENGTH"] = int(config.extra.get("max_upload_bytes", MAX_UPLOAD_BYTES))
    app.extensions["cgi"] = cgi
    app.jobs = cgi.store  # for tests and debugging
    app.before_request(authenticate)
    app.register_error_handler(HTTPException, http_error)
    app.register_blueprint(api, url_prefix=BASE_PATH)
    return app


__all__ = ["BASE_PATH", "DEFAULT_QUOTA", "DEFAULT_TOKENS", "FAULT_KINDS", "JOB_SECONDS",
           "QUOTA_MESSAGE", "create_app"]
