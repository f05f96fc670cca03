"""Emulator of the OpenCRAVAT 3.2.4 web server as `oc gui --aiohttp` serves it (websubmit.py,
plus open-cravat-multiuser 2.12 for server mode).

Base URL: `http://HOST:PORT/` (BASE_PATH "/"). Every behaviour below is the real server's,
read from cravat/websubmit/websubmit.py, cravat/cravat_web.py, cravat/cravat_class.py,
cravat/cravat_convert.py, cravat_multiuser/__init__.py and the store modules, and checked
against the real server run as a test peer (tests/peers/README.md); `opencravat_converter`,
`opencravat_mapper`, `opencravat_annotators` and `opencravat_reporters` compute a job's files.

Answers
- JSON as aiohttp's `json_response` writes it (`json.dumps` defaults, `application/json;
  charset=utf-8`). Any exception in a handler becomes HTTP 500, body
  `{"status": "error", "msg": "<str(exception)>"}` with Content-Type `text/plain;
  charset=utf-8` (the server's middleware), e.g. a submission without `note` in its options
  ("cannot access local variable 'note' where it is not associated with a value"), an unknown
  job's status ("unsupported operand type(s) for +: 'NoneType' and 'str'"), `getjobs`
  without `ids` ("'ids'"), an unknown path ("Not Found"), a wrong method ("Method Not
  Allowed"). GET of an unknown file under /submit/ (aiohttp's static route) is 404 with an
  empty body.
- `POST /submit/submit` (multipart: `file_0`, `file_1`, ... and `options` JSON with
  annotators, reports, assembly, forcedinputformat, note): the job's info (`id`, `status`:
  {"status": "Submitted"}, `run_name`, `submission_time`, the options, ...). Job ids are
  `%y%m%d-%H%M%S` of the submission: a second submission in the same second gets the same
  id and takes over that job (both answer 200 with that id; /submit/jobs lists it once). The
  job is queued before the note is read: without `note` the answer is the 500 above, yet the
  job runs (with note ""). A failing submission after the job directory was made (no file,
  bad options JSON) leaves an empty job that `/submit/jobs` lists and `getjobs` calls Error.
- Invalid options (annotator or reporter not installed, assembly not hg38/hg19/hg18, input
  format not vcf/cravat) make `oc run` exit before it writes anything: `/status` stays at
  the submission's `Submitted` for ever, `getjobs` says `Aborted` once the run would have
  started, and `/log` answers "log file does not exist." (the reason, e.g. "Invalid module:
  nosuch", goes only to the server's console).
- `GET /submit/jobs/<id>/status`: the job's whole status.json (sorted keys) with `status`
  progressing through the strings the real server writes for a short job: Submitted,
  Starting, Started cravat, Running Converter (converter), Started <mapper title> (hg38),
  Running Aggregator (variant|gene|sample|mapping), Finished Aggregator (mapping), Running
  Tag Sampler (tagsampler), Running VCF Info (vcfinfo) [VCF input], Running <Title>
  (<type>reporter)..., Finished (inputs of 10000+ lines also show the modules' "...: line N"
  progress); or Error (unreadable input, or the `job_error` fault). An input with no data
  line stops at "Finished Converter (<format>)" (getjobs: Aborted). The whole run takes
  `config.time_scale` x `extra["job_seconds"]` (default 4.5 s plus the server's own
  expected-runtime estimate per variant), the first 70 % of it queued (Submitted), as
  observed. Phases are spread evenly over the rest.
- `GET /submit/getjobs?ids=["<id>", ...]`: job infos (status Aborted for a run that ended
  without Finished/Error; Error for an unknown id); `GET /submit/jobs`: the user's job ids,
  newest first. `GET /submit/jobs/<id>/log` and `/err`: text. `DELETE /submit/jobs/<id>`:
  200, empty body, after the worker has removed the job.
- `GET /submit/jobs/<id>/reports`: report types whose files exist, from csv, tsv, vcf
  (`text` is never listed, though `GET .../reports/text` serves `<run_name>.tsv` once made).
  `POST /submit/jobs/<id>/reports/<type>` answers "done" after generating it
  (`extra["report_seconds"]`, default 1 s, time-scaled), "fail" when the job has no result
  database yet (or the `report_fail` fault); "done" without a file for a type with no
  reporter. `GET .../reports/<type>`: the file as aiohttp's FileResponse sends it
  (Content-Type from the extension: .vcf is text/x-vcard, .tsv text/tab-separated-values,
  .csv text/csv; Content-Disposition `attachment; filename=<name>`; ETag, Last-Modified,
  Accept-Ranges; single `Range` requests -> 206 / 416; If-None-Match / If-Modified-Since ->
  304); a report not made yet -> 500 "Not Found".
- `GET|POST /submit/annotate?chrom&pos&ref_base&alt_base[&annotators=a,b][&uid]`: one
  entry per installed annotator (or those asked for; null when it has nothing) and `crx`
  (the mapper's output for the input as given, no normalisation); never needs a login.
- tsv/csv reports follow the store's tsvreporter/csvreporter 2.1.0 (`#` preface lines);
  `extra["report_header_lines"] = False` gives 2.2.0's layout (header row only).
- Server mode (`extra["multiuser"]`, or whenever `config.tokens` is given):
  `GET /server/login` with `Authorization: Basic base64(user:password)` answers "success"
  and sets the `AIOHTTP_SESSION` cookie; anything else is HTTP 200 "fail". Credentials are
  the `user:password` entries of `config.tokens`, by default `DEFAULT_TOKENS`
  (admin:admin). Without a session, routes answer as the real server does with no user:
  submit and `/submit/jobs` -> {"status": "notloggedin"}; status, report creation/download,
  getjobs and delete -> 500; log -> "log file does not exist."; report list -> [].
  Each user sees only their jobs; admin sees everyone's. Also /server/logout,
  /server/checklogged, /server/signup.

Service-specific faults (taken when a job is submitted, a report is requested, a status
read): `{"kind": "job_error", "path": "/submit/submit"}` the job ends in Error after the
gene mapper; `"job_abort"` the run dies after the gene mapper (status frozen there, getjobs
Aborted, as after a server restart); `"report_fail"` (path of the report POST) answers
"fail" and makes no file; `"status_null"` the status route answers 200 `null`, as the real
one does when it reads the file while `oc run` rewrites it.

`config.extra`: multiuser (bool), job_seconds (float, unscaled), report_seconds (float,
unscaled; default 0.8), delete_seconds (float, unscaled; default 0.5), jobs_dir (the path
the server reports, default /opt/open-cravat/jobs), input_size_limit_mb (default 500),
report_header_lines (bool, default True).

Not emulated: liftover (hg19/hg18 input keeps its coordinates), GET /submit/jobs/<id>/db,
the job queue's concurrency limit, the two-runs-in-one-directory mix of a job id collision
(the later submission simply takes the job over), the excel reporter.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import json
import re
import secrets
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Blueprint, Flask, Request, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from .opencravat_annotators import ANNOTATORS, live_annotation
from .opencravat_converter import (ASSEMBLIES, CONVERTER_FORMATS, Conversion, ConversionError, InputFile, convert,
                                   decode_input)
from .opencravat_mapper import MAPPER_NAME, MAPPER_TITLE, MAPPER_VERSION
from .opencravat_reporters import REPORTERS, errors_text, render_report, report_filename, valid_report_types
from .framework import ENVIRON_FAULTS, EmulatorConfig

OPEN_CRAVAT_VERSION = "3.2.4"
BASE_PATH = "/"
DEFAULT_TOKENS = ["admin:admin"]
FAULT_KINDS: frozenset[str] = frozenset({"job_error", "job_abort", "report_fail", "status_null"})

# Observed on the real server (tests/peers/README.md): Finished 3.8-4.8 s after submission,
# of which 2.6-5.8 s queued (the job worker ticks once a second); POST report 0.8 s;
# DELETE of a running job 0.5 s.
DEFAULT_JOB_SECONDS = 4.5
DEFAULT_REPORT_SECONDS = 0.8
DEFAULT_DELETE_SECONDS = 0.5
DEFAULT_JOBS_DIR = "/opt/open-cravat/jobs"
QUEUE_FRACTION = 0.7  # share of a run spent queued (Submitted) before `oc run` starts
PROGRESS_LINES = 10_000  # inputs this long also show the modules' "...: line N" updates
SESSION_COOKIE = "AIOHTTP_SESSION"
OC_COMMAND = "/usr/local/bin/oc"
PACKAGE_DIR = "/usr/local/lib/python3.11/site-packages/cravat"
MODULES_DIR = "/opt/open-cravat/modules"
STATIC_PREFIXES = ("/submit/", "/result/", "/store/", "/webapps/")
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"

# Python 3.11's messages for the exceptions the real handlers raise.
MSG_NOTE_MISSING = "cannot access local variable 'note' where it is not associated with a value"
MSG_NONE_PLUS_STR = "unsupported operand type(s) for +: 'NoneType' and 'str'"
MSG_NONE_ITER = "'NoneType' object is not iterable"
MSG_NONE_PATH = "stat: path should be string, bytes, os.PathLike or integer, not NoneType"
MSG_INDEX = "list index out of range"

CONTENT_TYPES = {".vcf": "text/x-vcard", ".tsv": "text/tab-separated-values",
                 ".csv": "text/csv", ".txt": "text/plain", ".xlsx": None}


class HandlerError(Exception):
    """What the real handler would have raised: the middleware's 500 with this message."""


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type=JSON_TYPE)


