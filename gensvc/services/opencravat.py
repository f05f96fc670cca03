"""OpenCRAVAT: submit a job, wait for it, fetch its reports, annotate live.

Speaks the web API of ``oc gui`` (aiohttp server), personal or server mode.
Facts about the real server that shape this client (tests/peers/README.md):
application errors are HTTP 500 with a JSON ``{"status": "error", "msg": ...}``
body (not retried: they are answers, not outages); a job's status can read as
``null`` for a moment; a job with options the server cannot run stays
``Submitted`` while ``/submit/getjobs`` calls it ``Aborted``; ``text`` reports
are never listed; job ids are second-resolution timestamps.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from requests.auth import HTTPBasicAuth

from gensvc.core import progress
from gensvc.core.answers import unexpected_shape
from gensvc.core.client import ServiceClient
from gensvc.core.download import download
from gensvc.core.errormap import ErrorMap, Rule
from gensvc.core.jobids import server_job_id
from gensvc.core.poll import JobState, PollPolicy, wait_for_job
from gensvc.core.receipts import idempotency_key, key_tag, submit_job, submitted_epoch, write_json
from gensvc.core.textfiles import is_gzipped, open_binary
from gensvc.errors import AuthError, GensvcError, JobFailed, RequestRejected, UnexpectedAnswer, UsageError
from gensvc.genome_build import AUTO, choose_build
from gensvc.schema import read_receipt
from gensvc.services.spellings import oc_allele
from gensvc.vcfinput import has_vcf_name, starts_as_vcf, vcf_records

log = logging.getLogger("gensvc.opencravat")

ASSEMBLIES = ("hg38", "hg19", "hg18")
JOB_BUILDS = {"GRCh38": "hg38", "GRCh37": "hg19", "NCBI36": "hg18"}  # jobs lift hg19/hg18 over
LIVE_BUILDS = {"GRCh38": "hg38"}  # live annotation maps hg38 only
FAILED = ("Error", "Aborted")
NEVER_LISTED = ("text",)  # the server never lists these among a job's reports


LOGIN_HINT = "set GENSVC_OPENCRAVAT_USER and GENSVC_OPENCRAVAT_PASSWORD"


def _error_message(response) -> str | None:
    """The server's own error, ``{"status": "error", "msg": ...}``; None for any other body."""
    try:
        body = json.loads(response.text)
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("status") == "error":
        return str(body.get("msg", ""))
    return None


ERRORS = ErrorMap("opencravat", message=_error_message, auth_hint=LOGIN_HINT, rules=(
    # the server's application errors come as HTTP 500: an answer about the request, not an outage
    Rule(None, RequestRejected, says="", what="opencravat answered: {message}"),
    Rule(404, RequestRejected, what="opencravat has no such endpoint", hint="check the base URL (GENSVC_OPENCRAVAT_URL)"),
))


