"""The fault matrix for CAVATICA: upload, run, poll and download, each against every fault
of tests/reliability/faults.py plus the platform's own maintenance 503 (`{"code": 0}`, JSON),
over HTTP to the CAVATICA emulator.

Where each operation is hit: upload at the POST that completes it (the request that makes
the file: a lost answer must not make a second one), run at the POST that creates the task,
poll at the task's GET, download at the storage's GET of the bytes (the platform's maintenance
answer comes from the API, so there it hits the file's GETs under /v2/files).

Bounded: the operation succeeds, its output is the clean run's (ids and times aside), and the
platform holds one file / one task for it. Unbounded: one clear line, the exit the catalogue
says, no output and no file left behind, at most max_attempts requests to the faulted path
(a poll: at most max_attempts per check), one for a 4xx.

A submission whose answer is lost after the platform acted (drop-after, truncated, stall on
the upload's complete and the run's create) is found again by its tag: unbounded, it ends in
success with one file / one task, so those cells count as survived, not refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import pytest
import requests

from helpers import isolated_env
from tests.reliability.conftest import cases
from tests.reliability.faults import (
    BOUNDED_COUNT,
    FAULTS,
    Cell,
    Emulated,
    Fault,
    assert_refused_cleanly,
    assert_requests_bounded,
    assert_same_outputs,
    cell_settings,
    files_under,
    matrix,
    params,
    read_outputs,
    requests_to,
    run_cli,
    run_under_fault,
)

SERVICE = "cavatica"
TOKEN = "cavatica-faults-token-7c21"
PROJECT = "gensvc-demo/demo-project"
APP = "gensvc-demo/apps/vcf-score/1"
VCF = ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       "chr7\t140753336\t.\tA\tT\t.\tPASS\t.\nchr12\t25245350\t.\tC\tA,T\t.\tPASS\t.\n")
POLL_TIMEOUT = 3.0
POLL_FIRST_WAIT = 0.1

# the platform's maintenance answer: 503, {"code": 0, ...}, application/json (the emulator's kind)
MAINTENANCE = Fault("maintenance-503", "service", {"kind": "maintenance"})


def _cavatica_faults() -> tuple[Fault, ...]:
    rows = []
    for fault in FAULTS:
        if fault.name == "429-bare":
            # a 429 with no hint: gensvc takes the shared window as spent and waits it out, so
            # the window is made short (the platform's is 5 minutes)
            fault = dataclasses.replace(fault, settings={**fault.settings, "RATE_LIMIT": "1000/1"})
        if fault.name == "job-fails":
            fault = dataclasses.replace(fault, fault={"kind": "task_fail", "message": "exit code 137 (injected)"})
        rows.append(fault)
    return (*rows, MAINTENANCE)


OPERATIONS = ("upload", "run", "poll", "download")
# (path glob, method) of the request each operation is hit at
TARGETS = {
    "upload": ("/v2/upload/multipart/*/complete", "POST"),
    "run": ("/v2/tasks", "POST"),
    "poll": ("/v2/tasks/*", "GET"),
    "download": ("/storage/files/*", "GET"),
}
# the platform's own answers come from its API, not from the storage
SERVICE_TARGETS = {**TARGETS, "download": ("/v2/files/*", "GET")}
# the storage's refusals of a presigned URL are not the user's credentials or call: exit 5
# ("run it again"), and never retried
EXITS = {("download", name): 5 for name in ("400", "401", "403", "404")}
# the writes: a lost answer after the platform acted is found again (by name and size, by tag)
WRITES = ("upload", "run")
# an unbounded fault on a submission's answer after the platform acted: found again by its tag
SURVIVED_UNBOUNDED = {(op, name) for op in ("upload", "run") for name in ("drop-after", "truncated", "stall")}

CELLS = matrix(SERVICE, OPERATIONS, _cavatica_faults(),
               survives=lambda operation, fault: (operation, fault.name) in SURVIVED_UNBOUNDED)
XFAIL: dict[str, str] = {}
PARAMS = params(CELLS, XFAIL)


# ---- the platform ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulated():
    emulator = Emulated(SERVICE, tokens=[TOKEN], time_scale=0.01)
    yield emulator
    emulator.close()


def api(emulated, method, path, **kwargs):
    response = requests.request(method, f"{emulated.url}{path}", headers={"X-SBG-Auth-Token": TOKEN},
                                timeout=10, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def files_named(emulated, name) -> list[dict]:
    return [f for f in api(emulated, "GET", "/files", params={"project": PROJECT, "name": name, "fields": "_all"})["items"]
            if f["name"] == name]


def tasks_tagged(emulated, key) -> list[dict]:
    tag = f"gensvc:{key[:32]}"
    items = api(emulated, "GET", "/tasks", params={"project": PROJECT, "fields": "_all", "limit": 100})["items"]
    return [t for t in items if tag in str(t.get("description"))]


def stored_bytes(emulated, file_id) -> bytes:
    url = api(emulated, "GET", f"/files/{file_id}/download_info")["url"]
    return requests.get(url, timeout=10).content


def new_vcf(directory: Path, label: str) -> Path:
    # a name of its own per cell (the project outlives a cell), the same bytes for all
    path = directory / f"{label}-{time.monotonic_ns()}.vcf"
    path.write_text(VCF)
    return path


def upload_through_api(emulated, path: Path) -> str:
    data = path.read_bytes()
    upload = api(emulated, "POST", "/upload/multipart",
                 json={"project": PROJECT, "name": path.name, "size": len(data), "part_size": 5 << 20})
    part = api(emulated, "GET", f"/upload/multipart/{upload['upload_id']}/part/1")
    etag = requests.put(part["url"], data=data, timeout=10).headers["ETag"].strip('"')
    api(emulated, "POST", f"/upload/multipart/{upload['upload_id']}/part/",
        json={"part_number": 1, "response": {"headers": {"ETag": etag}}})
    return api(emulated, "POST", f"/upload/multipart/{upload['upload_id']}/complete")["id"]


def start_task(emulated, file_id: str, name: str) -> dict:
    return api(emulated, "POST", "/tasks", params={"action": "run"},
               json={"project": PROJECT, "app": APP, "name": name, "inputs": {"input_vcf": {"class": "File", "path": file_id}}})


def wait_until_ended(emulated, task_id: str) -> dict:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        task = api(emulated, "GET", f"/tasks/{task_id}")
        if task["status"] in ("COMPLETED", "FAILED", "ABORTED"):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not end")


def write_receipt(path: Path, emulated, task_id: str) -> None:
    path.write_text(json.dumps({
        "service": "cavatica", "operation": "run", "base_url": emulated.url + "/", "job_id": task_id,
        "idempotency_key": hashlib.sha256(task_id.encode()).hexdigest(), "submitted_at": "2026-01-01T00:00:00+00:00",
        "request": {"app": APP}, "versions": {"gensvc": "0"}}))


@pytest.fixture(scope="module")
def input_file(emulated, tmp_path_factory) -> str:
    """A VCF on the platform that tasks are run on."""
    return upload_through_api(emulated, new_vcf(tmp_path_factory.mktemp("input"), "input"))


@pytest.fixture(scope="module")
def finished_task(emulated, input_file) -> str:
    """A COMPLETED task, what every download cell fetches the output of."""
    task = start_task(emulated, input_file, "download source")
    assert wait_until_ended(emulated, task["id"])["status"] == "COMPLETED"
    return task["id"]


# ---- one operation -----------------------------------------------------------------------


class Operation:
    """One run of an operation kind in ``directory``: its command, outputs and what the
    platform holds afterwards."""

    def __init__(self, kind: str, directory: Path, emulated, input_file: str, finished_task: str, label: str,
                 failing: bool = False):
        self.kind, self.directory, self.emulated = kind, directory, emulated
        self.out = directory / "out"
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = directory / "logs" / f"{kind}.log"
        self.label = label
        if kind == "upload":
            self.vcf = new_vcf(directory, label)
            self.outputs = [self.out / "manifest.json"]
            self.args = ["cavatica", "upload", "--project", PROJECT, "--input", f"files={self.vcf}",
                         "--output", f"manifest={self.outputs[0]}"]
        elif kind == "run":
            self.outputs = [self.out / "receipt.json"]
            self.args = ["cavatica", "run", "--project", PROJECT, "--app", APP, "--name", label,
                         "--inputs", json.dumps({"input_vcf": {"id": input_file}}),
                         "--output", f"receipt={self.outputs[0]}"]
        elif kind == "poll":
            if failing:
                emulated.add_faults({"kind": "task_fail", "path": "/v2/tasks", "method": "POST", "count": 1,
                                     "message": "exit code 137 (injected)"})
            self.task_id = start_task(emulated, input_file, label)["id"]
            receipt = directory / "receipt.json"
            write_receipt(receipt, emulated, self.task_id)
            self.outputs = [self.out / "status.json"]
            self.args = ["cavatica", "poll", "--input", f"receipt={receipt}", "--first-wait", POLL_FIRST_WAIT,
                         "--max-wait", "0.3", "--timeout", POLL_TIMEOUT, "--output", f"status={self.outputs[0]}"]
        elif kind == "download":
            receipt = directory / "receipt.json"
            write_receipt(receipt, emulated, finished_task)
            self.outputs = [self.out / "annotated.vcf"]
            self.args = ["cavatica", "download", "--input", f"receipt={receipt}", "--output-id", "annotated_vcf",
                         "--output", f"file={self.outputs[0]}"]
        self.args += ["--log", self.log]

    def normalised(self, name: str, data: bytes) -> bytes:
        """What must match a clean run's: every id, name and time a new file or task has by nature left out."""
        if self.kind == "download":
            return data
        document = json.loads(data)
        if self.kind == "upload":
            document["files"] = [{k: v for k, v in f.items() if k not in ("id", "name", "path")} for f in document["files"]]
        elif self.kind == "run":
            for key in ("job_id", "submitted_at", "idempotency_key"):
                document.pop(key)
            document["request"].pop("name")
        elif self.kind == "poll":
            task = document.pop("task")
            document.pop("job_id"), document.pop("checks")
            document["task"] = {k: task.get(k) for k in ("status", "app", "project")}
            document["outputs"] = sorted(task.get("outputs") or {})
        return json.dumps(document, sort_keys=True).encode()

    def check_platform(self, succeeded: bool) -> None:
        """One file / one task for this operation on the platform (none for an upload that failed)."""
        if self.kind == "upload":
            found = files_named(self.emulated, self.vcf.name)
            if not succeeded:
                assert found == [], f"a failed upload left {found}"
                return
            assert len(found) == 1, found
            manifest = json.loads(self.outputs[0].read_text())
            assert manifest["files"][0]["id"] == found[0]["id"]
            assert stored_bytes(self.emulated, found[0]["id"]) == self.vcf.read_bytes()
        elif self.kind == "run" and not succeeded:
            made = [t for t in api(self.emulated, "GET", "/tasks", params={"project": PROJECT, "fields": "_all",
                                                                           "limit": 100})["items"]
                    if t["name"] == self.label]
            assert made == [], f"a failed run left {made}"
        elif self.kind == "run":
            receipt = json.loads(self.outputs[0].read_text())
            tasks = tasks_tagged(self.emulated, receipt["idempotency_key"])
            assert [t["id"] for t in tasks] == [receipt["job_id"]], tasks
            assert tasks[0]["status"] != "DRAFT"


