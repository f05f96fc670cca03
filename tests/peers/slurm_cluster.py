"""A single-node SLURM cluster (Debian's slurm-wlm 22.05 + munge) for tests/test_slurm.py.

`SlurmCluster(scratch).start()` writes a slurm.conf whose pid, spool, state and log paths are
under `scratch`, starts munged (as user munge), slurmctld and slurmd, and waits until the node
is idle; `stop()` stops the three daemons it started, by pid. tests/peers/setup_slurm.sh
installs the packages.

No accounting daemon (slurmdbd) runs, as at many small sites: `sacct` fails, so the workflow's
profile asks `squeue` for job states, and MinJobAge keeps finished jobs visible to it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from filelock import FileLock

# the jobstep plugin strips SLURM_* (SLURM_CONF too) before its inner srun, so srun in a job
# reads the default path: the test's config must be there as well
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by gensvc tests/peers/slurm_cluster.py"
TOOLS = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "munged")
# /etc/slurm/slurm.conf and munged are the host's: one test cluster at a time (other test runs wait)
HOST_LOCK = "/tmp/gensvc-slurm-test.lock"


def missing_tools() -> list[str]:
    return [t for t in TOOLS if not (shutil.which(t) or Path("/usr/sbin", t).exists())]


def tool(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def cannot_run() -> str | None:
    """Why this machine cannot bring the cluster up, or None."""
    missing = missing_tools()
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing; tests/peers/setup_slurm.sh installs it as root)"
    if os.geteuid() != 0:
        return "a private SLURM needs root (slurmd runs jobs as their user; munged runs as munge)"
    if DEFAULT_CONF.exists() and MARK not in DEFAULT_CONF.read_text():
        return f"{DEFAULT_CONF} belongs to a real cluster on this host; the test will not replace it"
    return None


class SlurmCluster:
    def __init__(self, scratch: Path, cpus: int | None = None, memory_mb: int = 4000):
        self.dir = scratch
        self.cpus = cpus or os.cpu_count() or 2
        self.memory_mb = memory_mb
        self.conf = scratch / "slurm.conf"
        self.pids: dict[str, int] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.ports = (free_port(), free_port())
        self.lock = FileLock(HOST_LOCK)

    # -- configuration ----------------------------------------------------------------------
    def config_text(self) -> str:
        d = self.dir
        return "\n".join([
            MARK,
            "ClusterName=gensvc-test",
            "SlurmctldHost=localhost",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "DefMemPerCPU=500",  # without it one job takes the node's memory and the next waits
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={d}/jobcomp.txt",
            "MinJobAge=300",  # finished jobs stay visible to squeue (no sacct here)
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            f"SlurmctldPidFile={d}/slurmctld.pid",
            f"SlurmdPidFile={d}/slurmd.pid",
            f"SlurmdSpoolDir={d}/spool",
            f"StateSaveLocation={d}/state",
            f"SlurmctldLogFile={d}/slurmctld.log",
            f"SlurmdLogFile={d}/slurmd.log",
            f"SlurmctldPort={self.ports[0]}",
            f"SlurmdPort={self.ports[1]}",
            f"NodeName=localhost CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ])

    # -- daemons ----------------------------------------------------------------------------
    def start(self, wait_for_others: float = 600) -> "SlurmCluster":
        self.lock.acquire(timeout=wait_for_others)
        for sub in ("spool", "state", "munge"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.config_text())
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        DEFAULT_CONF.write_text(self.config_text())
        self._start_munge()
        self._run_daemon("slurmctld", [tool("slurmctld"), "-f", str(self.conf)], self.dir / "slurmctld.pid")
        self._run_daemon("slurmd", [tool("slurmd"), "-f", str(self.conf), "-N", "localhost"], self.dir / "slurmd.pid")
        self._wait_idle()
        return self

    def _start_munge(self):
        run = Path("/run/munge")
        run.mkdir(parents=True, exist_ok=True)
        shutil.chown(run, "munge", "munge")
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True)
            key.write_bytes(os.urandom(128))
            key.chmod(0o400)
            shutil.chown(key, "munge", "munge")
        if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
            return  # a munged already serves this host; it is not ours to stop
        pidfile = run / "munged.pid"
        subprocess.run(["runuser", "-u", "munge", "--", tool("munged"), "--force"], check=True, capture_output=True)
        self._wait(lambda: subprocess.run(["munge", "-n"], capture_output=True).returncode == 0, "munged")
        self.pids["munged"] = int(pidfile.read_text())

    def _run_daemon(self, name: str, command: list[str], pidfile: Path):
        pidfile.unlink(missing_ok=True)
        done = subprocess.run(command, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{name} did not start: {done.stderr.strip()} (log: {self.dir / (name + '.log')})")
        self._wait(pidfile.exists, name)
        self.pids[name] = int(pidfile.read_text())

    def _wait_idle(self):
        def idle():
            out = self.scontrol("show", "node", "localhost").stdout
            return "State=IDLE" in out

        self._wait(idle, "node localhost to become idle", seconds=60)

    def _wait(self, ready, what: str, seconds: float = 30):
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            if ready():
                return
            time.sleep(0.3)
        log = ""
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.dir / name
            if path.exists():
                log += f"\n--- {name}\n" + "\n".join(path.read_text().splitlines()[-15:])
        raise RuntimeError(f"timed out waiting for {what}{log}")

    def stop(self):
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.pop(name, None)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            if not exited(pid, seconds=15):
                os.kill(pid, signal.SIGKILL)  # ours, by pid: a controller that cannot save its state hangs
                exited(pid, seconds=5)
        if DEFAULT_CONF.exists() and MARK in DEFAULT_CONF.read_text():
            DEFAULT_CONF.unlink()
        if self.lock.is_locked:
            self.lock.release()

    # -- clients ----------------------------------------------------------------------------
    def client(self, name: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([tool(name), *args], env=self.env, capture_output=True, text=True, timeout=60)

    def scontrol(self, *args: str) -> subprocess.CompletedProcess:
        return self.client("scontrol", *args)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def exited(pid: int, seconds: float) -> bool:
    """Whether the process is gone (or a zombie left for init to reap) within `seconds`."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "State:\tZ" in status:
            return True
        time.sleep(0.2)
    return False
