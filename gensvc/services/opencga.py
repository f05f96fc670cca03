"""OpenCGA operations: upload files into a study, index them (a job), poll the job, query the
variants back, search the catalog. The client is gensvc.services.opencga_client.

Idempotency: an upload reuses a file of the same name and size in the same folder; an index
job carries the idempotency tag in its tags (``jobTags``), so a rerun after a crash finds the
job instead of starting a second one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gensvc.core import progress
from gensvc.core.answers import unexpected_shape
from gensvc.core.files import file_sha256
from gensvc.core.jobids import server_job_id
from gensvc.core.multipart import MultipartFile
from gensvc.core.poll import JobState, PollPolicy, wait_for_job
from gensvc.core.receipts import idempotency_key, key_tag, send_submission, submit_job, submitted_epoch, write_json
from gensvc.errors import GensvcError, JobFailed, RequestRejected, UnexpectedAnswer, UsageError
from gensvc.schema import read_receipt
from gensvc.services.opencga_client import ACTIVE, ERRORS, OpencgaClient, first_result
from gensvc.services.opencga_records import CATALOG_COLUMNS, CatalogWriter, VariantWriter

log = logging.getLogger("gensvc.opencga")

FAILED = ("ERROR", "ABORTED", "UNKNOWN")
CONTENT_MARK = "{sha256}"
# the query's named params and the server's spelling of each
QUERY_PARAMS = {"id": "id", "region": "region", "gene": "gene", "type": "type", "sample": "sample",
                "genotype": "genotype", "file": "file", "filter": "filter", "qual": "qual", "ct": "ct",
                "biotype": "biotype", "xref": "xref", "population_frequency_alt": "populationFrequencyAlt",
                "clinical_significance": "clinicalSignificance", "panel": "panel"}
SEARCH_ENDPOINTS = {resource: resource for resource in CATALOG_COLUMNS}
__all__ = ["ERRORS", "OPERATIONS"]  # the runner builds the session with ERRORS.is_final


def _listed(value) -> str:
    """A param's value as OpenCGA reads it: lists comma-joined, booleans true/false."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(_listed, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _folder(folder: str) -> str:
    """``relativeFilePath`` as OpenCGA takes it: no leading ``/``, ending in ``/`` (root: empty)."""
    folder = str(folder or "").strip()
    if folder in ("", ".", "./", "/"):
        return ""
    if folder.startswith("/") or ".." in folder.split("/") or ("{" in folder.replace(CONTENT_MARK, "")):
        raise UsageError(f"folder {folder!r} must be relative to the study's root, without '..' (and no "
                         f"braces but {CONTENT_MARK})", hint="e.g. folder: data/")
    return folder if folder.endswith("/") else folder + "/"


# ---- upload --------------------------------------------------------------------------------


def find_file(client: OpencgaClient, study: str, path: str) -> dict | None:
    found = client.results("GET", "files", params={"study": study, "path": path, "limit": 2})
    return next((f for f in found if isinstance(f, dict) and f.get("path") == path), None)


def upload(step, *, study, folder="data", format=None, bioformat=None, parents=True, description="") -> dict:
    paths = step.input["files"]
    paths = paths if isinstance(paths, list) else [paths]
    folder = _folder(folder)
    names = [Path(p).name for p in paths]
    if len(set(names)) != len(names):
        raise UsageError("two input files have the same name; they would land on one path in the study",
                         hint="rename one, or upload them to different folders")
    client = OpencgaClient(step)
    uploaded = []
    for path, name in zip(paths, names):
        size = Path(path).stat().st_size
        # "{sha256}" in the folder: a changed file goes to a folder of its own, not onto the old one
        where = folder.replace(CONTENT_MARK, file_sha256(path)[:16]) if CONTENT_MARK in folder else folder
        target = where + name
        existing = find_file(client, study, target)
        if existing is not None and existing.get("size") != size:
            raise UsageError(f"{target} already exists in study {study} with {existing.get('size')} bytes, "
                             f"not the {size} of {path}", where=client.host,
                             hint="give another folder or file name, or delete the file in OpenCGA")
        reused = existing is not None
        if existing is None:
            fields = {"study": study, "name": name, "relativeFilePath": where, "parents": str(bool(parents)).lower(),
                      "description": description}
            fields.update({k: v for k, v in (("format", format), ("bioformat", bioformat)) if v})

            def send(fields=fields, path=path, name=name) -> dict:
                body = MultipartFile(fields, "file", path, name)
                try:
                    record = first_result(client.call("POST", "upload", data=body,
                                                      headers={"Content-Type": body.content_type}), client.url("upload"))
                finally:
                    body.close()
                if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                    raise unexpected_shape("opencga", "the uploaded File", record, client.url("upload"))
                if isinstance(record.get("size"), int) and record["size"] != size:
                    # what it holds is not what was sent: a file cut short (or padded) on the way
                    raise UnexpectedAnswer(f"opencga holds {target} as {record['size']} bytes, but {size} were sent",
                                           where=client.url("upload"),
                                           hint="delete the file in OpenCGA and upload it again")
                return record

            def sent(target=target) -> dict | None:
                found = find_file(client, study, target)
                return found if found is not None and found.get("size") == size else None

            try:
                existing, _ = send_submission(step.session, send, sent)
                log.info("uploaded %s to %s as %s", path, study, existing.get("id"))
            except RequestRejected:
                # refused as already there: a run killed a moment ago, its request still with the
                # server, made the file after we looked; the same size is the same file, as above
                existing = sent()
                if existing is None:
                    raise
                reused = True
                log.info("%s was already there when uploaded (%s, made by an earlier run's request): reused",
                         target, existing.get("id"))
        else:
            log.info("%s is already in %s (%d bytes): reused", target, study, size)
        uploaded.append({"input": str(path), "name": name, "path": existing.get("path", target),
                         "id": existing.get("id"), "uuid": existing.get("uuid"), "size": size, "reused": reused})
    write_json(step.output["manifest"], {"service": "opencga", "base_url": client.host, "study": study,
                                         "folder": folder, "files": uploaded})
    return {"files": len(uploaded), "reused": sum(f["reused"] for f in uploaded), "study": study}


