"""Crash-resume (issue 14 item 2): each job service's submit, and each upload, killed with
SIGKILL at a seeded random moment, then the same command run again to completion: the
server holds exactly one job (one file) for that input, and the final receipt (manifest)
names it.

The emulator holds every submitting request a little (a `delay` fault: with `after` the job
is made first and its answer held back, without it the request waits before the service
sees it), so kills land inside the request, not in the interpreter's start-up. A moment is
drawn within the window an uninterrupted run measured, counted from the run's first log
line (it has started work) to its exit. The rerun starts at once, as `snakemake --retries`
or a requeued cluster job would. Each cycle has an input of its own, so the cycles of one
operation share its emulators and run a few at a time; jobs are counted per input from the
emulator's own lists, over HTTP.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from gensvc.emulators.server import start_emulator
from helpers import isolated_env, read_json, run_gensvc
from tests.reliability.conftest import cases, spread_over_workers

CYCLES = 50
PARALLEL = 4  # cycles at once: most of a cycle is waiting on a held request
HELD = {True: 1.0, False: 1.5}  # seconds the emulator holds a submitting request, by `after`
# short timeouts (above the hold): how long a rerun may wait for a dead run's request
TIMEOUTS = {"CONNECT_TIMEOUT": "1", "READ_TIMEOUT": "4"}
VCF = (
    "##fileformat=VCFv4.2\n"
    "##crash_cycle={marker}\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "chr7\t140753336\t.\tA\tT\t.\tPASS\t.\n"
    "chr12\t25245350\t.\tC\tA,T\t.\tPASS\t.\n"
)
CGI_EMAIL, CGI_TOKEN = "crash@example.org", "cgi-crash-token-31c9"
CAVATICA_TOKEN = "cavatica-crash-token-8a2f"
PROJECT, APP = "gensvc-demo/demo-project", "gensvc-demo/apps/vcf-score"
OPENCGA_USER, OPENCGA_PASSWORD, STUDY = "analyst", "opencga-crash-pass-77d1", "gensvc@demo:demo"


def write_input(directory: Path, marker: str) -> Path:
    path = directory / f"{marker}.vcf"
    path.write_text(VCF.format(marker=marker))
    return path


# ---- what each operation is, and how its jobs are counted on the server ----------------------


class Operation:
    """One killable command: its emulator, the requests held, the command of one cycle, the
    server's jobs (files) for that cycle's input, and what its output names."""

    id: str
    service: str
    emulator_settings: dict = {}
    held: list[tuple[str, str]]  # (method, path glob) of the submitting requests

    def environment(self, workdir: Path, emulator) -> dict:
        raise NotImplementedError

    def prepare(self, emulator, workdir: Path, marker: str) -> None:
        """Anything the command needs that is not its own doing (an earlier step's output)."""

    def command(self, workdir: Path, marker: str) -> list[str]:
        raise NotImplementedError

    def made(self, emulator, marker: str) -> list[str]:
        """Ids of the jobs (files) on the server for this cycle's input."""
        raise NotImplementedError

    def named(self, workdir: Path) -> str:
        """The job (file) id the command's output names."""
        return read_json(workdir / "receipt.json")["job_id"]


class OpencravatSubmit(Operation):
    id, service = "opencravat-submit", "opencravat"
    emulator_settings = {"time_scale": 0.2}
    held = [("POST", "/submit/submit")]

    def environment(self, workdir, emulator):
        return isolated_env(workdir, GENSVC_OPENCRAVAT_URL=emulator.url, GENSVC_OPENCRAVAT_BACKOFF="0.05")

    def command(self, workdir, marker):
        return ["opencravat", "submit", "--input", f"files={write_input(workdir, marker)}", "--annotators", "clinvar",
                "--output", f"receipt={workdir / 'receipt.json'}"]

    def made(self, emulator, marker):
        ids = requests.get(f"{emulator.url}submit/jobs", timeout=10).json()
        jobs = requests.get(f"{emulator.url}submit/getjobs", params={"ids": json.dumps(ids)}, timeout=10).json()
        return [job["id"] for job in jobs if f"{marker}.vcf" in (job.get("orig_input_fname") or [])]


class CgiSubmit(Operation):
    id, service = "cgi-submit", "cgi"
    emulator_settings = {"tokens": [CGI_TOKEN], "time_scale": 0.02, "quota": 100_000}
    held = [("POST", "/api/v1")]
    auth = {"Authorization": f"{CGI_EMAIL} {CGI_TOKEN}"}

    def environment(self, workdir, emulator):
        return isolated_env(workdir, GENSVC_CGI_URL=emulator.url, GENSVC_CGI_EMAIL=CGI_EMAIL,
                            GENSVC_CGI_TOKEN=CGI_TOKEN, GENSVC_CGI_BACKOFF="0.05")

    def command(self, workdir, marker):
        return ["cgi", "submit", "--input", f"mutations={write_input(workdir, marker)}", "--cancer-type", "BRCA",
                "--title", marker, "--output", f"receipt={workdir / 'receipt.json'}"]

    def made(self, emulator, marker):
        ids = requests.get(emulator.url, headers=self.auth, timeout=10).json()
        titles = {job_id: requests.get(f"{emulator.url}/{job_id}", headers=self.auth, timeout=10).json()
                  ["metadata"]["title"] for job_id in ids}
        return [job_id for job_id, title in titles.items() if title.split(" ")[0] == marker]


class Cavatica(Operation):
    service = "cavatica"
    emulator_settings = {"tokens": [CAVATICA_TOKEN], "time_scale": 0.01}

    def environment(self, workdir, emulator):
        return isolated_env(workdir, GENSVC_CAVATICA_URL=emulator.url, GENSVC_CAVATICA_TOKEN=CAVATICA_TOKEN,
                            GENSVC_CAVATICA_BACKOFF="0.05")

    @staticmethod
    def listed(emulator, what: str, **query) -> list[dict]:
        items, offset = [], 0
        while True:
            page = requests.get(f"{emulator.url}/{what}", params={"project": PROJECT, "fields": "_all", "limit": 100,
                                                                  "offset": offset, **query},
                                headers={"X-SBG-Auth-Token": CAVATICA_TOKEN}, timeout=10).json()
            items += page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= int(page.get("total", offset)):
                return items


class CavaticaRun(Cavatica):
    id = "cavatica-run"
    held = [("POST", "/v2/tasks")]

    def __init__(self):
        self.file_ids: dict[str, str] = {}  # by emulator
        self.lock = threading.Lock()

    def prepare(self, emulator, workdir, marker):
        # the app's input: one file on each emulator for every cycle (the task's name is the cycle's own)
        with self.lock:
            if emulator.url not in self.file_ids:
                vcf = write_input(workdir, "crash-run-input")
                done = run_gensvc(["cavatica", "upload", "--project", PROJECT, "--input", f"files={vcf}",
                                   "--output", f"manifest={workdir / 'input.json'}"],
                                  self.environment(workdir, emulator))
                assert done.returncode == 0, done.stderr
                self.file_ids[emulator.url] = read_json(workdir / "input.json")["files"][0]["id"]
        (workdir / "input_id").write_text(self.file_ids[emulator.url])

    def command(self, workdir, marker):
        file_id = (workdir / "input_id").read_text()
        return ["cavatica", "run", "--project", PROJECT, "--app", APP, "--name", marker,
                "--inputs", json.dumps({"input_vcf": {"id": file_id}}),
                "--output", f"receipt={workdir / 'receipt.json'}"]

    def made(self, emulator, marker):
        return [task["id"] for task in self.listed(emulator, "tasks") if task.get("name") == marker]


class CavaticaUpload(Cavatica):
    id = "cavatica-upload"
    held = [("POST", "/v2/upload/multipart*")]  # init, part reports and complete

    def command(self, workdir, marker):
        return ["cavatica", "upload", "--project", PROJECT, "--input", f"files={write_input(workdir, marker)}",
                "--output", f"manifest={workdir / 'manifest.json'}"]

    def made(self, emulator, marker):
        return [item["id"] for item in self.listed(emulator, "files", name=f"{marker}.vcf")
                if item.get("name") == f"{marker}.vcf"]

    def named(self, workdir):
        return read_json(workdir / "manifest.json")["files"][0]["id"]


class Opencga(Operation):
    service = "opencga"
    emulator_settings = {"tokens": [f"{OPENCGA_USER}:{OPENCGA_PASSWORD}"], "time_scale": 0.01}

    def environment(self, workdir, emulator):
        return isolated_env(workdir, GENSVC_OPENCGA_URL=emulator.url, GENSVC_OPENCGA_USER=OPENCGA_USER,
                            GENSVC_OPENCGA_PASSWORD=OPENCGA_PASSWORD, GENSVC_OPENCGA_BACKOFF="0.05")

    @staticmethod
    def api(emulator) -> tuple[str, dict]:
        base = emulator.url + "webservices/rest/v2/"
        token = requests.post(base + "users/login", json={"user": OPENCGA_USER, "password": OPENCGA_PASSWORD},
                              timeout=10).json()["responses"][0]["results"][0]["token"]
        return base, {"Authorization": f"Bearer {token}"}

    def search(self, emulator, what: str) -> list[dict]:
        base, auth = self.api(emulator)
        answer = requests.get(base + f"{what}/search", params={"study": STUDY, "limit": 5000}, headers=auth,
                              timeout=10).json()
        return answer["responses"][0]["results"]


class OpencgaIndex(Opencga):
    id = "opencga-index"
    held = [("POST", "*/operation/variant/index")]

    def prepare(self, emulator, workdir, marker):
        # the upload step's output: the cycle's own file in the study, and its manifest
        base, auth = self.api(emulator)
        vcf = write_input(workdir, marker)
        with open(vcf, "rb") as handle:
            answer = requests.post(base + "files/upload", headers=auth, files={"file": (vcf.name, handle)},
                                   data={"study": STUDY, "relativeFilePath": "crash-index/", "parents": "true"},
                                   timeout=10).json()
        record = answer["responses"][0]["results"][0]
        (workdir / "manifest.json").write_text(json.dumps({
            "service": "opencga", "base_url": emulator.url, "study": STUDY, "folder": "crash-index/",
            "files": [{"input": str(vcf), "name": vcf.name, "path": record["path"], "id": record["id"],
                       "size": vcf.stat().st_size, "reused": False}]}))

    def command(self, workdir, marker):
        return ["opencga", "index", "--input", f"manifest={workdir / 'manifest.json'}", "--description", marker,
                "--output", f"receipt={workdir / 'receipt.json'}"]

    def made(self, emulator, marker):
        return [job["id"] for job in self.search(emulator, "jobs") if job.get("description", "").split(" ")[0] == marker]


class OpencgaUpload(Opencga):
    id = "opencga-upload"
    held = [("POST", "*/files/upload")]

    def command(self, workdir, marker):
        return ["opencga", "upload", "--input", f"files={write_input(workdir, marker)}", "--study", STUDY,
                "--folder", "crash-upload/", "--output", f"manifest={workdir / 'manifest.json'}"]

    def made(self, emulator, marker):
        return [f["id"] for f in self.search(emulator, "files") if f.get("name") == f"{marker}.vcf"]

    def named(self, workdir):
        return read_json(workdir / "manifest.json")["files"][0]["id"]


OPERATIONS = {op.id: op for op in (OpencravatSubmit(), CgiSubmit(), CavaticaRun(), CavaticaUpload(), OpencgaIndex(),
                                   OpencgaUpload())}


# ---- one kill/rerun cycle ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    operation: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.operation}-kill-{self.seed}"

    def draw(self) -> tuple[bool, float]:
        """(the emulator holds the answer after acting, the kill's place in the window 0..1)."""
        rng = random.Random(f"gensvc-crash-resume:{self.id}")
        return rng.random() < 0.5, rng.random()


@dataclass
class Outcome:
    killed: bool  # the process was still running at the moment drawn
    moment: float
    before: list[str]  # the input's jobs on the server when the rerun started
    after: list[str]
    rerun: subprocess.CompletedProcess
    named: str | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"killed={self.killed} at {self.moment:.2f}s, jobs before the rerun {self.before}, after {self.after}, "
                f"output names {self.named}; rerun exit {self.rerun.returncode}: {self.rerun.stderr.strip()[-600:]}")


