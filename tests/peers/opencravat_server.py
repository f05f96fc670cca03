"""Run the real OpenCRAVAT server (PyPI open-cravat) on loopback as a test peer.

    from peers.opencravat_server import start_opencravat

    with start_opencravat(tmp_path) as oc:          # personal mode
        requests.post(oc.url + "submit/submit", ...)
    with start_opencravat(tmp_path, multiuser=True) as oc:   # /server/login, admin/admin
        ...

The server runs from its own venv (made by tests/peers/setup_opencravat.sh, default
REPO/.venv-oc), with the hand-written modules of tests/peers/opencravat_modules copied under
`workdir` and a system conf that keeps every directory under `workdir` and points the module
store at a dead loopback port. Jobs are started by the server as a bare `oc run`, so the
venv's bin directory goes first on PATH. The server is started in its own process group and
the whole group (server, job worker, running jobs) is killed on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_VENV = REPO / ".venv-oc"
MODULES_SRC = HERE / "opencravat_modules"
GENE_MODEL = HERE.parents[1] / "gensvc" / "emulators" / "data" / "gene_model.tsv"
SETUP_SCRIPT = "tests/peers/setup_opencravat.sh"


class OpenCravatUnavailable(RuntimeError):
    """The OpenCRAVAT venv is missing or the server did not come up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    return free_port()


@dataclass
class RealOpenCravat:
    url: str                      # e.g. http://127.0.0.1:PORT/  (ends with '/')
    port: int
    workdir: Path
    jobs_dir: Path                # root jobs dir; personal-mode jobs live in jobs_dir/'default'
    log_path: Path                # server stdout+stderr
    multiuser: bool
    process: subprocess.Popen = field(repr=False)

    def job_dir(self, job_id: str, user: str = "default") -> Path:
        """Where a job's files are: jobs_dir/<user>/<job_id> (user 'default' in personal mode)."""
        return self.jobs_dir / user / job_id

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        proc = self.process
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        # The job worker, the multiprocessing manager and any `oc run` share the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def write_system_conf(workdir: Path, port: int, modules_dir: Path) -> Path:
    dead = f"http://127.0.0.1:{dead_port()}"
    dirs = {name: workdir / name for name in ("jobs", "work", "logs", "conf", "metrics")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    conf = {
        "modules_dir": modules_dir,
        "jobs_dir": dirs["jobs"],
        "work_dir": dirs["work"],
        "log_dir": dirs["logs"],
        "conf_dir": dirs["conf"],
        "metrics_dir": dirs["metrics"],
        "gui_host": "127.0.0.1",
        "gui_port": port,
        "store_url": f"{dead}/store",
        "publish_url": f"{dead}/publish",
        "metrics_url": f"{dead}/metrics",
        "save_metrics": False,
        "show_user_survey": False,
        "max_num_concurrent_jobs": 4,
        "max_num_concurrent_annotators_per_job": 1,
    }
    path = workdir / "cravat-system.yml"
    # Plain "key: value" lines are valid YAML; paths here contain no special characters.
    path.write_text("".join(f"{k}: {v}\n" if not isinstance(v, bool) else f"{k}: {str(v).lower()}\n"
                            for k, v in conf.items()))
    return path


@contextlib.contextmanager
def start_opencravat(workdir: Path, multiuser: bool = False, venv: Path = DEFAULT_VENV,
                     startup_timeout: float = 60.0) -> Iterator[RealOpenCravat]:
    """Start `oc gui --aiohttp --headless` (plus `--multiuser`) on a free loopback port."""
    venv = Path(venv)
    oc = venv / "bin" / "oc"
    if not oc.exists():
        raise OpenCravatUnavailable(
            f"OpenCRAVAT is not installed in {venv}: run `bash {SETUP_SCRIPT} {venv}` first")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    modules_dir = workdir / "modules"
    if not modules_dir.exists():
        shutil.copytree(MODULES_SRC, modules_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        # the stand-in mapper reads the emulators' shared gene model, as the emulator does
        shutil.copy(GENE_MODEL, modules_dir / "mappers" / "hg38" / "gene_model.tsv")
    port = free_port()
    conf_path = write_system_conf(workdir, port, modules_dir)
    if multiuser:
        # The real server files admin's submissions under the first directory it finds in
        # jobs_dir and answers 500 "list index out of range" when there is none; a
        # jobs_dir/admin directory makes admin/admin usable for whole job flows.
        (workdir / "jobs" / "admin").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["OPENCRAVAT_SYSTEM_CONF_PATH"] = str(conf_path)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("OPENCRAVAT_MD", None)
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["VIRTUAL_ENV"] = str(venv)
    cmd = [str(oc), "gui", "--aiohttp", "--headless", "--port", str(port)]
    if multiuser:
        cmd.append("--multiuser")
    log_path = workdir / "server.log"
    log = open(log_path, "ab")
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    server = RealOpenCravat(url=f"http://127.0.0.1:{port}/", port=port, workdir=workdir,
                            jobs_dir=workdir / "jobs", log_path=log_path, multiuser=multiuser,
                            process=proc)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise OpenCravatUnavailable(
                    f"oc gui exited with {proc.returncode}; log:\n{server.log_text()[-3000:]}")
            try:
                r = requests.get(server.url + "submit/servermode", timeout=2)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise OpenCravatUnavailable(
                    f"oc gui did not answer within {startup_timeout}s; log:\n{server.log_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        server.stop()