# ---- index ---------------------------------------------------------------------------------


def _read_manifest(path: str) -> dict:
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read manifest {path}: {exc}", hint="give the manifest written by opencga upload") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list) or manifest.get("service") != "opencga" or \
            not all(isinstance(f, dict) and isinstance(f.get("id"), str) for f in files):
        raise UsageError(f"manifest {path} is not one written by opencga upload",
                         hint="give the manifest written by opencga upload, unchanged")
    return manifest


def _job_status(job: dict) -> str:
    status = ((job.get("internal") or {}).get("status") or {}) if isinstance(job, dict) else {}
    return str(status.get("id") or "UNKNOWN")


def index(step, *, study=None, files=None, options=None, description="") -> dict:
    options = dict(options or {})
    if "file" in options:
        raise UsageError("options must not hold file: give the files by the manifest input or the files param")
    if "manifest" in step.input:
        manifest = _read_manifest(step.input["manifest"])
        study = study or manifest.get("study")
        file_ids = [f["id"] for f in manifest["files"]]
    else:
        file_ids = [str(f) for f in (files if isinstance(files, list) else [files] if files else [])]
    if not file_ids:
        raise UsageError("opencga index needs a manifest input (from opencga upload) or a files param")
    if not study:
        raise UsageError("opencga index needs a study param (or a manifest that names one)")
    client = OpencgaClient(step)
    request = {"study": study, "files": file_ids, "options": options}
    key = idempotency_key("opencga", step.url, "index", request, {})
    tag = key_tag(key)

    def find_job(tag: str, failed_too: bool = False) -> str | None:
        jobs = client.results("GET", "jobs", params={"study": study, "tags": tag, "limit": 100})
        for job in jobs:
            if failed_too or _job_status(job) not in FAILED:
                return server_job_id(job.get("id"), service="opencga", where=client.url("jobs"))
        return None

    def submit() -> str:
        params = {"study": study, "jobTags": tag, "jobDescription": f"{description} {tag}".strip()}
        job = first_result(client.call("POST", "index", params=params, json={"file": ",".join(file_ids), **options}),
                           client.url("index"))
        return server_job_id(job.get("id") if isinstance(job, dict) else job, service="opencga",
                             where=client.url("index"))

    def reusable(job_id: str) -> bool:
        try:
            return _job_status(_job(client, study, job_id)) not in FAILED
        except RequestRejected:
            return False

    details = submit_job(step, key, request, find_job=find_job, submit=submit, reusable=reusable)
    version = client.version()
    return {**details, "versions": {"opencga": version} if version else {}}


def _job(client: OpencgaClient, study: str, job_id: str) -> dict:
    job = first_result(client.call("GET", "job", job_id=job_id, params={"study": study}), client.url("job", job_id=job_id))
    if not isinstance(job, dict):
        raise RequestRejected(f"opencga has no job {job_id}", where=client.url("job", job_id=job_id))
    return job


# ---- poll ----------------------------------------------------------------------------------