def timeouts(operation: Operation, env: dict) -> dict:
    return env | {f"GENSVC_{operation.service.upper()}_{name}": value for name, value in TIMEOUTS.items()}


def started_work(log: Path) -> bool:
    # the runner's first line: the call was checked and the operation begins
    return log.exists() and " against " in log.read_text(errors="replace")


def run_killed(args: list[str], env: dict, log: Path, moment: float, timeout: float = 60) -> bool:
    """Run the CLI, SIGKILL it ``moment`` s after it started work; True if it was still running."""
    process = subprocess.Popen([sys.executable, "-m", "gensvc.cli", *args, "--log", str(log)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while not started_work(log) and process.poll() is None:
            assert time.monotonic() < deadline, "the run never started work"
            time.sleep(0.01)
        time.sleep(moment)
        alive = process.poll() is None
        process.kill()
        return alive
    finally:
        process.kill()
        process.wait()


def timed_run(args: list[str], env: dict, log: Path) -> tuple[float, subprocess.CompletedProcess]:
    """An uninterrupted run: seconds from its start of work to its exit, and how it ended."""
    process = subprocess.Popen([sys.executable, "-m", "gensvc.cli", *args, "--log", str(log)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not started_work(log) and process.poll() is None:
        time.sleep(0.01)
    began = time.monotonic()
    stdout, stderr = process.communicate(timeout=120)
    return time.monotonic() - began, subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


class Campaign:
    """The cycles of the collected cells. Alone, every cycle runs a few at a time on the first
    cell's request; in a pytest-xdist worker (`make reliability`), where the workers are the
    parallelism and each runs cells the others do not, each cell's cycle runs when asked.
    An operation's emulators (one holding answers after acting, one before) are started, and
    its window measured, when its first cycle needs them, then shared."""

    def __init__(self, root: Path, cells: list[Cell], pooled: bool):
        self.root, self.cells, self.pooled = root, cells, pooled
        self.outcomes: dict[Cell, Outcome | BaseException] = {}
        self.windows: dict[str, float] = {}
        self.lock = threading.Lock()
        self.operation_locks = {op_id: threading.Lock() for op_id in OPERATIONS}
        self.done = False
        self.emulators: dict[tuple[str, bool], object] = {}

    def outcome(self, cell: Cell) -> Outcome:
        with self.lock:
            if self.pooled and not self.done:
                self.run_all()
                self.done = True
            elif not self.pooled:
                self.outcomes[cell] = self.attempt(cell)
        result = self.outcomes[cell]
        if isinstance(result, BaseException):
            raise result
        return result

    def attempt(self, cell: Cell) -> Outcome | BaseException:
        try:
            return self.cycle(cell)
        except BaseException as error:  # the cell reports it
            return error

    def run_all(self) -> None:
        with ThreadPoolExecutor(PARALLEL) as pool:
            futures = {cell: pool.submit(self.attempt, cell) for cell in self.cells}
            for cell, future in futures.items():
                self.outcomes[cell] = future.result()

    def close(self) -> None:
        for emulator in self.emulators.values():
            emulator.stop()

    def emulator(self, operation: Operation, after: bool):
        return self.emulators[(operation.id, after)]

    def window(self, op_id: str) -> float:
        """The operation's window, its emulators started and it measured on first use."""
        with self.operation_locks[op_id]:
            if op_id not in self.windows:
                operation = OPERATIONS[op_id]
                for after in (True, False):
                    emulator = start_emulator(operation.service, **operation.emulator_settings)
                    self.emulators[(op_id, after)] = emulator
                    emulator.add_faults([{"path": path, "method": method, "kind": "delay", "seconds": HELD[after],
                                          "after": after} for method, path in operation.held])
                self.windows[op_id] = self.measure(op_id)
            return self.windows[op_id]

    def measure(self, op_id: str) -> float:
        """The window of one uninterrupted run (the longer hold), which must itself make one job."""
        operation = OPERATIONS[op_id]
        emulator = self.emulator(operation, False)
        workdir = self.root / f"{op_id}-uninterrupted"
        workdir.mkdir(parents=True)
        marker = f"{op_id}-whole"
        operation.prepare(emulator, workdir, marker)
        env = timeouts(operation, operation.environment(workdir, emulator))
        seconds, done = timed_run(operation.command(workdir, marker), env, workdir / "run.log")
        assert done.returncode == 0, done.stderr
        assert operation.made(emulator, marker) == [operation.named(workdir)]
        return seconds

    def cycle(self, cell: Cell) -> Outcome:
        operation = OPERATIONS[cell.operation]
        after, place = cell.draw()
        window = self.window(cell.operation)
        emulator = self.emulator(operation, after)
        workdir = self.root / cell.id
        workdir.mkdir(parents=True)
        marker = f"crash-{cell.id}"
        operation.prepare(emulator, workdir, marker)
        env = timeouts(operation, operation.environment(workdir, emulator))
        args = operation.command(workdir, marker)
        moment = place * window
        killed = run_killed(args, env, workdir / "killed.log", moment)
        before = operation.made(emulator, marker)
        rerun = run_gensvc([*args, "--log", workdir / "rerun.log"], env)
        outcome = Outcome(killed, moment, before, operation.made(emulator, marker), rerun)
        if rerun.returncode == 0:
            outcome.named = operation.named(workdir)
        return outcome


ALL = [Cell(op_id, seed) for op_id in OPERATIONS for seed in range(CYCLES)]
SELECTED = cases(ALL, fast=len(OPERATIONS))


@pytest.fixture(scope="module")
def campaign(request, tmp_path_factory):
    collected = [item.callspec.params["cell"] for item in request.session.items
                 if item.module is request.module and hasattr(item, "callspec") and "cell" in item.callspec.params]
    campaign = Campaign(tmp_path_factory.mktemp("crash"), collected, pooled=not spread_over_workers(request.config))
    yield campaign
    campaign.close()


@pytest.mark.reliability("crash-resume")
@pytest.mark.parametrize("cell", SELECTED, ids=[cell.id for cell in SELECTED])
def test_a_command_killed_at_a_random_moment_and_rerun_leaves_one_job_which_its_output_names(
        campaign, cell, record_property):
    outcome = campaign.outcome(cell)
    # where the kill landed: still running or not, and whether the server already had the job
    record_property("killed_running", outcome.killed)
    record_property("job_before_rerun", len(outcome.before))
    record_property("moment_s", round(outcome.moment, 2))
    assert outcome.rerun.returncode == 0, outcome.describe()
    assert len(outcome.after) == 1, outcome.describe()
    assert outcome.named == outcome.after[0], outcome.describe()
    assert set(outcome.before) <= set(outcome.after), outcome.describe()  # the rerun kept what the server had
