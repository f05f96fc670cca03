"""CAVATICA tasks: run (create + run, exactly once), poll, abort.

A task's inputs come from the ``inputs`` param: scalars as they are; a file as
``{"manifest": NAME}`` (a file the upload manifest lists; ``{"manifest": true}`` its only
file, or as a list all of them), ``{"id": FILE_ID}`` or ``{"name": NAME}`` (looked up in
the project); a list of those for a list input. The idempotency key goes into the task's
description, so a rerun after a crash finds the task instead of creating another. The
platform's validation ``errors`` end in exit 2, one problem per input.
"""

from __future__ import annotations

import json
import logging
import re
import time

from gensvc.core.jobids import server_job_id
from gensvc.core.poll import JobState, PollPolicy, wait_for_job
from gensvc.core.receipts import idempotency_key, key_tag, make_receipt, submit_once, submitted_epoch, write_json
from gensvc.errors import GensvcError, JobFailed, RequestRejected, ServiceUnavailable, UsageError
from gensvc.schema import read_receipt
from gensvc.services.cavatica_client import CavaticaClient, storage_session

log = logging.getLogger("gensvc.cavatica.tasks")

ENDED = ("COMPLETED", "FAILED", "ABORTED")
LOG_TAIL_LINES = 10
_APP_REVISION = re.compile(r"^(?P<app>[^/]+/[^/]+/[^/]+)(?:/(?P<revision>\d+))?$")


# ---- inputs --------------------------------------------------------------------------


def _manifest_files(step) -> list[dict]:
    paths = step.input.get("manifest")
    if not paths:
        return []
    found = []
    for path in paths if isinstance(paths, list) else [paths]:
        try:
            document = json.loads(open(path).read())
            found.extend(document["files"])
        except (OSError, ValueError, KeyError, TypeError):
            raise UsageError(f"manifest {path} is not a manifest written by cavatica upload") from None
    return found


class InputResolver:
    """Turns the ``inputs`` param into the platform's inputs: files as {class, path}."""

    def __init__(self, client: CavaticaClient, project: str, manifest: list[dict]):
        self.client, self.project, self.manifest = client, project, manifest

    def resolve(self, inputs: dict) -> dict:
        return {name: self.value(name, value) for name, value in inputs.items()}

    def value(self, name: str, value):
        if isinstance(value, list):
            return [item for v in value for item in self._many(name, v)]
        if isinstance(value, dict):
            files = self._many(name, value)
            return files[0] if len(files) == 1 else files
        return value  # a scalar: as it is

    def _many(self, name: str, ref) -> list[dict]:
        if not isinstance(ref, dict) or len(ref) != 1:
            raise UsageError(f"input {name}: {ref!r} is not a file reference",
                             hint='write {"manifest": NAME}, {"id": FILE_ID} or {"name": NAME}')
        (kind, wanted), = ref.items()
        if kind == "id":
            return [_file(str(wanted))]
        if kind == "name":
            found = [f for f in self.client.all("files", {"project": self.project, "name": str(wanted)})
                     if f.get("name") == wanted]
            if not found:
                raise UsageError(f"input {name}: no file named {wanted!r} in project {self.project}",
                                 hint="upload it first (cavatica upload) or give its id")
            return [_file(found[0]["id"])]
        if kind == "manifest":
            if not self.manifest:
                raise UsageError(f"input {name} refers to the manifest, but no manifest input was given")
            if wanted is True:
                return [_file(f["id"]) for f in self.manifest]
            found = [f for f in self.manifest if f.get("name") == wanted]
            if not found:
                listed = ", ".join(f.get("name", "?") for f in self.manifest)
                raise UsageError(f"input {name}: the manifest lists no file {wanted!r} (it lists {listed})")
            return [_file(found[0]["id"])]
        raise UsageError(f"input {name}: {kind!r} is not manifest, id or name")


def _file(file_id: str) -> dict:
    return {"class": "File", "path": file_id}


def _app_with_revision(client: CavaticaClient, app: str, revision) -> tuple[str, int]:
    match = _APP_REVISION.match(app or "")
    if not match:
        raise UsageError(f"app {app!r} is not owner/project/app[/revision]")
    if revision is None and match["revision"] is not None:
        revision = int(match["revision"])
    if revision is None:  # pinned now, so a rerun runs the same revision and the receipt says which
        found = client.resource("GET", "app", "an app", app=match["app"])
        revision = found.get("revision")
        if not isinstance(revision, int):
            raise UsageError(f"cavatica's app {app} has no revision number")
    return match["app"], int(revision)


