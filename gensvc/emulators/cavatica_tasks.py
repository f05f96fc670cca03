"""The CAVATICA emulator's tasks.

- `POST /tasks[?action=run]` `{"name", "project", "app" (with or without a revision: the
  latest), "description", "inputs"}` -> the task (201), DRAFT with its `errors` (one per
  input problem: code, input, message) or, with `action=run` and no errors, QUEUED.
  With errors it stays DRAFT whatever the action (the official client then raises).
- `GET /tasks?project=&status=` (paginated), `GET /tasks/{id}`, `PATCH /tasks/{id}` (a
  DRAFT's name, description, inputs; other states: the name only, else 400 code 7026),
  `DELETE /tasks/{id}` (a DRAFT or finished task, 204).
- `POST /tasks/{id}/actions/run`: a DRAFT only (else 400 code 7007); with errors 400 code
  7024. `POST /tasks/{id}/actions/abort`: QUEUED or RUNNING -> ABORTING, then ABORTED after
  `abort_seconds`; any other state 400 code 7011.
- `GET /tasks/{id}/execution_details`: `{href, start_time, end_time, status, message,
  jobs: [{name, start_time, end_time, status (QUEUED|RUNNING|DONE|FAILED|ABORTED),
  command_line, retried, instance, docker, logs: {"job.err.log": <download_info URL>}}]}`.
- `POST /bulk/tasks/get` `{"task_ids": [...]}`.

Status moves with the clock: QUEUED for `queued_seconds`, RUNNING for `running_seconds`,
then COMPLETED (the app's outputs stored as files in the project root, their
`origin.task` the task) or FAILED (the failing job named, its log a file).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from . import cavatica_apps
from .cavatica_store import CavaticaStore, StoreError, Task, platform_time
from .cavatica_wire import (
    bulk_get_response,
    api_url,
    general_error,
    json_object_body,
    json_response,
    page_response,
    resource_response,
)
from .framework import ENVIRON_FAULTS

tasks_api = Blueprint("cavatica_tasks", __name__)

TASK_STATUSES = ("DRAFT", "CREATING", "QUEUED", "RUNNING", "COMPLETED", "ABORTED", "ABORTING", "FAILED")
ENDED = ("COMPLETED", "FAILED", "ABORTED")


def store() -> CavaticaStore:
    return current_app.extensions["cavatica"]


def current_status(task: Task) -> str:
    """The task's status now; the first look past its end leaves its outputs behind.
    Call with the store's lock held."""
    status = task.status(time.time())
    if status in ENDED and task.settled is None:
        cavatica_apps.settle(store(), task, status)
        status = task.settled
    return status


def _end_time(task: Task, status: str) -> float | None:
    if status not in ENDED:
        return None
    if task.abort_requested is not None:
        return task.abort_requested + task.abort_seconds
    return task.end_at


def task_json(task: Task) -> dict:
    status = current_status(task)
    now = time.time()
    start = task.start_at if task.start_at is not None and now >= task.start_at else None
    end = _end_time(task, status)
    running = status == "RUNNING" or status == "ABORTING"
    steps = max(1, len(task.jobs)) if task.settled else 2
    done = sum(1 for job in task.jobs if not job.failed)
    out = {
        "href": api_url(f"/tasks/{task.id}"), "id": task.id, "name": task.name,
        "status": status, "description": task.description, "project": task.project,
        "app": task.app, "type": "v2", "created_by": task.created_by,
        "executed_by": task.created_by if task.run_at is not None else None,
        "created_time": platform_time(task.created_time),
        "start_time": platform_time(start) if start is not None else None,
        "end_time": platform_time(end) if end is not None else None,
        "batch": False, "batch_by": None, "batch_group": None, "batch_input": None,
        "parent": None, "origin_id": None,
        "execution_status": {
            "steps_completed": done if task.settled else 0, "steps_total": steps,
            "message": task.execution_message or status.capitalize(),
            "queued": 1 if status == "QUEUED" else 0, "running": 1 if running else 0,
            "completed": done if task.settled else 0,
            "failed": 1 if status == "FAILED" else 0, "aborted": 1 if status == "ABORTED" else 0,
            "system_limit": False, "account_limit": False, "instance_init": False,
            "queued_duration": int(1000 * task.queued_seconds) if start is not None else None,
            "running_duration": int(1000 * ((end or now) - start)) if start is not None else None,
            "execution_duration": int(1000 * ((end or now) - start)) if start is not None else None,
            "duration": int(1000 * ((end or now) - task.run_at)) if task.run_at is not None else None,
        },
        "errors": list(task.errors), "warnings": list(task.warnings),
        "price": {"currency": "USD", "amount": "0.01" if task.settled else "0.00",
                  "breakdown": {"storage": "0.00", "computation": "0.01" if task.settled else "0.00"}},
        "inputs": task.inputs, "outputs": dict(task.outputs) if status == "COMPLETED" else {},
        "execution_settings": {"instance_type": "c5.2xlarge;ebs-gp2;1024",
                               "max_parallel_instances": 1, "use_memoization": False,
                               "use_elastic_disk": False},
        "output_location": {}, "use_interruptible_instances": False,
    }
    return out


