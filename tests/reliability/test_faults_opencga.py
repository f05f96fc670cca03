"""The fault matrix for OpenCGA: upload, index, poll and query, each against every fault of
tests/reliability/faults.py, over HTTP to the OpenCGA emulator.

Where each operation is hit: upload at the POST of the file (`files/upload`), index at the
POST that starts the job, poll at the job's GET (`jobs/{id}/info`), query at the variant
query's GET (every page).

Bounded: the operation succeeds, its output is the clean run's (ids and times aside), and
the study holds one file / one job for it. Unbounded: one clear line, the exit the catalogue
says, no output and no file left behind, at most max_attempts requests to the faulted path
(a poll: at most max_attempts per check), one for a 4xx, two for a 401 (the token is renewed
once, as documented, then the call ends with exit 3).

An upload or index whose answer is lost after the server acted (drop-after, truncated, stall)
is found again (the file by its path and size, the job by its tag): unbounded, it ends in
success with one file / one job, so those cells count as survived, not refused.
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

SERVICE = "opencga"
USER, PASSWORD = "faults", "opencga-faults-pass-91d2"
STUDY = "gensvc@demo:demo"
REST = "/opencga/webservices/rest/v2"
VCF = ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
       "1\t11785743\trs1\tT\tC,G\t51\tPASS\tDP=27\tGT\t1/2\n"
       "17\t7675088\t.\tC\tT\t89\tPASS\tDP=40\tGT\t0/1\n")
POLL_TIMEOUT = 3.0
POLL_FIRST_WAIT = 0.1


def _opencga_faults():
    rows = []
    for fault in FAULTS:
        if fault.name == "job-fails":
            fault = dataclasses.replace(fault, fault={"kind": "index_error", "message": "disk full on node 3 (injected)"})
        rows.append(fault)
    return tuple(rows)


OPERATIONS = ("upload", "index", "poll", "query")
TARGETS = {
    "upload": (f"{REST}/files/upload", "POST"),
    "index": (f"{REST}/operation/variant/index", "POST"),
    "poll": (f"{REST}/jobs/*/info", "GET"),
    "query": (f"{REST}/analysis/variant/query", "GET"),
}
WRITES = ("upload", "index")
# an unbounded fault on the answer to a write after the server acted: found again
SURVIVED_UNBOUNDED = {(op, name) for op in ("upload", "index") for name in ("drop-after", "truncated", "stall")}
CELLS = matrix(SERVICE, OPERATIONS, _opencga_faults(),
               survives=lambda operation, fault: (operation, fault.name) in SURVIVED_UNBOUNDED)
XFAIL: dict[str, str] = {}
PARAMS = params(CELLS, XFAIL)


# ---- the server --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulated():
    emulator = Emulated(SERVICE, tokens=[f"{USER}:{PASSWORD}"], time_scale=0.01)
    yield emulator
    emulator.close()


class Server:
    """The emulator's REST API, as the tests' own client (a token of their own)."""

    def __init__(self, emulated):
        self.emulated = emulated
        self._token = None

    def call(self, method, endpoint, **kwargs):
        for _ in range(2):  # a reset emulator has forgotten the token: log in again
            if self._token is None:
                login = requests.post(self.emulated.root + REST + "/users/login",
                                      json={"user": USER, "password": PASSWORD}, timeout=10)
                self._token = login.json()["responses"][0]["results"][0]["token"]
            response = requests.request(method, self.emulated.root + REST + "/" + endpoint, timeout=10,
                                        headers={"Authorization": f"Bearer {self._token}"}, **kwargs)
            if response.status_code != 401:
                break
            self._token = None
        response.raise_for_status()
        return response.json()["responses"][0]["results"]

    def upload(self, path: Path, folder: str) -> dict:
        # bytes, not a handle: a call sent again after a login must send the whole file again
        [record] = self.call("POST", "files/upload", files={"file": (path.name, path.read_bytes())},
                             data={"study": STUDY, "relativeFilePath": folder, "parents": "true"})
        return record

    def index(self, file_id: str, tag: str) -> dict:
        [job] = self.call("POST", "operation/variant/index", params={"study": STUDY, "jobTags": tag},
                          json={"file": file_id})
        return job

    def job(self, job_id: str) -> dict:
        return self.call("GET", f"jobs/{job_id}/info", params={"study": STUDY})[0]

    def files_at(self, path: str) -> list[dict]:
        return [f for f in self.call("GET", "files/search", params={"study": STUDY, "path": path, "limit": 10})
                if f.get("path") == path]

    def jobs_tagged(self, tag: str) -> list[dict]:
        return [j for j in self.call("GET", "jobs/search", params={"study": STUDY, "limit": 1000})
                if any(tag in t for t in j.get("tags") or [])]

    def wait_done(self, job_id: str) -> dict:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            job = self.job(job_id)
            if job["internal"]["status"]["id"] not in ("PENDING", "QUEUED", "RUNNING", "REGISTERING"):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not end")


@pytest.fixture(scope="module")
def server(emulated) -> Server:
    return Server(emulated)


def new_vcf(directory: Path, label: str) -> Path:
    path = directory / f"{label}-{time.monotonic_ns()}.vcf"
    path.write_text(VCF)
    return path


@pytest.fixture(scope="module")
def indexed_file(server, tmp_path_factory) -> str:
    """A file uploaded and indexed: what every query cell reads back."""
    record = server.upload(new_vcf(tmp_path_factory.mktemp("indexed"), "indexed"), "faults/indexed/")
    job = server.index(record["id"], f"gensvc:query-source-{time.monotonic_ns()}")
    assert server.wait_done(job["id"])["internal"]["status"]["id"] == "DONE"
    return record["id"]


def write_receipt(path: Path, emulated, job_id: str) -> None:
    path.write_text(json.dumps({
        "service": "opencga", "operation": "index", "base_url": emulated.url, "job_id": job_id,
        "idempotency_key": hashlib.sha256(job_id.encode()).hexdigest(), "submitted_at": "2026-01-01T00:00:00+00:00",
        "request": {"study": STUDY}, "versions": {"gensvc": "0"}}))


# ---- one operation -----------------------------------------------------------------------


class Operation:
    """One run of an operation kind in ``directory``: its command, outputs and what the
    server holds afterwards."""

    def __init__(self, kind: str, directory: Path, emulated, server: Server, indexed_file: str, label: str,
                 failing: bool = False):
        self.kind, self.directory, self.server, self.label = kind, directory, server, label
        self.out = directory / "out"
        self.out.mkdir(parents=True, exist_ok=True)
        log = directory / "logs" / f"{kind}.log"
        if kind == "upload":
            self.vcf = new_vcf(directory, label)
            self.outputs = [self.out / "manifest.json"]
            self.args = ["opencga", "upload", "--input", f"files={self.vcf}", "--study", STUDY,
                         "--folder", "faults/upload", "--output", f"manifest={self.outputs[0]}"]
        elif kind == "index":
            record = server.upload(new_vcf(directory, label), "faults/index/")
            manifest = directory / "manifest.json"
            manifest.write_text(json.dumps({"service": "opencga", "base_url": emulated.url, "study": STUDY,
                                            "folder": "faults/index/", "files": [{"id": record["id"]}]}))
            self.outputs = [self.out / "receipt.json"]
            self.args = ["opencga", "index", "--input", f"manifest={manifest}", "--output", f"receipt={self.outputs[0]}"]
        elif kind == "poll":
            record = server.upload(new_vcf(directory, label), "faults/poll/")
            if failing:
                emulated.add_faults({"kind": "index_error", "path": TARGETS["index"][0], "count": 1,
                                     "message": "disk full on node 3 (injected)"})
            self.job_id = server.index(record["id"], f"gensvc:{label}")["id"]
            receipt = directory / "receipt.json"
            write_receipt(receipt, emulated, self.job_id)
            self.outputs = [self.out / "status.json"]
            self.args = ["opencga", "poll", "--input", f"receipt={receipt}", "--first-wait", POLL_FIRST_WAIT,
                         "--max-wait", "0.3", "--timeout", POLL_TIMEOUT, "--output", f"status={self.outputs[0]}"]
        elif kind == "query":
            self.outputs = [self.out / "variants.tsv"]
            self.args = ["opencga", "query", "--study", STUDY, "--file", indexed_file, "--page-size", "1",
                         "--output", f"variants={self.outputs[0]}"]
        self.args += ["--log", log]

    def normalised(self, name: str, data: bytes) -> bytes:
        """What must match a clean run's: the ids, names and times a new file or job has by nature left out."""
        if self.kind == "query":
            return data
        document = json.loads(data)
        if self.kind == "upload":
            document["files"] = [{k: v for k, v in f.items() if k not in ("input", "name", "path", "id", "uuid")}
                                 for f in document["files"]]
        elif self.kind == "index":
            for key in ("job_id", "submitted_at", "idempotency_key"):
                document.pop(key)
            document["request"].pop("files")
        elif self.kind == "poll":
            job = document.pop("job")
            document.pop("job_id"), document.pop("checks")
            document["job"] = {"tool": (job.get("tool") or {}).get("id"), "status": job["internal"]["status"]["id"]}
        return json.dumps(document, sort_keys=True).encode()

    def check_server(self, succeeded: bool) -> None:
        """One file / one job for this operation in the study (no file for an upload that failed)."""
        if self.kind == "upload":
            found = self.server.files_at(f"faults/upload/{self.vcf.name}")
            if not succeeded:
                assert found == [], f"a failed upload left {found}"
                return
            assert len(found) == 1 and found[0]["size"] == self.vcf.stat().st_size, found
            assert json.loads(self.outputs[0].read_text())["files"][0]["id"] == found[0]["id"]
        elif self.kind == "index" and succeeded:
            receipt = json.loads(self.outputs[0].read_text())
            jobs = self.server.jobs_tagged(f"gensvc:{receipt['idempotency_key'][:32]}")
            assert [j["id"] for j in jobs] == [receipt["job_id"]], jobs