# ---- run ---------------------------------------------------------------------------------


def _task_id(client: CavaticaClient, task: dict) -> str:
    return server_job_id(task.get("id"), service="cavatica", where=client.url("tasks"))


def _validation_error(task: dict, app: str) -> UsageError:
    problems = []
    for error in task.get("errors") or []:
        if isinstance(error, dict):
            where = error.get("input") or error.get("field") or "task"
            problems.append(f"{where}: {error.get('message', error)}")
        else:
            problems.append(str(error))
    return UsageError(f"cavatica refused the task's inputs for {app}: {'; '.join(problems)}",
                      hint="fix those inputs (see the app's inputs with `gensvc cavatica apps`) and run again")


def _find_task(client: CavaticaClient, project: str, tag: str, failed_too: bool) -> str | None:
    for task in client.all("tasks", {"project": project, "fields": "_all"}):
        if tag in str(task.get("description") or "") and (failed_too or task.get("status") not in ("FAILED", "ABORTED")):
            return _task_id(client, task)
    return None


def run(step, *, project, app, revision=None, inputs=None, name=None, description="") -> dict:
    client = CavaticaClient(step)
    app_id, revision = _app_with_revision(client, app, revision)
    resolved = InputResolver(client, project, _manifest_files(step)).resolve(inputs or {})
    request = {"project": project, "app": f"{app_id}/{revision}", "inputs": resolved, "name": name}
    key = idempotency_key("cavatica", step.url, "run", request, {})
    body = {"project": project, "app": f"{app_id}/{revision}", "inputs": resolved,
            "description": f"{description} {key_tag(key)}".strip()}
    if name:
        body["name"] = name

    def submit() -> str:
        task = client.resource("POST", "tasks", "a task", params={"action": "run"}, json=body)
        task_id = _task_id(client, task)
        if task.get("errors"):
            error = _validation_error(task, f"{app_id}/{revision}")
            try:  # an invalid draft helps no one; a rerun with fixed inputs makes a new task
                client.call("DELETE", "task", task_id=task_id)
            except GensvcError as exc:
                log.warning("could not delete the invalid draft task %s: %s", task_id, exc)
            raise error
        return task_id

    task_id, reused = submit_once(
        step.settings, key, request, session=step.session,
        find_existing=lambda k: _find_task(client, project, key_tag(k), failed_too=False),
        find_sent=lambda k: _find_task(client, project, key_tag(k), failed_too=True),
        submit=submit,
        reusable=lambda task_id: _reusable(client, task_id),
    )
    task = client.resource("GET", "task", "a task", task_id=task_id)
    if task.get("status") == "DRAFT":  # found, but never run (a crash between create and run)
        if task.get("errors"):
            raise _validation_error(task, f"{app_id}/{revision}")
        task = client.resource("POST", "task_run", "a task", task_id=task_id)
    receipt = make_receipt(step.settings, "run", task_id, key, request,
                           versions={"app": app_id, "app_revision": revision})
    receipt["reused"] = reused
    write_json(step.output["receipt"], receipt)
    return {"task_id": task_id, "reused": reused, "status": task.get("status"),
            "versions": {"cavatica_app": f"{app_id}/{revision}"}}


def _reusable(client: CavaticaClient, task_id: str) -> bool:
    try:
        return client.resource("GET", "task", "a task", task_id=task_id).get("status") not in ("FAILED", "ABORTED")
    except RequestRejected:
        return False


# ---- poll ----------------------------------------------------------------------------------


def failure_detail(client: CavaticaClient, step, task_id: str) -> str:
    """The failing job's name, status and the tail of its log: what a user needs to act."""
    try:
        details = client.resource("GET", "execution_details", "a task's execution details", task_id=task_id)
    except GensvcError as exc:
        return f"(execution details unavailable: {exc.what})"
    jobs = [j for j in details.get("jobs") or [] if isinstance(j, dict)]
    failed = [j for j in jobs if j.get("status") == "FAILED"] or jobs[-1:]
    if not failed:
        return str(details.get("message") or "no job ran")
    job = failed[0]
    text = f"job {job.get('name')} {job.get('status')}"
    logs = job.get("logs") if isinstance(job.get("logs"), dict) else {}
    for log_name, url in list(logs.items())[:1]:
        tail = _log_tail(client, step, str(url))
        text += f", {log_name}: {tail}"
    return text