def _text(text: str, status: int = 200) -> Response:
    return Response(text, status=status, content_type=TEXT_TYPE)


def _error500(message: str) -> Response:
    return _text(json.dumps({"status": "error", "msg": message}), 500)


def _empty(status: int = 200, content_type: str | None = None) -> Response:
    response = Response(b"", status=status)
    del response.headers["Content-Type"]
    if content_type:
        response.headers["Content-Type"] = content_type
    return response


def _asctime(moment: datetime.datetime) -> str:
    return time.asctime(moment.timetuple())


def _log_line(moment: datetime.datetime, name: str, message: str) -> str:
    return "%s %-20s %s\n" % (moment.strftime("%Y/%m/%d %H:%M:%S"), name, message)


# ---------------------------------------------------------------- jobs

@dataclass
class Phase:
    offset: float  # seconds after submission
    status: str
    log: list[tuple[str, str]] = field(default_factory=list)  # (logger, message)
    updates: dict = field(default_factory=dict)  # status.json keys set at this phase
    db: bool = False  # the result database exists from here on
    reports: list[str] = field(default_factory=list)  # report types written here


@dataclass
class Job:
    id: str
    user: str
    job_dir: str
    run_name: str | None
    files: list[InputFile]
    options: dict
    info: dict  # the submission answer (WebJob info)
    submitted: float  # monotonic
    submitted_at: datetime.datetime  # wall clock, for the times the server writes
    initial_status: dict | None  # websubmit's status.json; None when it never got written
    annotators: list[str] = field(default_factory=list)
    report_types: list[str] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    start: float = 0.0  # offset at which `oc run` starts (or exits, for invalid options)
    conversion: Conversion | None = None
    reports: dict[str, tuple[bytes, float]] = field(default_factory=dict)  # file -> (content, mtime)
    being_generated: set[str] = field(default_factory=set)
    empty: bool = False  # only a job directory: the submission failed after making it

    def elapsed(self, now: float) -> float:
        return now - self.submitted

    def reached(self, now: float) -> list[Phase]:
        t = self.elapsed(now)
        return [p for p in self.phases if p.offset <= t]

    def status_json(self, now: float) -> dict | None:
        """The job's status.json as the status route reads it (None: no file yet)."""
        if self.empty:
            return None
        reached = self.reached(now)
        if not reached:
            return None if self.initial_status is None else dict(self.initial_status)
        current = dict(self.initial_status or {})
        for phase in reached:
            current.update(phase.updates)
            current["status"] = phase.status
        # StatusWriter: json.dump(..., sort_keys=True), nested dicts included
        return json.loads(json.dumps(current, sort_keys=True))

    def db_exists(self, now: float) -> bool:
        return any(p.db for p in self.reached(now))

    def log_text(self, now: float) -> str | None:
        reached = self.reached(now)
        if not reached:
            return None
        lines = []
        for phase in reached:
            moment = self.submitted_at + datetime.timedelta(seconds=phase.offset)
            for name, message in phase.log:
                if name == "":
                    lines.append(message if message.endswith("\n") else message + "\n")
                else:
                    lines.append(_log_line(moment, name, message))
        return "".join(lines)

    def err_text(self, now: float) -> str | None:
        """The .err file: made empty when the run starts, filled by the converter."""
        reached = self.reached(now)
        if not reached:
            return None
        if self.conversion is not None and any("num_input_var" in p.updates for p in reached):
            return errors_text(self.conversion)
        return ""

    def run_over(self, now: float) -> bool:
        """The `oc run` process has exited (used for Aborted)."""
        if not self.phases:
            return self.elapsed(now) >= self.start
        return self.elapsed(now) >= self.phases[-1].offset

    def path(self, filename: str) -> str:
        return "%s/%s" % (self.job_dir, filename)