def environment(directory: Path, emulated, settings: dict) -> dict:
    return isolated_env(directory, GENSVC_OPENCGA_URL=emulated.url, GENSVC_OPENCGA_USER=USER,
                        GENSVC_OPENCGA_PASSWORD=PASSWORD, **settings)


@pytest.fixture(scope="module")
def clean(emulated, server, indexed_file, tmp_path_factory):
    """Each operation kind's outputs from a run without faults, made once."""
    made: dict[str, dict[str, bytes]] = {}

    def of(kind: str) -> dict[str, bytes]:
        if kind not in made:
            operation = Operation(kind, tmp_path_factory.mktemp(f"clean-{kind}"), emulated, server, indexed_file,
                                  f"clean-{kind}")
            done = run_cli(operation.args, environment(operation.directory, emulated, {}))
            assert done.returncode == 0, done.stderr
            made[kind] = read_outputs(operation.outputs)
        return made[kind]

    return of


@pytest.mark.parametrize("cell", cases(PARAMS, fast=6))
def test_opencga_operation_under_fault(cell: Cell, emulated, server, indexed_file, clean, tmp_path):
    emulated.reset()
    failing = cell.fault.name == "job-fails"
    operation = Operation(cell.operation, tmp_path, emulated, server, indexed_file, cell.id, failing=failing)
    env = environment(tmp_path, emulated, cell_settings(cell))
    want = clean(cell.operation) if cell.succeeds else None
    before = files_under([operation.out])
    path, method = TARGETS[cell.operation]
    done, faulted = run_under_fault(emulated, cell, operation.args, env, path, method, failing)
    stats = emulated.stats()

    if want is not None:
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        if cell.bounded and cell.fault.how in ("emulator", "service"):
            # a lost answer to a write may be found before the fault fires again
            assert emulated.fired(cell) >= (1 if cell.operation in WRITES else BOUNDED_COUNT), emulated.fired(cell)
        assert_same_outputs(operation.outputs, want, operation.normalised)
        operation.check_server(succeeded=True)
        return
    line = assert_refused_cleanly(done, cell, operation.outputs, before)
    assert line.startswith(f"gensvc opencga {cell.operation}:"), line
    if failing:
        assert "ended ERROR" in line and "disk full on node 3" in line, line
        assert requests_to(stats, f"{REST}/operation/variant/index") == 0
    elif cell.fault.how == "refused":
        pass  # nobody listened: nothing was counted
    elif cell.fault.name == "401":
        # documented: a refused token is renewed once (a new login), the request sent once more, then exit 3
        assert faulted == 2 and requests_to(stats, f"{REST}/users/login") == 2, stats
    elif cell.operation == "poll":
        checks = int(POLL_TIMEOUT / POLL_FIRST_WAIT) + 2
        per_check = int(env["GENSVC_OPENCGA_MAX_ATTEMPTS"])
        assert_requests_bounded(cell, faulted, env, most=None if not cell.fault.retried else checks * per_check)
        if cell.fault.retried:  # the poll's timeout line says why its checks failed
            assert "its last check failed" in line, line
    else:
        assert_requests_bounded(cell, faulted, env)
    operation.check_server(succeeded=False)