def _log_tail(client: CavaticaClient, step, url: str) -> str:
    try:
        info = client.send("GET", url).json()  # a download_info answer: {"url": presigned}
        got = storage_session(step.settings).get(info["url"])
        if got.status_code != 200:
            return f"(log unavailable: HTTP {got.status_code})"
        lines = [line.strip() for line in got.text.splitlines() if line.strip()]
        return " | ".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"
    except (GensvcError, ValueError, KeyError, TypeError) as exc:
        return f"(log unavailable: {getattr(exc, 'what', exc)})"


def _steps_done(task: dict) -> float | None:
    """The share of a running task's steps completed (execution_status), for the poll's forecast."""
    execution = task.get("execution_status") if isinstance(task.get("execution_status"), dict) else {}
    done, total = execution.get("steps_completed"), execution.get("steps_total")
    if not isinstance(done, int) or not isinstance(total, int) or total <= 0 or done <= 0:
        return None
    return min(done, total) / total


def poll(step, *, timeout=86400.0, first_wait=1.8, max_wait=60.0, abort_on_timeout=False) -> dict:
    receipt = read_receipt(step.input["receipt"], "cavatica")
    client = CavaticaClient(step, receipt["base_url"])
    task_id = receipt["job_id"]
    where = client.url("task", task_id=task_id)

    def check() -> JobState:
        task = client.resource("GET", "task", "a task", task_id=task_id)
        status = str(task.get("status", "unknown"))
        if status == "DRAFT":
            raise UsageError(f"cavatica task {task_id} is a DRAFT that was never run; polling it would never end",
                             where=where, hint="run it (cavatica run with the same params runs it) and poll again")
        return JobState(status, finished=status in ENDED, detail=task, progress=_steps_done(task))

    try:
        state, checks = wait_for_job(check, PollPolicy(first=first_wait, cap=max_wait, timeout=timeout),
                                     what=f"cavatica task {task_id}", where=where,
                                     submitted=submitted_epoch(receipt))
    except ServiceUnavailable as exc:
        if abort_on_timeout and "did not finish within" in exc.what:
            _abort(client, task_id)
            raise ServiceUnavailable(f"{exc.what}; the task was aborted (abort_on_timeout)", where=where,
                                     hint="raise the timeout param and run the task again") from None
        raise
    if state.status != "COMPLETED":
        detail = failure_detail(client, step, task_id) if state.status == "FAILED" else "it was aborted"
        raise JobFailed(f"cavatica task {task_id} ended {state.status}: {detail}", where=where,
                        hint="fix what the job's log names and run the task again")
    write_json(step.output["status"], {"service": "cavatica", "job_id": task_id, "status": state.status,
                                       "checks": checks, "task": state.detail})
    return {"task_id": task_id, "checks": checks, "versions": {"cavatica_app": receipt["request"].get("app")}}


# ---- abort ---------------------------------------------------------------------------------


def _abort(client: CavaticaClient, task_id: str) -> str:
    """Abort; a task that has already ended is left as it is. Returns what happened."""
    task = client.resource("GET", "task", "a task", task_id=task_id)
    if task.get("status") in ENDED:
        return f"already {task['status']}"
    try:
        task = client.resource("POST", "task_abort", "a task", task_id=task_id)
    except RequestRejected:
        task = client.resource("GET", "task", "a task", task_id=task_id)  # it ended in between
        if task.get("status") not in ENDED + ("ABORTING",):
            raise
        return f"already {task['status']}"
    return f"aborted (status {task.get('status')})"


def abort(step) -> dict:
    receipt = read_receipt(step.input["receipt"], "cavatica")
    client = CavaticaClient(step, receipt["base_url"])
    result = _abort(client, receipt["job_id"])
    write_json(step.output["aborted"], {"service": "cavatica", "job_id": receipt["job_id"], "result": result,
                                        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return {"task_id": receipt["job_id"], "result": result}