def _submission_time(moment: datetime.datetime) -> str:
    return moment.isoformat()


class OpenCravatServer:
    """All state of one emulated server; thread-safe."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        extra = config.extra
        multiuser = extra.get("multiuser")
        self.servermode = bool(multiuser) if multiuser is not None else config.tokens is not None
        tokens = config.tokens if config.tokens is not None else DEFAULT_TOKENS
        self.credentials: dict[str, str] = {}
        for token in tokens:
            user, sep, password = token.partition(":")
            if sep:
                self.credentials[user] = password
        self.job_seconds = extra.get("job_seconds")
        self.report_seconds = float(extra.get("report_seconds", DEFAULT_REPORT_SECONDS))
        self.delete_seconds = float(extra.get("delete_seconds", DEFAULT_DELETE_SECONDS))
        self.jobs_root = str(extra.get("jobs_dir", DEFAULT_JOBS_DIR)).rstrip("/")
        self.size_limit_mb = float(extra.get("input_size_limit_mb", 500))
        self.header_lines = bool(extra.get("report_header_lines", True))
        self.lock = threading.RLock()
        self.jobs: dict[str, dict[str, Job]] = {}  # user dir -> job id -> job
        self.sessions: dict[str, str | None] = {}  # cookie value -> username
        if self.servermode:
            self.jobs["admin"] = {}  # the peer's set-up: jobs_dir/admin exists
        else:
            self.jobs["default"] = {}

    # -- users and job directories (FileRouter)

    def user_dirs(self, username: str | None) -> list[str]:
        if username is None:
            return []
        with self.lock:
            if username == "admin":
                return sorted(self.jobs)
            self.jobs.setdefault(username, {})
            return [username]

    def find_job(self, username: str | None, job_id: str) -> Job | None:
        with self.lock:
            if username is None:
                return None
            if username == "admin":
                for user in sorted(self.jobs):
                    job = self.jobs[user].get(job_id)
                    if job is not None:
                        return job
                return None
            return self.jobs.get(username, {}).get(job_id)

    # -- job planning (what `oc run` will do)

    def duration(self, num_lines: int, annotators: list[str]) -> float:
        if self.job_seconds is not None:
            base = float(self.job_seconds)
        else:
            # websubmit.get_expected_runtime on top of a small job's fixed cost
            base = DEFAULT_JOB_SECONDS + num_lines * (1 / 1000 + len(annotators) / 5000 + 1 / 8000)
        return self.config.scaled(base)

    def plan(self, job: Job, run_args: list[str], invalid: str | None,
             fault: str | None) -> None:
        """Decide, at submission, every status, log line and file the run will produce."""
        files = job.files
        num_lines = sum(len(f.lines) for f in files)
        total = self.duration(num_lines, job.annotators)
        job.start = total * QUEUE_FRACTION
        if invalid is not None:  # `oc run` exits at argument checking: nothing is written
            job.phases = []
            return
        conversion: Conversion | None = None
        conversion_error: str | None = None
        try:
            conversion = convert(files, job.options.get("forcedinputformat") or None)
        except ConversionError as error:
            conversion_error = str(error)
        job.conversion = conversion
        paths = [job.path(f.name) for f in files]
        assembly = job.options.get("assembly") or "hg38"
        annot_names = sorted(job.annotators)
        run_seconds = total * (1 - QUEUE_FRACTION)
        started_at = job.submitted_at + datetime.timedelta(seconds=job.start)
        ended_at = job.submitted_at + datetime.timedelta(seconds=total)
        started, ended = _asctime(started_at), _asctime(ended_at)

        def module_log(name: str, suffix: str = "") -> list[tuple[str, str]]:
            logger = "cravat." + name
            return [(logger, "started: %s%s" % (started, suffix)),
                    (logger, "finished: %s%s" % (ended, suffix)),
                    (logger, "runtime: %.3f" % (run_seconds / 50))]

        def finish(headline: str | None) -> list[tuple[str, str]]:
            if headline is None:
                return [("cravat", "finished: %s" % ended), ("cravat", "runtime: %.3fs" % run_seconds)]
            return [("cravat", "finished with an exception: %s" % ended),
                    ("cravat", "runtime: %.3fs" % run_seconds)]

        steps: list[tuple[str, list, dict, bool, list]] = []
        starting = {
            "job_dir": job.job_dir, "id": job.id, "run_name": job.run_name,
            "assembly": assembly, "db_path": job.path(job.run_name + ".sqlite"),
            "orig_input_fname": [f.name for f in files], "orig_input_path": paths,
            "submission_time": _submission_time(started_at), "viewable": False,
            "note": job.options.get("note") or "", "reports": list(job.report_types),
            "open_cravat_version": OPEN_CRAVAT_VERSION, "annotators": annot_names,
        }
        steps.append(("Starting", [("cravat", " ".join([OC_COMMAND] + run_args[1:])),
                                   ("cravat", "started: %s" % started)], starting, False, []))
        versions = [("cravat", "input files: %s" % ", ".join(paths)),
                    ("cravat", "input assembly: %s" % assembly),
                    ("cravat", "version: open-cravat %s %s" % (OPEN_CRAVAT_VERSION,
                                                               PACKAGE_DIR))]
        for name in annot_names:
            versions.append(("cravat", "version: %s %s %s/annotators/%s" % (
                name, ANNOTATORS[name].version, MODULES_DIR, name)))
        versions.append(("cravat", "version: %s %s %s/mappers/%s" % (
            MAPPER_NAME, MAPPER_VERSION, MODULES_DIR, MAPPER_NAME)))
        for rtype in job.report_types:
            module = REPORTERS[rtype + "reporter"]
            versions.append(("cravat", "version: %s %s %s/reporters/%s" % (
                module.name, module.version, MODULES_DIR, module.name)))
        steps.append(("Started cravat", versions, {}, False, []))
        steps.append(("Running Converter (converter)",
                      [("cravat.converter", "started: %s" % started),
                       ("cravat.converter", "Input file(s): %s" % ", ".join(paths))], {}, False, []))
        if conversion is None:
            steps.append(("Error", _exception_log(
                "An expected exception occurred.", "run_converter",
                "cravat.exceptions.ExpectedException: %s" % conversion_error)
                + [("cravat", conversion_error)] + finish("exception"), {}, False, []))
            self._place(job, steps, total)
            return
        fmt = conversion.format
        converter_log = [("cravat.converter", "input format: %s" % fmt),
                         ("cravat.converter", "error lines: %d" % conversion.error_lines),
                         ("cravat.converter", "finished: %s" % ended),
                         ("cravat.converter", "num input lines: %d" % conversion.num_input),
                         ("cravat.converter", "runtime: %.3f" % (run_seconds / 100))]
        counts = {"num_input_var": conversion.num_input, "num_unique_var": conversion.num_unique,
                  "num_error_input": conversion.error_lines}
        big = conversion.num_input >= PROGRESS_LINES
        if big:  # the 10000-line progress updates are the only non-forced ones a client sees
            steps.append(("Running Converter (%s): line %d" % (files[-1].name, conversion.num_input),
                          [], {}, False, []))
        if conversion.num_input == 0:
            # `exit()` inside main: the last queued status is flushed and the run just ends
            steps.append(("Finished Converter (%s)" % fmt, converter_log + [
                ("cravat", "No variant found in input")] + finish(None), counts, False, []))
            self._place(job, steps, total)
            return
        crv = job.path(job.run_name + ".crv")
        steps.append(("Started %s (%s)" % (MAPPER_TITLE, MAPPER_NAME), converter_log + [
            ("cravat", "num_workers: 1"),
            ("cravat", "input line chunksize=%d total number of input lines=%d number of chunks=1"
             % (conversion.num_unique, conversion.num_unique)),
            ("cravat.mapper", "input file: %s" % crv)] + module_log("mapper", " | 0"),
            counts, False, []))
        if big:
            steps.append(("Running gene mapper: line %d" % conversion.num_unique, [], {}, False, []))
        if fault == "job_error":
            steps.append(("Error", _exception_log(
                "An unexpected exception occurred.", "run_annotators_mp",
                "RuntimeError: annotator worker died (injected fault)") + finish("exception"),
                {}, False, []))
            self._place(job, steps, total)
            return
        if fault == "job_abort":
            # the process is gone: nothing more is written (getjobs: Aborted)
            self._place(job, steps, job.start + (total - job.start) * 0.4)
            return
        secondary = list(annot_names)
        if "." not in job.run_name:
            # populate_secondary_annotators also picks up <run_name>.<module>.var files
            secondary += ["original_input"] + (["extra_vcf_info"] if fmt == "vcf" else [])
        annotator_log: list[tuple[str, str]] = [("cravat", "num_workers: 1")] if annot_names else []
        for name in annot_names:
            if big:
                module = ANNOTATORS[name]
                steps.append(("Running %s (%s): line %d" % (module.title, name,
                                                            conversion.num_unique),
                              [], {}, False, []))
            annotator_log += module_log(name)
        versions_done = {name: ANNOTATORS[name].version for name in annot_names}
        if fmt == "vcf":
            versions_done["extra_vcf_info"] = ""
        versions_done["original_input"] = ""
        for index, level in enumerate(("variant", "gene", "sample", "mapping")):
            log = annotator_log if index == 0 else []
            log = log + [("cravat.aggregator", "level: %s" % level),
                         ("cravat.aggregator", "input directory: %s" % job.job_dir)]
            log += module_log("aggregator")[:]
            steps.append(("Running Aggregator (%s)" % level, log,
                          {"annotators": sorted(secondary)} if index == 0 else {}, True, []))
        steps.append(("Finished Aggregator (mapping)", [], {"annotator_version": versions_done},
                      True, []))
        # postaggregators whose check() passes: tagsampler always, vcfinfo for VCF input
        # (varmeta only for non-VCF input with a zygosity column, which no converter here makes)
        steps.append(("Running Tag Sampler (tagsampler)", module_log("tagsampler"), {}, True, []))
        if fmt == "vcf":
            steps.append(("Running VCF Info (vcfinfo)", module_log("vcfinfo"), {}, True, []))
        previous_reports: list[str] = []
        for rtype in job.report_types:
            module = REPORTERS[rtype + "reporter"]
            steps.append(("Running %s (%s)" % (module.title, module.name), module_log(module.name),
                          {}, True, previous_reports))
            previous_reports = [rtype]
        steps.append(("Finished", finish(None), {}, True, previous_reports))
        self._place(job, steps, total)

    @staticmethod
    def _place(job: Job, steps: list, end: float) -> None:
        """Spread the phases evenly from the start of the run to its end."""
        span = max(end - job.start, 0.0)
        count = len(steps)
        job.phases = []
        for index, (status, log, updates, db, reports) in enumerate(steps):
            offset = job.start + (span * index / (count - 1) if count > 1 else 0.0)
            job.phases.append(Phase(offset, status, list(log), dict(updates), db, list(reports)))

    # -- report files

    def materialise_reports(self, job: Job, now: float) -> None:
        """Write the report files the run has produced by now (reporters given with -t)."""
        if job.conversion is None:
            return
        for phase in job.reached(now):
            for rtype in phase.reports:
                filename = report_filename(rtype, job.run_name)
                if filename is None or filename in job.reports:
                    continue
                moment = job.submitted_at + datetime.timedelta(seconds=phase.offset)
                content = render_report(rtype, job.conversion, job.annotators,
                                             job.path(job.run_name + ".sqlite"), moment,
                                             self.header_lines)
                if content is not None:
                    job.reports[filename] = (content.encode(), moment.timestamp())

    def existing_report_types(self, job: Job, now: float) -> list[str]:
        self.materialise_reports(job, now)
        out = []
        for rtype in valid_report_types():
            filename = report_filename(rtype, job.run_name) if job.run_name else None
            if filename is not None and filename in job.reports:
                out.append(rtype)
        return out


def _exception_log(headline: str, where: str, last: str) -> list[tuple[str, str]]:
    return [("cravat", headline),
            ("", "Traceback (most recent call last):\n"
                 '  File "%s/cravat_class.py", line 560, in main\n'
                 "    self.%s()\n%s" % (PACKAGE_DIR, where, last))]




def _http_date(seconds: float) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


def _parse_http_date(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$", re.ASCII | re.IGNORECASE)


def _http_range(header: str | None) -> tuple[int | None, int | None]:
    """aiohttp's BaseRequest.http_range as (start, stop); ValueError when unusable."""
    if header is None:
        return None, None
    found = _RANGE_RE.findall(header)
    if not found:
        raise ValueError("range not in acceptable format")
    start_text, end_text = found[0]
    end = int(end_text) if end_text else None
    start = int(start_text) if start_text else None
    if start is None and end is not None:
        start, end = -end, None
    if start is not None and end is not None:
        end += 1
        if start >= end:
            raise ValueError("start cannot be after end")
    if start is None and end is None:
        raise ValueError("No start or end of range specified")
    return start, end