class OpenCravatClient(ServiceClient):
    SERVICE = "opencravat"
    ENDPOINTS = {
        "login": "server/login",
        "servermode": "submit/servermode",
        "submit": "submit/submit",
        "jobs": "submit/jobs",
        "getjobs": "submit/getjobs",
        "job": "submit/jobs/{job_id}",
        "status": "submit/jobs/{job_id}/status",
        "log": "submit/jobs/{job_id}/log",
        "reports": "submit/jobs/{job_id}/reports",
        "report": "submit/jobs/{job_id}/reports/{kind}",
        "annotators": "submit/annotators",
        "report_types": "submit/reports",
        "annotate": "submit/annotate",
    }
    ERRORS = ERRORS

    def __init__(self, step, base_url: str | None = None):
        # no auth object: a login's session cookie is what server mode asks for
        super().__init__(step.session, (base_url or step.settings.url).rstrip("/") + "/")
        creds = step.settings.credentials
        self.user, self.password = creds.get("user"), creds.get("password")
        self.logged_in = False

    def login(self) -> None:
        """Server mode: Basic credentials -> session cookie. Personal instances need none."""
        if self.logged_in:
            return
        if not (self.user and self.password):
            if self._server_mode():
                raise AuthError("opencravat server is in server mode and needs a login", where=self.base,
                                hint=LOGIN_HINT)
            return
        answer = self.call("GET", "login", auth=HTTPBasicAuth(self.user.encode(), self.password.encode()))
        if answer != "success":
            raise AuthError(
                f"opencravat login as {self.user!r} failed",
                where=self.url("login"),
                hint="check GENSVC_OPENCRAVAT_USER and GENSVC_OPENCRAVAT_PASSWORD",
            )
        self.logged_in = True

    def _server_mode(self) -> bool:
        try:
            mode = self.call("GET", "servermode")
        except GensvcError:
            return False  # an older server that cannot say: try without a login
        return isinstance(mode, dict) and bool(mode.get("servermode"))

    def answer(self, response):
        """The JSON answer; None for an empty body; AuthError when the server wants a login."""
        if not response.content:
            return None
        body = super().answer(response)
        if isinstance(body, dict) and body.get("status") == "notloggedin":
            raise AuthError("opencravat server is in server mode and needs a login",
                            where=response.url.split("?")[0], hint=LOGIN_HINT)
        return body

    # -- jobs ---------------------------------------------------------------

    def submit(self, files: list[str], options: dict) -> str:
        with ExitStack() as stack:
            parts = {
                f"file_{n}": (Path(path).name, stack.enter_context(open(path, "rb")))
                for n, path in enumerate(files)
            }
            answer = self.call("POST", "submit", files=parts, data={"options": json.dumps(options)})
        where = self.url("submit")
        if not isinstance(answer, dict) or "id" not in answer:
            raise UnexpectedAnswer(f"opencravat sent no job id for the submission (answered {str(answer)[:120]!r})",
                                   where=where, hint="check GENSVC_OPENCRAVAT_URL (it must be an `oc gui` server)")
        return server_job_id(answer["id"], service="opencravat", where=where)

    def status(self, job_id: str) -> str | None:
        """The job's status string; None while the server rewrites the status file (it answers null)."""
        body = self.call("GET", "status", job_id=job_id)
        status = body.get("status") if isinstance(body, dict) else body
        if status is not None and not isinstance(status, str):
            raise unexpected_shape("opencravat", "a job's status", body, self.url("status", job_id=job_id))
        return status

    def jobs(self, ids: list[str]) -> list[dict]:
        if not ids:
            return []
        answer = self.call("GET", "getjobs", params={"ids": json.dumps(ids)}) or []
        if not isinstance(answer, list) or not all(isinstance(job, dict) for job in answer):
            raise unexpected_shape("opencravat", "a list of jobs", answer, self.url("getjobs"))
        return answer

    def job(self, job_id: str) -> dict:
        """What the job list says of one job (its status there can be Aborted when /status is not);
        empty if the server does not list it."""
        return (self.jobs([job_id]) or [{}])[0]

    def job_ids(self) -> list[str]:
        """The user's job ids, each checked before it goes into a URL."""
        where = self.url("jobs")
        answer = self.call("GET", "jobs") or []
        if not isinstance(answer, list):
            raise unexpected_shape("opencravat", "the list of job ids", answer, where)
        return [server_job_id(job_id, service="opencravat", where=where) for job_id in answer]

    def log_text(self, job_id: str) -> str:
        return self.request("GET", "log", job_id=job_id).text

    def listed_reports(self, job_id: str) -> list[str]:
        answer = self.call("GET", "reports", job_id=job_id) or []
        if not isinstance(answer, list):
            raise unexpected_shape("opencravat", "a list of report types", answer, self.url("reports", job_id=job_id))
        return [str(kind) for kind in answer]

    def create_report(self, job_id: str, kind: str) -> str:
        # the server makes the report from the job's results, again if asked again: a
        # lost answer is safe to ask about twice
        with self.session.repeatable():
            return self.call("POST", "report", job_id=job_id, kind=kind)

    def installed(self, name: str):
        """The server's installed annotators (dict) or valid report types (``report_types``);
        None if it will not say."""
        try:
            return self.call("GET", name)
        except GensvcError:
            return None

    def find_job_with(self, tag: str, recent: int = 50, failed_too: bool = False) -> str | None:
        """A live or finished job whose note carries ``tag`` (or a failed one too)."""
        for job in self.jobs(self.job_ids()[:recent]):
            if tag in str(job.get("note", "")) and (failed_too or job.get("status") not in FAILED):
                return server_job_id(job.get("id"), service="opencravat", where=self.url("getjobs"))
        return None


# -- inputs -------------------------------------------------------------------


def is_vcf(path: str) -> bool:
    """A VCF by its name or its first line (a file named .vcf is held to being one)."""
    return has_vcf_name(path) or starts_as_vcf(path)


