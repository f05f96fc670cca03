"""The reference workflow on a real single-node SLURM cluster, through workflow/profiles/slurm.

tests/peers/slurm_cluster.py brings up munged, slurmctld and slurmd (Debian's slurm-wlm;
`make test` installs it with tests/peers/setup_slurm.sh) with no accounting daemon, as the
profile expects. The network steps run on this host as localrules against the emulators; merge
and report are submitted with snakemake-executor-plugin-slurm. Credentials come from a 0600
credentials file holding canary secrets, which must not reach slurmctld's saved job environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import pysam
import pytest
import requests
import yaml

from helpers import REPO
from gensvc.emulators.server import start_emulator
from peers.slurm_cluster import SlurmCluster, cannot_run

pytestmark = pytest.mark.slow

CANARY = {"bravo": f"canary-bravo-{uuid.uuid4().hex}", "cgi": f"canary-cgi-{uuid.uuid4().hex}"}
# a harmless variable the jobs do get: proves the saved environment is where we look
VISIBLE = f"visible-{uuid.uuid4().hex}"
EMULATED = {
    "bravo": {"tokens": [CANARY["bravo"]]},
    "opencravat": {"time_scale": 0.5},
    "cgi": {"time_scale": 0.05, "tokens": [CANARY["cgi"]]},
    "opencga": {"time_scale": 0.02},
    "cavatica": {"time_scale": 0.02},
}
PROFILE = REPO / "workflow" / "profiles" / "slurm"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = cannot_run()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the SLURM test: {reason}")
        pytest.skip(reason)
    # a short path: slurmd's spool sockets must fit in sun_path
    scratch = Path(f"/tmp/gensvc-slurm-{uuid.uuid4().hex[:8]}")
    cluster = SlurmCluster(scratch)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def emulators():
    with ExitStack() as stack:
        yield {s: stack.enter_context(start_emulator(s, **settings)) for s, settings in EMULATED.items()}


class Run:
    """A working directory with the demo's samples, run through a profile."""

    def __init__(self, workdir: Path, emulators: dict, cluster: SlurmCluster | None):
        self.workdir = workdir
        shutil.copytree(REPO / ".test" / "data", workdir / ".test" / "data")
        shutil.copy(REPO / ".test" / "config.yaml", workdir / "config.yaml")
        credentials = workdir / "credentials.yaml"
        credentials.write_text(yaml.safe_dump({"bravo": {"token": CANARY["bravo"]},
                                               "cgi": {"token": CANARY["cgi"], "email": "hpc@example.org"},
                                               "opencga": {"user": "demouser", "password": "demouser"},
                                               "cavatica": {"token": "cavatica-demo-token"}}))
        credentials.chmod(0o600)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("GENSVC_", "SB_", "SLURM_"))}
        self.env = {**clean, "HOME": str(workdir), "XDG_STATE_HOME": str(workdir / "xdg-state"),
                    "GENSVC_STATE_DIR": str(workdir / ".gensvc"), "GENSVC_CREDENTIALS": str(credentials),
                    "GENSVC_TEST_VISIBLE": VISIBLE}
        if cluster is not None:
            self.env["SLURM_CONF"] = str(cluster.conf)
        for service, emulator in emulators.items():
            self.env[f"GENSVC_{service.upper()}_URL"] = emulator.url

    def command(self, profile: Path, *extra) -> list[str]:
        return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                "--configfile", str(self.workdir / "config.yaml"), "--directory", str(self.workdir),
                "--workflow-profile", str(profile), *extra]

    def run(self, profile: Path = PROFILE, *extra, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(profile, *extra), env=env or self.env, capture_output=True, text=True,
                              timeout=240)


def submissions(emulators) -> dict[str, int]:
    """Jobs each job service holds (every submission makes one)."""
    oc = requests.get(f"{emulators['opencravat'].root}/submit/jobs", timeout=5).json()
    cgi = requests.get(emulators['cgi'].url, timeout=5,
                       headers={"Authorization": f"hpc@example.org {CANARY['cgi']}"}).json()
    return {"opencravat": len(oc), "cgi": len(cgi)}


def slurm_jobs(cluster) -> list[dict]:
    """Every job slurmctld still holds (MinJobAge keeps finished ones): id, state, comment."""
    out = cluster.client("squeue", "-h", "-t", "all", "-o", "%i|%T|%k").stdout
    return [dict(zip(("id", "state", "comment"), line.split("|", 2))) for line in out.splitlines() if line]