def _etag_values(header: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def file_response(request: Request, filename: str, content: bytes, mtime: float,
                  headers: dict[str, str]) -> Response:
    """aiohttp's web.FileResponse for an in-memory file."""
    size = len(content)
    mtime_ns = int(mtime * 1e9)
    etag = '"%x-%x"' % (mtime_ns, size)
    extension = "." + filename.rsplit(".", 1)[-1] if "." in filename else ""
    content_type = CONTENT_TYPES.get(extension) or "application/octet-stream"

    def finish(response: Response) -> Response:
        for name, value in headers.items():
            response.headers[name] = value
        return response

    if_match = request.headers.get("If-Match")
    if if_match is not None and "*" not in if_match and etag not in [
            t for t in (x.strip() for x in if_match.split(",")) if not t.startswith("W/")]:
        return finish(_empty(412))
    unmodified = _parse_http_date(request.headers.get("If-Unmodified-Since"))
    if unmodified is not None and if_match is None and mtime > unmodified:
        return finish(_empty(412))
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and ("*" in if_none_match or etag in _etag_values(if_none_match)):
        response = _empty(304)
        response.headers["ETag"] = etag
        response.headers["Last-Modified"] = _http_date(mtime)
        return finish(response)
    modified_since = _parse_http_date(request.headers.get("If-Modified-Since"))
    if modified_since is not None and if_none_match is None and mtime <= modified_since:
        response = _empty(304)
        response.headers["ETag"] = etag
        response.headers["Last-Modified"] = _http_date(mtime)
        return finish(response)
    status = 200
    start, count = 0, size
    if_range = _parse_http_date(request.headers.get("If-Range"))
    if request.headers.get("If-Range") is None or (if_range is not None and mtime <= if_range):
        try:
            rng_start, rng_end = _http_range(request.headers.get("Range"))
        except ValueError:
            response = _empty(416)
            response.headers["Content-Range"] = "bytes */%d" % size
            return finish(response)
        if rng_start is not None:
            if rng_start < 0 and rng_end is None:
                rng_start = max(rng_start + size, 0)
                count = size - rng_start
            else:
                count = min(rng_end if rng_end is not None else size, size) - rng_start
            if rng_start >= size:
                response = _empty(416)
                response.headers["Content-Range"] = "bytes */%d" % size
                return finish(response)
            start = rng_start
            status = 206
    body = content[start:start + count]
    response = Response(body, status=status)
    response.headers["Content-Type"] = content_type
    response.headers["ETag"] = etag
    response.headers["Last-Modified"] = _http_date(mtime)
    response.headers["Content-Length"] = str(count)
    response.headers["Accept-Ranges"] = "bytes"
    if status == 206:
        response.headers["Content-Range"] = "bytes %d-%d/%d" % (start, start + count - 1, size)
    return finish(response)


# ---------------------------------------------------------------- the web app: a Blueprint of routes

def state() -> OpenCravatServer:
    return current_app.extensions["opencravat"]


api = Blueprint("opencravat", __name__)
SERVER_ENDPOINTS = {"opencravat.login", "opencravat.logout", "opencravat.check_logged", "opencravat.signup"}


def route(rule: str, **options: Any) -> Callable:
    """A route without Flask's automatic OPTIONS answer: aiohttp has none (a 500 instead)."""
    return api.route(rule, provide_automatic_options=False, **options)


# Hooks: the server's middleware, which answers every failure as a 500 with a JSON text.
def answer_routing_error() -> Response | None:
    """Before any view (Flask raises routing errors after the hooks): what aiohttp's router and
    middleware answer for a path or method it has no route for."""
    error = request.routing_exception
    if isinstance(error, MethodNotAllowed):
        return _error500("Method Not Allowed")
    if isinstance(error, NotFound):
        if request.path.startswith(STATIC_PREFIXES):
            if request.method in ("GET", "HEAD"):
                return _empty(404, "application/octet-stream")
            return _error500("Method Not Allowed")
        return _error500("Not Found")
    if isinstance(error, HTTPException):  # e.g. a redirect werkzeug wants to make
        return _error500(error.name)
    if request.endpoint in SERVER_ENDPOINTS and not state().servermode:
        return _error500("Not Found")
    return None


def answer_exception(error: Exception) -> Response:
    if isinstance(error, HandlerError):
        return _error500(str(error))
    if isinstance(error, KeyError):  # werkzeug's BadRequestKeyError too: str() as a dict's
        return _error500(str(KeyError(*error.args[:1])))
    traceback.print_exception(error)  # the real middleware turns any exception into a 500
    return _error500(str(error))


def current_username() -> str | None:
    if not state().servermode:
        return "default"
    token = request.cookies.get(SESSION_COOKIE)
    if token is None:
        return None
    with state().lock:
        return state().sessions.get(token)


def logged_in() -> bool:
    return current_username() not in (None, "")


def take_fault(kind: str) -> bool:
    injector = request.environ.get(ENVIRON_FAULTS)
    return bool(injector and injector.take(kind, request.method, request.path))


def job_or_none(job_id: str) -> Job | None:
    job = state().find_job(current_username(), job_id)
    return None if job is None or job.empty else job


@route("/", methods=["GET"])
def index() -> Response:
    if state().servermode and not logged_in():
        url = "/server/nocache/login.html"
    else:
        url = "/submit/nocache/index.html"
    response = Response("302: Found", status=302, content_type=TEXT_TYPE)
    response.headers["Location"] = url
    return response


@route("/submit/servermode", methods=["GET"])
def servermode() -> Response:
    return _json({"servermode": state().servermode})


@route("/submit/reports", methods=["GET"])
def report_types() -> Response:
    return _json({"valid": valid_report_types()})


@route("/submit/annotators", methods=["GET"], endpoint="annotators")
def installed_annotators() -> Response:
    return _json({name: {"name": name, "version": m.version, "type": m.kind,
                         "title": m.title, "description": m.description,
                         "developer": {"name": "gensvc emulator", "organization": "gensvc",
                                       "email": "", "website": "", "citation": ""}}
                  for name, m in ANNOTATORS.items()})


@route("/submit/submit", methods=["POST"], endpoint="submit")
def submit_job() -> Response:
    server = state()
    if request.content_length is None:
        return _text(json.dumps({"status": "fail", "msg": "Content-Length header required"}),
                     411)
    if request.content_length > server.size_limit_mb * 1024 * 1024:
        raise HandlerError("HTTPRequestEntityTooLarge.__init__() missing 2 required "
                           "positional arguments: 'max_size' and 'actual_size'")
    if server.servermode and not logged_in():
        return _json({"status": "notloggedin"})
    user_dir, job_id, job_dir, now, now_wall = _make_job_dir()
    files, options = _read_submission()
    input_names = [f.name for f in files]
    if not input_names:
        raise HandlerError(MSG_INDEX)
    run_name = input_names[0]
    if len(input_names) > 1:
        run_name += "_and_" + str(len(input_names) - 1) + "_files"
    info = _blank_info(job_id)
    info.update(options)
    info.update(orig_input_fname=input_names, run_name=run_name,
                submission_time=datetime.datetime.now().isoformat(), viewable=False)
    run = _run_command(job_id, job_dir, input_names, options)
    invalid, run_annotators = _invalid_options(run)
    fault = None
    if take_fault("job_error"):
        fault = "job_error"
    elif take_fault("job_abort"):
        fault = "job_abort"
    note_given = "note" in options
    info["status"] = {"status": "Submitted"}
    initial_status = None
    if note_given:
        initial_status = dict(sorted({
            "job_dir": job_dir, "id": job_id, "run_name": run_name, "assembly": run.assembly,
            "db_path": "", "orig_input_fname": input_names,
            "orig_input_path": ["%s/%s" % (job_dir, n) for n in input_names],
            "submission_time": datetime.datetime.now().isoformat(), "viewable": False,
            "note": run.note, "status": "Submitted", "reports": [],
            "open_cravat_version": OPEN_CRAVAT_VERSION, "annotators": run.annotators,
            "cc_cohorts_path": "",
        }.items()))
    job = Job(job_id, user_dir, job_dir, run_name, files, dict(options, note=run.note or ""),
              info, now, now_wall, initial_status, annotators=run_annotators,
              report_types=[str(r) for r in run.reports])
    job.options["forcedinputformat"] = run.forced or None
    job.options["assembly"] = run.assembly
    server.plan(job, run.args, invalid, fault)
    with server.lock:
        server.jobs[user_dir][job_id] = job  # queued: the run happens whatever follows
    if not note_given:
        raise HandlerError(MSG_NOTE_MISSING)
    return _json(info)


def _make_job_dir() -> tuple[str, str, str, float, datetime.datetime]:
    """The job's directory, made before anything of the request is read: (user dir, job id,
    job dir, monotonic now, wall-clock now). A job already there (same second) is taken over."""
    server = state()
    username = current_username()
    user_dir = "admin" if username == "admin" else server.user_dirs(username)[0]
    now_wall = datetime.datetime.now()
    job_id = now_wall.strftime("%y%m%d-%H%M%S")
    job_dir = "%s/%s/%s" % (server.jobs_root, user_dir, job_id)
    now = time.monotonic()
    with server.lock:
        existing = server.jobs.setdefault(user_dir, {}).get(job_id)
        if existing is None:
            # os.makedirs(job_dir): the job directory exists from here on
            server.jobs[user_dir][job_id] = Job(
                job_id, user_dir, job_dir, None, [], {}, {}, now, now_wall, None, empty=True)
    return user_dir, job_id, job_dir, now, now_wall


def _read_submission() -> tuple[list[InputFile], dict]:
    """The multipart body: its `file_N` parts, in order, and the options JSON."""
    if request.mimetype.split("/")[0] != "multipart":
        raise HandlerError("multipart/* content type expected")
    files: list[InputFile] = []
    for name, storage in request.files.items(multi=True):
        if name.startswith("file_"):
            filename = storage.filename or ""
            files.append(InputFile(filename, decode_input(
                filename, storage.read()).splitlines(True)))
    options: dict = {}
    if "options" in request.form:
        options = json.loads(request.form["options"])
    elif "options" in request.files:
        options = json.loads(request.files["options"].read().decode())
    if not isinstance(options, dict):
        raise HandlerError("WebJob.set_values() argument after ** must be a mapping, not %s"
                           % type(options).__name__)
    return files, options


def _blank_info(job_id: str) -> dict[str, Any]:
    """websubmit's job info before its status.json is read into it."""
    return {
        "orig_input_fname": "", "assembly": "", "note": "", "db_path": "",
        "viewable": False, "reports": [], "annotators": "", "annotator_version": "",
        "open_cravat_version": "", "num_input_var": "", "submission_time": "",
        "reports_being_generated": [], "id": job_id,
    }


@dataclass
class RunCommand:
    """The `oc run` command websubmit makes of a submission's options, and what it read."""

    args: list[str]
    annotators: list[str] | str  # "" for every annotator (`-e all`), [] for a package
    assembly: Any
    reports: list
    note: Any
    forced: Any  # forcedinputformat


def _run_command(job_id: str, job_dir: str, input_names: list[str], options: dict) -> RunCommand:
    run_args = ["oc", "run"] + ["%s/%s" % (job_dir, n) for n in input_names]
    annotators_opt = options.get("annotators")
    if options.get("packages"):
        annotators: list[str] | str = []
        run_args += ["--package", str(options["packages"])]
    elif annotators_opt and len(annotators_opt) > 0 and annotators_opt[0] != "":
        if isinstance(annotators_opt, str):
            raise HandlerError("'str' object has no attribute 'sort'")
        annotators_opt.sort()
        annotators = annotators_opt
        run_args += ["-a"] + [str(a) for a in annotators]
    else:
        annotators = ""
        run_args += ["-e", "all"]
    assembly = options.get("assembly", "hg38")
    run_args += ["-l", str(assembly)]
    reports_opt = options.get("reports") or []
    if isinstance(reports_opt, str):
        reports_opt = list(reports_opt)
    if reports_opt:
        run_args += ["-t"] + [str(r) for r in reports_opt]
    note = options.get("note")
    if note:
        run_args += ["--note", str(note)]
    forced = options.get("forcedinputformat")
    if forced:
        run_args += ["--input-format", str(forced)]
    if state().servermode:
        run_args += ["--writeadmindb", "--jobid", job_id]
    run_args.append("--keep-status")
    return RunCommand(run_args, annotators, assembly, reports_opt, note, forced)


def _invalid_options(run: RunCommand) -> tuple[str | None, list[str]]:
    """What `oc run` will make of the command (argparse first, then the module checks): the
    reason it exits before writing anything, or None; and the annotators it would run."""
    invalid = None
    if run.assembly not in ASSEMBLIES:
        invalid = ("oc run: error: argument -l/--liftover: invalid choice: %r (choose from %s)"
                   % (run.assembly, ", ".join(repr(a) for a in ASSEMBLIES)))
    elif run.forced and run.forced not in CONVERTER_FORMATS:
        invalid = ("oc run: error: argument -i/--input-format: invalid choice: %r "
                   "(choose from %s)" % (run.forced, ", ".join(repr(f) for f in CONVERTER_FORMATS)))
    run_annotators: list[str] = []
    if invalid is None and run.annotators:
        names = list(ANNOTATORS) if list(run.annotators) == ["all"] else list(run.annotators)
        for name in names:
            if name not in ANNOTATORS:
                invalid = "Invalid module: %s" % name
                break
        run_annotators = [n for n in names if n in ANNOTATORS]
    if invalid is None:
        for rtype in run.reports:
            if str(rtype) + "reporter" not in REPORTERS:
                invalid = "Invalid module: %sreporter" % rtype
                break
    return invalid, run_annotators


@route("/submit/jobs", methods=["GET"])
def all_jobs() -> Response:
    if state().servermode and not logged_in():
        return _json({"status": "notloggedin"})
    ids: list[str] = []
    with state().lock:
        for user in state().user_dirs(current_username()):
            ids.extend(state().jobs.get(user, {}))
    return _json(sorted(ids, reverse=True))


@route("/submit/jobs/<job_id>", methods=["GET"])
def view_job(job_id: str) -> Response:
    job = job_or_none(job_id)
    if job is None:
        raise HandlerError(MSG_NONE_PLUS_STR)
    return _empty(200) if job.db_exists(time.monotonic()) else _empty(404)


@route("/submit/jobs/<job_id>", methods=["DELETE"])
def delete_job(job_id: str) -> Response:
    username = current_username()
    if username is None:
        raise HandlerError(MSG_NONE_PATH)
    job = state().find_job(username, job_id)
    if job is not None:
        time.sleep(state().config.scaled(state().delete_seconds))
        with state().lock:
            state().jobs.get(job.user, {}).pop(job_id, None)
    return _empty(200)


@route("/submit/jobs/<job_id>/status", methods=["GET"])
def job_status(job_id: str) -> Response:
    job = job_or_none(job_id)
    if job is None:
        raise HandlerError(MSG_NONE_PLUS_STR)
    status = job.status_json(time.monotonic())
    if status is None:  # no status.json yet: no run name can be found
        raise HandlerError(MSG_NONE_PLUS_STR)
    if take_fault("status_null"):
        return _json(None)  # read while `oc run` rewrites the file: `null`
    return _json(status)


@route("/submit/jobs/<job_id>/log", methods=["GET"])
def job_log(job_id: str) -> Response:
    job = job_or_none(job_id)
    text = job.log_text(time.monotonic()) if job is not None and job.status_json(
        time.monotonic()) is not None else None
    return _text(text if text is not None else "log file does not exist.")


@route("/submit/jobs/<job_id>/err", methods=["GET"])
def job_err(job_id: str) -> Response:
    job = job_or_none(job_id)
    text = job.err_text(time.monotonic()) if job is not None and job.status_json(
        time.monotonic()) is not None else None
    if text is None:
        return _text("log file does not exist.")
    return _text(text if text else "No errors")


@route("/submit/jobs/<job_id>/reports", methods=["GET"])
def report_list(job_id: str) -> Response:
    job = job_or_none(job_id)
    if job is None or job.status_json(time.monotonic()) is None:
        return _json([])
    with state().lock:
        return _json(state().existing_report_types(job, time.monotonic()))


@route("/submit/jobs/<job_id>/reports/<report_type>", methods=["POST"])
def generate_report(job_id: str, report_type: str) -> Response:
    job = job_or_none(job_id)
    if job is None or job.status_json(time.monotonic()) is None:
        raise HandlerError(MSG_NONE_PLUS_STR)
    failed = take_fault("report_fail")
    with state().lock:
        job.being_generated.add(report_type)
    try:
        time.sleep(state().config.scaled(state().report_seconds))
        now = time.monotonic()
        if failed or job.conversion is None or not job.db_exists(now):
            return _json("fail")  # `oc report` wrote "<db> not found" to stderr
        content = render_report(report_type, job.conversion, job.annotators,
                                     job.path(job.run_name + ".sqlite"),
                                     datetime.datetime.now(), state().header_lines)
        if content is not None:  # no reporter: `oc report` only says it skipped it
            filename = report_filename(report_type, job.run_name)
            with state().lock:
                job.reports[filename] = (content.encode(), time.time())
        return _json("done")
    finally:
        with state().lock:
            job.being_generated.discard(report_type)


@route("/submit/jobs/<job_id>/reports/<report_type>", methods=["GET"])
def download_report(job_id: str, report_type: str) -> Response:
    job = job_or_none(job_id)
    if job is None or job.status_json(time.monotonic()) is None:
        raise HandlerError(MSG_NONE_ITER)
    filename = report_filename(report_type, job.run_name)
    if filename is None:
        raise HandlerError(MSG_NONE_ITER)
    with state().lock:
        state().materialise_reports(job, time.monotonic())
        found = job.reports.get(filename)
    if found is None:
        raise HandlerError("Not Found")  # web.HTTPNotFound, caught by the middleware
    content, mtime = found
    return file_response(request, filename, content, mtime,
                         {"Content-Disposition": "attachment; filename=" + filename})


@route("/submit/getjobs", methods=["GET"])
def get_jobs() -> Response:
    username = current_username()
    dirs = state().user_dirs(username)
    if not dirs:
        raise HandlerError(MSG_INDEX)
    if "ids" not in request.args:
        raise HandlerError("'ids'")
    ids = json.loads(request.args["ids"])
    now = time.monotonic()
    out = []
    for job_id in ids:
        job = state().find_job(username, str(job_id))
        out.append(job_info(job, str(job_id), username, now))
    return _json(out)


def job_info(job: Job | None, job_id: str, username: str | None, now: float) -> dict:
    """websubmit.get_job: the info dict getjobs answers for one id."""
    info = _blank_info(job_id)
    status = job.status_json(now) if job is not None else None
    if job is None or status is None:
        info["status"] = "Error"
        return info
    info.update(status)
    job_state = info.get("status")
    if job_state not in ("Finished", "Error") and job.run_over(now):
        job_state = "Aborted"  # the run is no longer among the worker's job ids
    info["status"] = job_state
    db = job.db_exists(now)
    info["viewable"] = db
    info["db_path"] = job.path(job.run_name + ".sqlite") if db else ""
    with state().lock:
        info["reports_being_generated"] = sorted(job.being_generated)
        info["reports"] = state().existing_report_types(job, now)
    info["username"] = job.user
    version = [int(p) for p in re.findall(r"\d+", str(info.get("open_cravat_version", "")))]
    info["result_available"] = version >= [1, 7, 0]  # max_version_supported_for_migration
    if isinstance(info.get("annotators"), list):
        info["annotators"] = [a for a in info["annotators"]
                              if a not in ("extra_vcf_info", "extra_variant_info")]
    return info


@route("/submit/annotate", methods=["GET", "POST"], endpoint="annotate")
def annotate_variant() -> Response:
    queries = request.form if request.method == "POST" else request.args
    for key in ("chrom", "pos", "ref_base", "alt_base"):
        if key not in queries:
            raise HandlerError("'%s'" % key)
    try:
        pos = int(queries["pos"])
    except ValueError:
        raise HandlerError("invalid literal for int() with base 10: %r" % queries["pos"]) from None
    annotators = queries["annotators"].split(",") if "annotators" in queries else None
    return _json(live_annotation(queries["chrom"], pos, queries["ref_base"],
                                      queries["alt_base"], queries.get("uid", ""),
                                      annotators))

# Server mode (open-cravat-multiuser).


@route("/server/login", methods=["GET"])
def login() -> Response:
    header = request.headers.get("Authorization")
    if header is None:
        return _json("fail")
    toks = header.split()
    if toks[0] != "Basic" or len(toks) < 2:  # an empty header: IndexError, as the real one
        return _json("fail")
    credential = base64.b64decode(toks[1]).decode().split(":")
    if len(credential) < 2:
        return _json("fail")
    if len(credential) > 2:
        raise HandlerError("too many values to unpack (expected 2)")
    username, password = credential
    with state().lock:
        ok = state().credentials.get(username) == password
    if not ok:
        return _json("fail")
    response = _json("success")
    new_session(response, username)
    return response


def new_session(response: Response, username: str | None) -> None:
    token = "gAAAAA" + secrets.token_urlsafe(48)
    with state().lock:
        state().sessions[token] = username
        if username is not None and username != "admin":
            state().jobs.setdefault(username, {})
    response.set_cookie(SESSION_COOKIE, token, path="/", httponly=True)


@route("/server/logout", methods=["GET"])
def logout() -> Response:
    response = _json("success")
    new_session(response, None)
    return response


@route("/server/checklogged", methods=["GET"])
def check_logged() -> Response:
    username = current_username()
    token = request.cookies.get(SESSION_COOKIE)
    with state().lock:
        logged_out = token in state().sessions and username is None
    if logged_out:  # the session holds username None: `username.startswith('guest_')`
        raise HandlerError("'NoneType' object has no attribute 'startswith'")
    logged = username not in (None, "")
    return _json({"logged": logged, "email": username if logged else "", "days_rem": -1,
                  "admin": logged and username == "admin"})


@route("/server/signup", methods=["GET"])
def signup() -> Response:
    args = request.args
    username = args["username"]
    password = args["password"]
    for key in ("question", "answer"):  # required by the real handler (KeyError -> 500)
        args[key]
    with state().lock:
        if username in state().credentials:
            return _json("Already registered")
        state().credentials[username] = password
    response = _json("Signup successful")
    new_session(response, username)
    return response


def create_app(config: EmulatorConfig | None = None) -> Flask:
    app = Flask("gensvc.emulators.opencravat")
    app.extensions["opencravat"] = OpenCravatServer(config or EmulatorConfig())
    app.url_map.strict_slashes = False  # aiohttp's router: no redirects for a slash
    app.url_map.merge_slashes = False
    app.before_request(answer_routing_error)
    app.register_error_handler(Exception, answer_exception)
    app.register_blueprint(api)
    return app


__all__ = ["BASE_PATH", "DEFAULT_TOKENS", "FAULT_KINDS", "create_app"]