def check_vcf(path: str, label: str = "files input") -> int:
    """Parse a VCF fully; refuse it saying what is wrong. Returns its record count."""
    return sum(1 for _ in vcf_records(path, label))


def staged_inputs(files: list[str], workdir: str) -> list[str]:
    """Inputs as the server should receive them: VCFs checked, compressed ones unpacked."""
    staged = []
    for path in files:
        if not is_vcf(path):
            staged.append(path)
            continue
        check_vcf(path)
        if not is_gzipped(path):
            staged.append(path)
            continue
        name = Path(path).name.removesuffix(".gz").removesuffix(".bgz")
        plain = Path(workdir) / name
        with open_binary(path) as source, open(plain, "wb") as sink:
            shutil.copyfileobj(source, sink)
        staged.append(str(plain))
    return staged


# -- operations -----------------------------------------------------------------


def submit(step, *, annotators=(), reports=("tsv",), assembly=AUTO, input_format=None, note="") -> dict:
    files = step.input["files"] if isinstance(step.input["files"], list) else [step.input["files"]]
    assembly = choose_build([f for f in files if is_vcf(f)], assembly, served=JOB_BUILDS, fallback="hg38",
                            param="assembly", service="OpenCRAVAT")
    if assembly not in ASSEMBLIES:
        raise UsageError(f"assembly {assembly!r} is not one of {', '.join(ASSEMBLIES)}")
    request = {"annotators": sorted(annotators), "reports": list(reports), "assembly": assembly,
               "input_format": input_format, "note": note}
    key = idempotency_key("opencravat", step.url, "submit", request, {"files": files})
    client = OpenCravatClient(step)
    with tempfile.TemporaryDirectory(prefix="gensvc-oc-") as workdir:
        uploads = staged_inputs(files, workdir)
        client.login()
        _check_modules(client, request)
        options = {"annotators": request["annotators"], "reports": request["reports"], "assembly": assembly,
                   "note": f"{note} [{key_tag(key)}]".strip()}
        if input_format:
            options["forcedinputformat"] = input_format
        return submit_job(step, key, request, find_job=client.find_job_with,
                          submit=lambda: client.submit(uploads, options),
                          reusable=lambda job_id: client.job(job_id).get("status") not in FAILED)


def _check_modules(client: OpenCravatClient, request: dict) -> None:
    """Refuse, before submitting, modules the server says it does not have: it would
    otherwise accept the job and leave it at Submitted for ever."""
    _check_annotators(client, request["annotators"])
    valid = client.installed("report_types")
    if isinstance(valid, dict) and isinstance(valid.get("valid"), list):
        missing = [r for r in request["reports"] if r not in valid["valid"] and r not in NEVER_LISTED]
        if missing:
            raise UsageError(f"report types the server cannot make: {', '.join(missing)}",
                             where=client.base, hint=f"valid: {', '.join(valid['valid'])}")


def _check_annotators(client: OpenCravatClient, names) -> None:
    """Refuse annotators the server says it does not have (a job would never start; live
    annotation would leave them out without a word). A server that will not say is trusted."""
    installed = client.installed("annotators") if names else None
    if isinstance(installed, dict):
        missing = [a for a in names if a not in installed]
        if missing:
            raise UsageError(f"annotators not installed on the server: {', '.join(missing)}",
                             where=client.base, hint=f"installed: {', '.join(sorted(installed)) or 'none'}")


def _client_of_receipt(step) -> tuple[OpenCravatClient, dict]:
    """The receipt input, and a client logged in to the server that holds its job."""
    receipt = read_receipt(step.input["receipt"], "opencravat")
    client = OpenCravatClient(step, receipt["base_url"])
    client.login()
    return client, receipt