@pytest.fixture(scope="module")
def clean(emulated, input_file, finished_task, tmp_path_factory):
    """Each operation kind's outputs from a run without faults, made once."""
    made: dict[str, dict[str, bytes]] = {}

    def of(kind: str) -> dict[str, bytes]:
        if kind not in made:
            operation = Operation(kind, tmp_path_factory.mktemp(f"clean-{kind}"), emulated, input_file,
                                  finished_task, f"clean-{kind}")
            done = run_cli(operation.args, environment(operation.directory, emulated, {}))
            assert done.returncode == 0, done.stderr
            made[kind] = read_outputs(operation.outputs)
        return made[kind]

    return of


def environment(directory: Path, emulated, settings: dict) -> dict:
    return isolated_env(directory, GENSVC_CAVATICA_URL=emulated.url, GENSVC_CAVATICA_TOKEN=TOKEN, **settings)


@pytest.mark.parametrize("cell", cases(PARAMS, fast=6))
def test_cavatica_operation_under_fault(cell: Cell, emulated, input_file, finished_task, clean, tmp_path):
    emulated.reset()
    failing = cell.fault.name == "job-fails"
    operation = Operation(cell.operation, tmp_path, emulated, input_file, finished_task, cell.id, failing=failing)
    env = environment(tmp_path, emulated, cell_settings(cell))
    want = clean(cell.operation) if cell.succeeds else None
    before = files_under([operation.out])
    path, method = (SERVICE_TARGETS if cell.fault.how == "service" else TARGETS)[cell.operation]
    done, faulted = run_under_fault(emulated, cell, operation.args, env, path, method, failing)
    stats = emulated.stats()

    if want is not None:
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        if cell.bounded and cell.fault.how in ("emulator", "service"):
            # a lost answer to a write may be found before the fault fires again
            assert emulated.fired(cell) >= (1 if cell.operation in WRITES else BOUNDED_COUNT), emulated.fired(cell)
        assert_same_outputs(operation.outputs, want, operation.normalised)
        operation.check_platform(succeeded=True)
        return
    exit_code = EXITS.get((cell.operation, cell.fault.name))
    line = assert_refused_cleanly(done, cell, operation.outputs, before, exit_code)
    assert line.startswith(f"gensvc cavatica {cell.operation}:"), line
    if failing:
        assert "ended FAILED" in line and "exit code 137" in line, line
        assert requests_to(stats, "/v2/tasks/*/execution_details") == 1
    elif cell.fault.how == "refused":
        pass  # nobody listened: nothing was counted
    elif cell.operation == "poll":
        checks = int(POLL_TIMEOUT / POLL_FIRST_WAIT) + 2
        per_check = int(env["GENSVC_CAVATICA_MAX_ATTEMPTS"])
        assert_requests_bounded(cell, faulted, env, most=None if not cell.fault.retried else checks * per_check)
        if cell.fault.retried:  # the poll's timeout line says why its checks failed
            assert "its last check failed" in line, line
    else:
        assert_requests_bounded(cell, faulted, env)
    if cell.fault.name == "maintenance-503":
        assert "maintenance" in line, line
    operation.check_platform(succeeded=False)