def wait_for_running_job(cluster, seen: set[str], process: subprocess.Popen, seconds: float = 150) -> dict:
    until = time.monotonic() + seconds
    while time.monotonic() < until and process.poll() is None:
        for job in slurm_jobs(cluster):
            if job["id"] not in seen and job["state"] == "RUNNING":
                return job
        time.sleep(0.3)
    raise AssertionError(f"no SLURM job started (snakemake exit {process.poll()})")


@pytest.fixture(scope="module")
def on_slurm(tmp_path_factory, cluster, emulators) -> dict:
    """One working directory: a run whose SLURM job is cancelled, then the rerun that recovers."""
    run = Run(tmp_path_factory.mktemp("slurm"), emulators, cluster)
    before = {job["id"] for job in slurm_jobs(cluster)}
    process = subprocess.Popen(run.command(PROFILE), env=run.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        job = wait_for_running_job(cluster, before, process)
        cancelled = cluster.client("scancel", job["id"])
        assert cancelled.returncode == 0, cancelled.stderr
        first_output, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    after_first = submissions(emulators)
    second = run.run()
    jobs = [j for j in slurm_jobs(cluster) if j["id"] not in before]
    return {"run": run, "cancelled": job, "first": (process.returncode, first_output), "second": second,
            "after_first": after_first, "after_second": submissions(emulators), "jobs": jobs}


def test_a_job_cancelled_with_scancel_is_reported_failed_and_a_rerun_recovers_without_submitting_again(on_slurm):
    code, output = on_slurm["first"]
    assert code != 0, output[-3000:]
    assert "Error in" in output and on_slurm["cancelled"]["id"] in output, output[-3000:]
    second = on_slurm["second"]
    assert second.returncode == 0, second.stderr[-4000:]
    # every service job was made by the first run; the rerun found them (journal, receipts)
    assert on_slurm["after_first"] == {"opencravat": 2, "cgi": 2}
    assert on_slurm["after_second"] == on_slurm["after_first"]


def test_merge_and_report_run_as_one_slurm_group_job_and_the_network_steps_on_the_submit_host(on_slurm, cluster):
    # the plugin names each job's rules in its SLURM comment: only the group of merge + report went
    assert {job["comment"] for job in on_slurm["jobs"]} == {"rule_finish_merge_annotations_report_plots"}
    assert [job["state"] for job in on_slurm["jobs"]] == ["CANCELLED", "COMPLETED"]
    first, second = on_slurm["first"][1], on_slurm["second"].stderr
    for step in ("bravo_frequencies", "opencravat_submit", "opencravat_poll", "opencravat_report", "cgi_submit",
                 "cgi_poll", "cgi_download", "opencga_upload", "opencga_query"):
        assert f"localrule {step}:" in first + second, step  # (the first run stops after the cancel)
    assert "Group job finish" in second and "rule merge_annotations:" in second and "rule report_plots:" in second
    assert f"has been submitted with SLURM jobid {on_slurm['jobs'][-1]['id']}" in second
    # merge's memory and time are its own (300 MB plus its inputs' size, 10 min for inputs this small),
    # not the profile's defaults (1000 MB, 30 min)
    merges = [block for block in second.split("rule ")[1:] if block.startswith("merge_annotations:")]
    assert len(merges) == 2 and all("mem_mb=300," in block and "runtime=10" in block for block in merges), merges
    # the group asked for no more CPUs than the node has (else it would pend for ever)
    shown = cluster.scontrol("show", "job", on_slurm["jobs"][-1]["id"]).stdout
    assert 0 < int(shown.split("NumCPUs=")[1].split()[0]) <= cluster.cpus, shown


def records(path: Path) -> tuple[list[str], list[str]]:
    """A merged VCF's header lines and records, without what differs from run to run by design:
    gensvc's provenance lines, and the job ids and emulator ports the INFO descriptions name."""
    with pysam.VariantFile(str(path)) as vcf:
        header = [re.sub(r"http://127\.0\.0\.1:\d+", "URL", re.sub(r"\bjob [\w.-]+", "job ID", line))
                  for line in str(vcf.header).splitlines() if not line.startswith("##gensvc")]
        return header, [str(record) for record in vcf]


def saved_environment(cluster, job_ids) -> str:
    """What slurmctld keeps of each job: `scontrol show job -d`, its batch script, and its state files."""
    kept = []
    for job_id in job_ids:
        kept.append(cluster.scontrol("show", "job", "-d", job_id).stdout)
        kept.append(cluster.scontrol("write", "batch_script", job_id, "-").stdout)
    for path in (cluster.dir / "state").rglob("*"):
        if path.is_file():
            kept.append(path.read_bytes().decode("latin-1"))
    return "\n".join(kept)


def test_slurms_saved_job_environment_holds_no_secret(on_slurm, cluster):
    kept = saved_environment(cluster, [job["id"] for job in on_slurm["jobs"]])
    assert VISIBLE in kept  # the jobs' environment is there to be read ...
    for secret in CANARY.values():  # ... and no secret is in it
        assert secret not in kept


def test_secrets_in_the_environment_are_refused_before_any_job_is_submitted(tmp_path, cluster, emulators):
    run = Run(tmp_path, emulators, cluster)
    before = len(slurm_jobs(cluster))
    done = run.run(PROFILE, env={**run.env, "GENSVC_BRAVO_TOKEN": CANARY["bravo"]})
    assert done.returncode != 0
    assert "secrets in the environment (GENSVC_BRAVO_TOKEN)" in done.stderr and "GENSVC_CREDENTIALS" in done.stderr
    assert CANARY["bravo"] not in done.stderr + done.stdout
    assert len(slurm_jobs(cluster)) == before
    assert not (tmp_path / "results").exists()


def test_a_job_failing_on_a_corrupt_input_is_reported_with_the_rule_logs_reason(on_slurm, tmp_path, cluster):
    run = on_slurm["run"]
    copy = tmp_path / "corrupt"
    shutil.copytree(run.workdir, copy, symlinks=True)
    (copy / "results" / "bravo" / "tumour.bravo.tsv").write_text("this is not a Bravo table\n")
    env = {**run.env, "GENSVC_STATE_DIR": str(copy / ".gensvc"), "HOME": str(copy),
           "GENSVC_CREDENTIALS": str(copy / "credentials.yaml"), "XDG_STATE_HOME": str(copy / "xdg-state")}
    done = subprocess.run([*run.command(PROFILE, "--forcerun", "merge_annotations"), "--directory", str(copy),
                           "--configfile", str(copy / "config.yaml")],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode != 0
    log = (copy / "logs" / "merge" / "tumour.log").read_text().strip().splitlines()
    reason = log[-1]
    assert "tumour.bravo.tsv" in reason, log
    assert reason in done.stdout + done.stderr, (done.stdout + done.stderr)[-4000:]


def checkout_copy(where: Path) -> Path:
    """The checkout's files (as git sees them) in a new directory: the demo writes into its checkout."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, target = REPO / name, where / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # gensvc/schemas -> ../schemas: the demo finds its checkout through it
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
    return where


def test_results_on_slurm_are_identical_to_gensvc_demo_through_the_local_profile(on_slurm, tmp_path, cluster):
    copy = checkout_copy(tmp_path / "checkout")
    before = {job["id"] for job in slurm_jobs(cluster)}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GENSVC_", "SLURM_"))}
    # a secret of the user's own stays out of the demo, which uses its 0600 file
    env = {**clean, "PYTHONPATH": str(copy), "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "xdg"),
           "GENSVC_BRAVO_TOKEN": CANARY["bravo"]}
    done = subprocess.run([sys.executable, "-m", "gensvc.cli", "demo", "--profile", str(copy / "workflow/profiles/local")],
                          cwd=copy, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Using workflow specific profile" in done.stderr or "Using profile" in done.stderr, done.stderr[:2000]
    assert "Demo finished" in done.stdout
    assert {job["id"] for job in slurm_jobs(cluster)} == before  # all of it ran here
    assert (copy / ".gensvc" / "demo-credentials.yaml").stat().st_mode & 0o777 == 0o600
    local, remote = copy / "results", on_slurm["run"].workdir / "results"
    for sample in ("tumour", "normal"):
        (remote_header, remote_records), (local_header, local_records) = (
            records(remote / f"{sample}.annotated.vcf.gz"), records(local / f"{sample}.annotated.vcf.gz"))
        assert remote_records == local_records
        assert remote_header == local_header
        assert (remote / f"{sample}.annotated.tsv").read_text() == (local / f"{sample}.annotated.tsv").read_text()
    for plot in ("bravo_af_by_filter.svg", "opencravat_consequences.svg", "cgi_oncogenic_summary.svg"):
        assert (remote / "report" / plot).stat().st_size > 0


def test_demo_help_says_a_profile_runs_it_on_a_cluster():
    done = subprocess.run([sys.executable, "-m", "gensvc.cli", "demo", "--help"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "[--profile DIR]" in done.stdout
    assert "--profile workflow/profiles/slurm" in done.stdout and "SLURM jobs" in done.stdout