def poll(step, *, timeout=86400.0, stuck_after=600.0, first_wait=1.8, max_wait=60.0) -> dict:
    client, receipt = _client_of_receipt(step)
    job_id = receipt["job_id"]
    where = client.url("status", job_id=job_id)
    # /status is never Aborted: a run that died (or never started) keeps its last status
    # for ever, and only the job list says Aborted. So a status unchanged for
    # stuck_after seconds, at any stage, is checked against the job list.
    seen = {"status": None, "since": time.monotonic()}

    def check() -> JobState:
        status = client.status(job_id)
        if status is None:
            return JobState("unknown")  # the server is rewriting the status file: ask again
        now = time.monotonic()
        if status != seen["status"]:
            seen.update(status=status, since=now)
        if status == "Finished":
            # read inside the check: a job list out of reach for a while (a server restarting
            # as the job ends) is a failed check, ridden out as any other
            return JobState(status, finished=True, detail=client.job(job_id))
        if status in FAILED:
            return JobState(status, finished=True)
        if now - seen["since"] > stuck_after:
            return _stalled_job_state(client, job_id, receipt, status, now - seen["since"])
        return JobState(status, progress=stage_progress(status, receipt["request"]))

    state, checks = wait_for_job(check, PollPolicy(first=first_wait, cap=max_wait, timeout=timeout),
                                 what=f"opencravat job {job_id}", where=where,
                                 submitted=submitted_epoch(receipt))
    if state.status != "Finished":
        raise JobFailed(f"opencravat job {job_id} ended {state.status}: {_log_tail(client, job_id)}", where=where,
                        hint="read the job log on the server; fix the input or options and submit again")
    detail = state.detail
    write_json(step.output["status"], {"service": "opencravat", "job_id": job_id, "status": state.status,
                                       "checks": checks, "job": detail})
    return {"job_id": job_id, "checks": checks, "versions": {"open_cravat": detail.get("open_cravat_version")}}


def stage_progress(status: str, request: dict) -> float | None:
    """How far `oc run` has got, from its status string: the stage's place among the stages a
    run with these annotators and reports goes through (converter, mapper, each annotator,
    the four aggregators, post-aggregators, each reporter). None while queued (Submitted) or
    for a status of no known stage. Stages differ in length, so this is a rough share."""
    stages = ["Starting", "Started cravat", "Converter", "mapper"]
    stages += [f"({name})" for name in request.get("annotators") or []]
    stages += ["Aggregator (variant)", "Aggregator (gene)", "Aggregator (sample)", "Aggregator (mapping)",
               "Tag Sampler", "VCF Info"]
    stages += [f"({kind}reporter)" for kind in request.get("reports") or []]
    for place in range(len(stages) - 1, -1, -1):  # the last stage named: "Finished Aggregator (mapping)" too
        if stages[place] in status:
            return (place + 1) / (len(stages) + 1)
    return None


def _stalled_job_state(client, job_id, receipt, status, stalled) -> JobState:
    """The job list's word on a job whose status has not moved for ``stalled`` seconds."""
    job = client.job(job_id)
    if job.get("status") not in FAILED:
        return JobState(status)  # queued behind other jobs, or a long step: keep waiting
    where = client.url("job", job_id=job_id)
    if status == "Submitted":
        request = receipt["request"]
        raise JobFailed(
            f"opencravat job {job_id} stayed Submitted for over {stalled:.0f} s and the server reports it "
            f"{job['status']}: it could not start the job with these options "
            f"(annotators {request.get('annotators')}, reports {request.get('reports')}, "
            f"assembly {request.get('assembly')}, input format {request.get('input_format') or 'automatic'}); "
            f"job log: {_log_tail(client, job_id)}",
            where=where,
            hint="check that every module and the input format are installed on the server",
        )
    raise JobFailed(
        f"opencravat job {job_id} stopped at {status!r} for over {stalled:.0f} s and the server reports it "
        f"{job['status']}: the run ended without finishing (killed, out of memory, or the server restarted); "
        f"job log: {_log_tail(client, job_id)}",
        where=where,
        hint="submit again with the same inputs (a failed job is not reused); if it stops again, read the server's log",
    )


def _log_tail(client, job_id, lines: int = 5) -> str:
    try:
        text = client.log_text(job_id)
    except GensvcError:
        return "(log unavailable)"
    tail = [line.strip() for line in str(text).splitlines() if line.strip()][-lines:]
    return " | ".join(tail) or "(empty log)"


def report(step, *, timeout=3600.0) -> dict:
    client, receipt = _client_of_receipt(step)
    job_id = receipt["job_id"]
    fetched = {}
    for kind, path in step.output.items():
        if kind not in client.listed_reports(job_id) and kind not in NEVER_LISTED:
            answer = client.create_report(job_id, kind)
            if answer != "done":
                raise JobFailed(f"opencravat could not make the {kind} report of job {job_id} (answered {answer!r})",
                                where=client.url("report", job_id=job_id, kind=kind))
            _wait_until_listed(client, job_id, kind, timeout)
        elif kind in NEVER_LISTED:
            client.create_report(job_id, kind)
        got = download(step.session, client.url("report", job_id=job_id, kind=kind), path, check_response=ERRORS.check)
        fetched[kind] = {"bytes": got.size, "sha256": got.sha256, "server_filename": got.server_filename,
                         "content_type": got.content_type, "resumed": got.resumed}
    return {"job_id": job_id, "reports": fetched}