def log_tail(client: OpencgaClient, study: str, job_id: str, lines: int = 5) -> list[str]:
    for stream in ("stderr", "stdout"):
        content = first_result(client.call("GET", "job_log", job_id=job_id,
                                           params={"study": study, "lines": lines, "type": stream}),
                               client.url("job_log", job_id=job_id))
        text = content.get("content", "") if isinstance(content, dict) else ""
        found = [line.strip() for line in str(text).splitlines() if line.strip()]
        if found:
            return found[-lines:]
    return []


def poll(step, *, timeout=86400.0, first_wait=1.8, max_wait=60.0) -> dict:
    receipt = read_receipt(step.input["receipt"], "opencga")
    client = OpencgaClient(step, receipt["base_url"])
    job_id, study = receipt["job_id"], receipt["request"].get("study")
    where = client.url("job", job_id=job_id)

    def check() -> JobState:
        job = _job(client, study, job_id)
        status = _job_status(job)
        return JobState(status, finished=status not in ACTIVE, detail=job)

    state, checks = wait_for_job(check, PollPolicy(first=first_wait, cap=max_wait, timeout=timeout),
                                 what=f"opencga job {job_id}", where=where,
                                 submitted=submitted_epoch(receipt))
    if state.status != "DONE":
        reason = ((state.detail.get("internal") or {}).get("status") or {}).get("description") or "(no description)"
        try:
            tail = log_tail(client, study, job_id)
        except GensvcError as exc:  # the job failed whatever its log says
            tail = [f"(log unavailable: {exc.what})"]
        raise JobFailed(f"opencga job {job_id} ended {state.status}: {reason}; log: {' | '.join(tail) or '(empty)'}",
                        where=where, hint="fix what the job's error names, then index again")
    write_json(step.output["status"], {"service": "opencga", "job_id": job_id, "study": study,
                                       "status": state.status, "checks": checks, "job": state.detail})
    version = ((state.detail.get("internal") or {}).get("status") or {}).get("version")
    return {"job_id": job_id, "checks": checks, "versions": {"opencga": version} if version else {}}


# ---- query and search ----------------------------------------------------------------------


def query(step, *, study, format="tsv", page_size=1000, filters=None, **named) -> dict:
    params = {"study": study}
    for name, value in named.items():
        if value not in (None, "", []):
            params[QUERY_PARAMS[name]] = _listed(value)
    for name, value in (filters or {}).items():
        if name in ("skip", "limit", "count", "study"):
            raise UsageError(f"filters must not set {name}: gensvc pages the query itself")
        params[name] = _listed(value)
    if "status" in step.input:
        job = _check_done(step.input["status"])
        if "file" not in params:  # the files the job indexed, not every file of the study
            params["file"] = ",".join(f["id"] for f in job.get("input") or [] if isinstance(f, dict) and f.get("id"))
    client = OpencgaClient(step)
    with open(step.output["variants"], "w") as handle, \
            progress.report(f"opencga query {study}", unit="variant") as reporter:
        writer = VariantWriter(handle, format)
        for page in client.pages("variants", params, page_size):
            writer.write(page)
            reporter.advance(len(page))
        writer.close()
    log.info("%d variants from %s", writer.count, study)
    version = client.version()
    return {"variants": writer.count, "versions": {"opencga": version} if version else {}}


def _check_done(path: str) -> dict:
    """The job of a status written by opencga poll, if it ended DONE; else UsageError."""
    try:
        status = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read status {path}: {exc}", hint="give the status written by opencga poll") from None
    if not isinstance(status, dict) or status.get("service") != "opencga" or status.get("status") != "DONE":
        raise UsageError(f"status {path} is not that of an opencga job that ended DONE",
                         hint="give the status written by opencga poll")
    return status.get("job") if isinstance(status.get("job"), dict) else {}


def search(step, *, resource, study=None, project=None, format="tsv", page_size=1000, filters=None) -> dict:
    params = {}
    if resource == "studies":
        if not project:
            raise UsageError("opencga search studies needs a project param")
        params["project"] = project
    elif resource != "projects":
        if not study:
            raise UsageError(f"opencga search {resource} needs a study param")
        params["study"] = study
    for name, value in (filters or {}).items():
        if name in ("skip", "limit", "count"):
            raise UsageError(f"filters must not set {name}: gensvc pages the search itself")
        params[name] = _listed(value)
    client = OpencgaClient(step)
    with open(step.output["results"], "w") as handle, \
            progress.report(f"opencga search {resource}", unit="record") as reporter:
        writer = CatalogWriter(handle, format, resource)
        for page in client.pages(SEARCH_ENDPOINTS[resource], params, page_size):
            writer.write(page)
            reporter.advance(len(page))
        writer.close()
    return {"resource": resource, "results": writer.count}


OPERATIONS = {"upload": upload, "index": index, "poll": poll, "query": query, "search": search}