def _take_fault(kind: str):
    faults = request.environ.get(ENVIRON_FAULTS)
    return faults.take(kind, request.method, request.path) if faults is not None else None


def _start(task: Task) -> None:
    timing = store().timing
    task.run_at = time.time()
    task.queued_seconds = timing["queued_seconds"]
    task.running_seconds = timing["running_seconds"]
    task.abort_seconds = timing["abort_seconds"]
    fault = _take_fault("task_fail")
    if fault is not None:
        task.fail_message = str(fault.options.get("message", "the app's command failed (injected fault)"))


def _inputs(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise general_error(400, "Bad request: inputs must be a JSON object.")
    return value


@tasks_api.route("/tasks", methods=["POST"])
def create_task():
    body = json_object_body()
    action = request.args.get("action")
    if action not in (None, "run"):
        raise StoreError(400, 7013, "Invalid task action.")
    app_id = body.get("app")
    if not isinstance(app_id, str) or not app_id:
        raise StoreError(400, 7015, "App Id must not be null or an empty string.")
    app = cavatica_apps.find_app(app_id)
    state = store()
    with state.lock:
        project = state.project(str(body.get("project", "")))
        inputs = _inputs(body.get("inputs"))
        name = body.get("name") or f"{app.name} run - {platform_time(time.time())}"
        task = Task(id=str(uuid.uuid4()), name=str(name), project=project.id,
                    app=f"{app.id}/{app.revision}", app_revision=app.revision, inputs=inputs,
                    description=body.get("description"), created_by=g.username,
                    errors=cavatica_apps.input_errors(state, app, inputs, project.id))
        state.add_task(task)
        if action == "run" and not task.errors:
            _start(task)
        return resource_response(task_json(task), "task", 201)


@tasks_api.route("/tasks", methods=["GET"])
def list_tasks():
    project = request.args.get("project")
    status = request.args.get("status")
    if status is not None and status not in TASK_STATUSES:
        raise StoreError(400, 7006, "Invalid task status. Allowed values: [QUEUED, DRAFT, RUNNING, "
                                    "COMPLETED, ABORTED, ABORTING, FAILED]")
    state = store()
    with state.lock:
        if project is not None:
            state.project(project)
        tasks = [task for task in state.tasks.values()
                 if (project is None or task.project == project)
                 and (status is None or current_status(task) == status)]
        return page_response(tasks, "task", task_json)


@tasks_api.route("/tasks/<task_id>", methods=["GET"])
def get_task(task_id: str):
    with store().lock:
        return resource_response(task_json(store().task(task_id)), "task")


@tasks_api.route("/tasks/<task_id>", methods=["PATCH"])
def update_task(task_id: str):
    body = json_object_body()
    state = store()
    with state.lock:
        task = state.task(task_id)
        draft = current_status(task) == "DRAFT"
        if not draft and set(body) - {"name"}:
            raise StoreError(400, 7026, "Editing is available only for tasks which are in DRAFT status. "
                                        "Tasks which are in RUNNING and COMPLETED states can only be renamed.")
        if "name" in body:
            task.name = str(body["name"])
        if "description" in body:
            task.description = body["description"]
        if "inputs" in body:
            task.inputs = {**task.inputs, **_inputs(body["inputs"])}
            task.errors = cavatica_apps.input_errors(
                state, cavatica_apps.find_app(task.app), task.inputs, task.project)
        return resource_response(task_json(task), "task")


@tasks_api.route("/tasks/<task_id>", methods=["DELETE"])
def delete_task(task_id: str):
    state = store()
    with state.lock:
        task = state.task(task_id)
        if current_status(task) not in ("DRAFT",) + ENDED:
            raise StoreError(400, 7009, "Invalid task action. Action can be performed only on DRAFT "
                                        "or RUNNING tasks.")
        del state.tasks[task.id]
    return Response(status=204)


@tasks_api.route("/tasks/<task_id>/actions/run", methods=["POST"])
def run_task(task_id: str):
    with store().lock:
        task = store().task(task_id)
        if current_status(task) != "DRAFT":
            raise StoreError(400, 7007, "This action is only available for DRAFT tasks.")
        if task.errors:
            raise StoreError(400, 7024, "Task cannot be started due to validation errors.")
        _start(task)
        return resource_response(task_json(task), "task")


@tasks_api.route("/tasks/<task_id>/actions/abort", methods=["POST"])
def abort_task(task_id: str):
    with store().lock:
        task = store().task(task_id)
        if current_status(task) not in ("QUEUED", "RUNNING"):
            raise StoreError(400, 7011, "Invalid task action. Action can be performed on tasks in the "
                                        "states: CREATING, RUNNING or QUEUED.")
        task.abort_requested = time.time()
        return resource_response(task_json(task), "task")


def _job_json(task: Task, index: int, job, status: str) -> dict:
    start = task.start_at
    end = _end_time(task, status)
    return {"name": job.name, "start_time": platform_time(start),
            "end_time": platform_time(end) if end is not None else None,
            "status": "FAILED" if job.failed else "DONE",
            "command_line": job.command_line, "retried": False,
            "instance": {"id": f"i-{task.id[:17].replace('-', '')}", "type": "c5.2xlarge",
                         "provider": "AWS", "disk": {"size": 1024, "unit": "GB", "type": "gp2"}},
            "docker": {"checksum": "sha256:" + ("%064x" % (index + 1))},
            "logs": {"job.err.log": api_url(f"/files/{job.log_file}/download_info")}}


@tasks_api.route("/tasks/<task_id>/execution_details", methods=["GET"])
def execution_details(task_id: str):
    with store().lock:
        task = store().task(task_id)
        status = current_status(task)
        start, end = task.start_at, _end_time(task, status)
        if task.settled and task.jobs:
            jobs = [_job_json(task, index, job, status) for index, job in enumerate(task.jobs)]
        elif status in ("RUNNING", "ABORTING", "ABORTED"):
            job_status = "ABORTED" if status == "ABORTED" else "RUNNING"
            jobs = [{"name": "run-app", "start_time": platform_time(start),
                     "end_time": platform_time(end) if end is not None else None,
                     "status": job_status, "command_line": task.app, "retried": False,
                     "instance": {"id": "i-0", "type": "c5.2xlarge", "provider": "AWS",
                                  "disk": {"size": 1024, "unit": "GB", "type": "gp2"}},
                     "docker": {"checksum": "sha256:" + "0" * 64}, "logs": {}}]
        else:
            jobs = []
        return json_response({
            "href": api_url(f"/tasks/{task.id}/execution_details"),
            "start_time": platform_time(start) if start is not None and status != "QUEUED" else None,
            "end_time": platform_time(end) if end is not None else None,
            "status": status, "message": task.execution_message or status.capitalize(),
            "jobs": jobs})


@tasks_api.route("/bulk/tasks/get", methods=["POST"])
def bulk_get_tasks():
    return bulk_get_response("task_ids", store().task, task_json, store().lock)