def _wait_until_listed(client, job_id, kind, timeout) -> None:
    def check() -> JobState:
        listed = kind in client.listed_reports(job_id)
        return JobState("ready" if listed else "being made", finished=listed)

    wait_for_job(check, PollPolicy(first=0.5, cap=10.0, timeout=timeout), what=f"{kind} report of job {job_id}",
                 where=client.url("reports", job_id=job_id))


def annotate(step, *, chrom=None, pos=None, ref=None, alt=None, annotators=(), concurrency=4, max_variants=1000,
             format=None, assembly=AUTO) -> dict:
    if "vcf" in step.input:
        choose_build([step.input["vcf"]], assembly, served=LIVE_BUILDS, fallback="hg38", param="assembly",
                     service="OpenCRAVAT live annotation")
    variants = _variants_to_annotate(step, chrom, pos, ref, alt, max_variants)
    client = OpenCravatClient(step)
    _check_annotators(client, list(annotators))
    modules = ",".join(annotators)

    def one(variant):
        params = dict(zip(("chrom", "pos", "ref_base", "alt_base"), variant[4:]))
        if modules:
            params["annotators"] = modules
        answer = client.call("GET", "annotate", params=params)
        if not isinstance(answer, dict):
            raise unexpected_shape("opencravat", "a variant's annotations", answer, client.url("annotate"))
        progress.current().advance()
        return answer

    with progress.report("opencravat annotate", total=len(variants), unit="variant",
                         limiter=step.session.limiter) as reporter, \
            ThreadPoolExecutor(max_workers=max(1, min(int(concurrency), 16))) as pool:
        reporter.plan()
        answers = list(pool.map(one, variants))
    path = step.output["annotations"]
    fmt = format or ("tsv" if path.endswith(".tsv") else "jsonl")
    _write_annotations(path, fmt, variants, answers)
    return {"variants": len(variants), "concurrency": concurrency}


def _variants_to_annotate(step, chrom, pos, ref, alt, max_variants):
    """(input chrom, pos, ref, alt, oc chrom, oc pos, oc ref, oc alt) for every ALT asked about."""
    if "vcf" in step.input:
        if any(v is not None for v in (chrom, pos, ref, alt)):
            raise UsageError("give a vcf input or chrom/pos/ref/alt params, not both")
        variants = [(r.chrom, r.pos, r.ref, a, *oc_allele(r.chrom, r.pos, r.ref, a))
                    for r in vcf_records(step.input["vcf"], "vcf input") for a in (r.alts or ())
                    if not a.startswith("<") and a != "*"]
    elif None in (chrom, pos, ref, alt):
        raise UsageError("give chrom, pos, ref and alt, or a vcf input")
    else:
        variants = [(chrom, int(pos), ref, alt, *oc_allele(chrom, int(pos), ref, alt))]
    if len(variants) > max_variants:
        raise UsageError(f"{len(variants)} variants are too many to annotate one by one (max_variants {max_variants})",
                         hint="use opencravat submit for a whole VCF")
    return variants


def _write_annotations(path, fmt, variants, answers) -> None:
    keys = ("chrom", "pos", "ref", "alt")
    if fmt == "jsonl":
        with open(path, "w") as handle:
            for variant, answer in zip(variants, answers):
                handle.write(json.dumps({**dict(zip(keys, variant[:4])), "annotation": answer}, sort_keys=True) + "\n")
        return
    flat = [_flatten(a) for a in answers]
    columns = sorted({c for row in flat for c in row})
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow([*keys, *columns])
        for variant, row in zip(variants, flat):
            writer.writerow([*variant[:4], *("" if row.get(c) is None else row[c] for c in columns)])


def _flatten(answer) -> dict:
    flat = {}
    for module, columns in (answer or {}).items():
        if isinstance(columns, dict):
            for column, value in columns.items():
                flat[f"{module}.{column}"] = value
    return flat


OPERATIONS = {"submit": submit, "poll": poll, "report": report, "annotate": annotate}
