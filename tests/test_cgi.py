"""Cancer Genome Interpreter operations against the CGI emulator over real HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests

from helpers import REPO, add_fault, read_json, run_gensvc, run_snakemake, stats
from gensvc.emulators.server import start_emulator
from gensvc.services.cgi import input_key, parse_alterations, parse_biomarkers

EMAIL, TOKEN = "someone@example.org", "cgi-test-token-7d1e2b"
EXAMPLE_ZIP = REPO / "tests" / "data" / "cgi_results_example.zip"  # a real CGI result
VCF = (
    "##fileformat=VCFv4.2\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "chr7\t140753336\t.\tA\tT\t.\tPASS\t.\n"
    "chr12\t25245350\t.\tC\tA,T\t.\tPASS\t.\n"
    "chr17\t7675088\t.\tCA\tC\t.\tPASS\t.\n"
    "chr11\t32417908\t.\tC\tCACCGTACA\t.\tPASS\t.\n"
)


@pytest.fixture(scope="session")
def cgi_server():
    with start_emulator("cgi", tokens=[TOKEN], time_scale=0.02, quota=3) as emulator:
        yield emulator


@pytest.fixture
def cgi(cgi_server):
    auth = {"Authorization": f"{EMAIL} {TOKEN}"}
    for job in requests.get(cgi_server.url, headers=auth, timeout=5).json():
        requests.delete(f"{cgi_server.url}/{job}", headers=auth, timeout=5)
    requests.delete(f"{cgi_server.root}/_emulator/faults", timeout=5)
    requests.delete(f"{cgi_server.root}/_emulator/stats", timeout=5)
    return cgi_server


@pytest.fixture
def cgi_env(tmp_path, cgi) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GENSVC_")}
    (tmp_path / "home").mkdir()
    return {**clean, "HOME": str(tmp_path / "home"), "GENSVC_STATE_DIR": str(tmp_path / "state"),
            "GENSVC_CGI_URL": cgi.url, "GENSVC_CGI_EMAIL": EMAIL, "GENSVC_CGI_TOKEN": TOKEN,
            "GENSVC_CGI_BACKOFF": "0.05", "GENSVC_LOG_LEVEL": "DEBUG"}


@pytest.fixture
def mutations(tmp_path) -> Path:
    path = tmp_path / f"m{time.monotonic_ns()}.vcf"
    path.write_text(VCF.replace("##fileformat=VCFv4.2\n", f"##fileformat=VCFv4.2\n##run={path.stem}\n"))
    return path


def jobs(cgi) -> list[str]:
    return requests.get(cgi.url, headers={"Authorization": f"{EMAIL} {TOKEN}"}, timeout=5).json()


def submit(tmp_path, env, mutations, *extra, receipt="receipt.json"):
    return run_gensvc(["cgi", "submit", "--input", f"mutations={mutations}", "--cancer-type", "BRCA",
                       "--title", "test", "--reference", "GRCh38", "--output", f"receipt={tmp_path / receipt}",
                       "--log", tmp_path / f"{receipt}.log", *extra], env)


def poll(tmp_path, env):
    return run_gensvc(["cgi", "poll", "--input", f"receipt={tmp_path / 'receipt.json'}", "--first-wait", "0.2",
                       "--max-wait", "0.5", "--timeout", "60", "--output", f"status={tmp_path / 'status.json'}"], env)


def download(tmp_path, env, *extra):
    return run_gensvc(["cgi", "download", "--input", f"receipt={tmp_path / 'receipt.json'}",
                       "--output", f"alterations={tmp_path / 'out' / 'alterations.tsv'}",
                       "--output", f"biomarkers={tmp_path / 'out' / 'biomarkers.tsv'}",
                       "--output", f"summary={tmp_path / 'out' / 'summary.txt'}", *extra], env)


def test_submit_poll_download_and_parse(tmp_path, cgi_env, cgi, mutations):
    done = submit(tmp_path, cgi_env, mutations)
    assert done.returncode == 0, done.stderr
    receipt = read_json(tmp_path / "receipt.json")
    assert len(receipt["job_id"]) == 20 and receipt["request"]["reference"] == "hg38"
    assert poll(tmp_path, cgi_env).returncode == 0
    assert read_json(tmp_path / "status.json")["status"] == "Done"
    done = download(tmp_path, cgi_env)
    assert done.returncode == 0, done.stderr
    rows = parse_alterations(tmp_path / "out" / "alterations.tsv")
    wanted = {input_key(c, p, r, a) for c, p, r, alts in
              [("chr7", 140753336, "A", ["T"]), ("chr12", 25245350, "C", ["A", "T"]),
               ("chr17", 7675088, "CA", ["C"]), ("chr11", 32417908, "C", ["CACCGTACA"])] for a in alts}
    assert {row["key"] for row in rows} == wanted
    assert all(row["CGI-Oncogenic Summary"] for row in rows)
    parse_biomarkers(tmp_path / "out" / "biomarkers.tsv")
    assert "=== CGI-ANALYSIS ===" in (tmp_path / "out" / "summary.txt").read_text()
    assert read_json(tmp_path / "out" / "summary.txt.prov.json")["versions"]["cgi"].startswith("v")


def test_the_real_example_zip_parses():
    import pysam

    with zipfile.ZipFile(EXAMPLE_ZIP) as archive, pytest.MonkeyPatch.context() as patch:
        workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"cgi-example-{os.getpid()}"
        archive.extractall(workdir)
    try:
        rows = parse_alterations(workdir / "alterations.tsv")
        assert len(rows) == 88
        keys = {row["key"] for row in rows}
        pysam.set_verbosity(0)
        with pysam.VariantFile(str(workdir / "input01.tsv")) as vcf:
            inputs = [input_key(r.chrom, r.pos, r.ref, a) for r in vcf for a in r.alts]
        assert len(inputs) == 90 and set(inputs) == keys  # every input ALT has its row, and only those
        assert ("10", 43609077, "TTCCCTGAGGAGGAGAAGTGCTTCTGC", "-") in keys  # a deletion
        assert ("11", 32417908, "-", "ACCGTACA") in keys  # an insertion
        biomarkers = parse_biomarkers(workdir / "biomarkers.tsv")
        assert biomarkers and set(biomarkers[0]) >= {"Sample ID", "Alterations", "Biomarker", "Drugs", "Response"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("variant", ["slip", "absolute", "bomb", "link", "many"])
def test_hostile_zips_are_refused_and_leave_no_file(tmp_path, cgi_env, cgi, mutations, variant):
    assert submit(tmp_path, cgi_env, mutations).returncode == 0
    assert poll(tmp_path, cgi_env).returncode == 0
    add_fault(cgi, path="*", kind="hostile_zip", variant=variant)
    done = download(tmp_path, cgi_env, "--output", f"zip={tmp_path / 'out' / 'all.zip'}")
    assert done.returncode == 5, done.stderr
    assert "refusing the result archive" in done.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == [] if (tmp_path / "out").exists() else True
    assert not Path("/tmp/evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_error_job_shows_its_logs(tmp_path, cgi_env, cgi, mutations):
    add_fault(cgi, path="*", method="POST", kind="job_error", message="VEP crashed on line 3", count=1)
    assert submit(tmp_path, cgi_env, mutations).returncode == 0
    done = poll(tmp_path, cgi_env)
    assert done.returncode == 4
    line = done.stderr.strip().splitlines()[-1]
    assert "ended Error" in line and "VEP crashed on line 3" in line
    assert not (tmp_path / "status.json").exists()


def test_downloading_the_results_of_a_failed_job_exits_4_with_its_logs_as_poll_does(tmp_path, cgi_env, cgi, mutations):
    add_fault(cgi, path="*", method="POST", kind="job_error", message="VEP crashed on line 3", count=1)
    assert submit(tmp_path, cgi_env, mutations).returncode == 0
    assert poll(tmp_path, cgi_env).returncode == 4  # the job has ended Error
    done = download(tmp_path, cgi_env)
    assert done.returncode == 4, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "ended Error" in line and "VEP crashed on line 3" in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_quota_says_how_many_jobs_and_how_to_free_one(tmp_path, cgi_env, cgi, mutations):
    for n in range(3):
        variant = mutations.with_name(f"q{n}.vcf")
        variant.write_text(mutations.read_text() + f"chr1\t{1000 + n}\t.\tA\tG\t.\tPASS\t.\n")
        assert submit(tmp_path, cgi_env, variant, receipt=f"r{n}.json").returncode == 0
    done = submit(tmp_path, cgi_env, mutations, receipt="over.json")
    assert done.returncode == 2
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and "3 jobs exist" in line and "cgi delete" in line


def test_delete_twice_succeeds(tmp_path, cgi_env, cgi, mutations):
    assert submit(tmp_path, cgi_env, mutations).returncode == 0
    job = read_json(tmp_path / "receipt.json")["job_id"]
    for n, expected in enumerate(["deleted", "already gone"]):
        done = run_gensvc(["cgi", "delete", "--input", f"receipt={tmp_path / 'receipt.json'}",
                           "--output", f"deleted={tmp_path / f'd{n}.json'}"], cgi_env)
        assert done.returncode == 0, done.stderr
        assert read_json(tmp_path / f"d{n}.json")["result"] == expected
    assert job not in jobs(cgi)
    done = run_gensvc(["cgi", "delete", "--job-id", job, "--output", f"deleted={tmp_path / 'd2.json'}"], cgi_env)
    assert done.returncode == 0


def test_list(tmp_path, cgi_env, cgi, mutations):
    assert submit(tmp_path, cgi_env, mutations).returncode == 0
    done = run_gensvc(["cgi", "list", "--output", f"jobs={tmp_path / 'jobs.json'}"], cgi_env)
    assert done.returncode == 0, done.stderr
    [job] = read_json(tmp_path / "jobs.json")["jobs"]
    assert job["id"] == read_json(tmp_path / "receipt.json")["job_id"] and job["metadata"]["cancertype"] == "BRCA"


def test_secrets_in_no_log_or_output(tmp_path, cgi_env, cgi, mutations):
    assert submit(tmp_path, cgi_env, mutations).returncode == 0
    assert poll(tmp_path, cgi_env).returncode == 0
    done = download(tmp_path, cgi_env, "--log", tmp_path / "download.log")
    assert done.returncode == 0, done.stderr
    assert "Authorization" in (tmp_path / "download.log").read_text()
    wrong = run_gensvc(["cgi", "list", "--output", f"jobs={tmp_path / 'j.json'}"], cgi_env | {"GENSVC_CGI_TOKEN": "wrong-token-123456"})
    assert wrong.returncode == 3 and "GENSVC_CGI_TOKEN" in wrong.stderr
    everything = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".vcf")
    for secret in (TOKEN, EMAIL, "wrong-token-123456"):
        assert secret not in everything + wrong.stderr


def test_rerun_after_a_crash_does_not_submit_twice(tmp_path, cgi_env, cgi, mutations):
    add_fault(cgi, path="/api/v1", method="POST", kind="delay", seconds=30, after=True, count=1)
    command = [sys.executable, "-m", "gensvc.cli", "cgi", "submit", "--input", f"mutations={mutations}",
               "--cancer-type", "BRCA", "--output", f"receipt={tmp_path / 'receipt.json'}"]
    client = subprocess.Popen(command, env=cgi_env)
    deadline = time.monotonic() + 20
    while not jobs(cgi) and time.monotonic() < deadline:
        time.sleep(0.05)
    client.send_signal(signal.SIGKILL)
    client.wait()
    assert len(jobs(cgi)) == 1 and not (tmp_path / "receipt.json").exists()
    done = run_gensvc(command[3:], cgi_env)
    assert done.returncode == 0, done.stderr
    assert read_json(tmp_path / "receipt.json")["reused"] is True
    assert len(jobs(cgi)) == 1


def test_a_rerun_at_once_after_a_crash_waits_for_the_job_the_dead_run_s_request_is_still_making(
        tmp_path, cgi_env, cgi, mutations):
    # the server holds the POST 6 s before acting on it: the job appears after the client died
    add_fault(cgi, path="/api/v1", method="POST", kind="delay", seconds=6, count=1)
    command = [sys.executable, "-m", "gensvc.cli", "cgi", "submit", "--input", f"mutations={mutations}",
               "--cancer-type", "BRCA", "--output", f"receipt={tmp_path / 'receipt.json'}"]
    log = tmp_path / "killed.log"
    client = subprocess.Popen([*command, "--log", str(log)], env=cgi_env)
    deadline = time.monotonic() + 30
    while not (log.exists() and "POST http" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # sent, and held
    client.send_signal(signal.SIGKILL)
    client.wait()
    killed_at = time.monotonic()
    assert jobs(cgi) == []
    # rerun at once, as snakemake --retries or a requeued cluster job does
    done = run_gensvc([*command[3:], "--log", tmp_path / "rerun.log"], cgi_env | {"GENSVC_CGI_READ_TIMEOUT": "10"})
    assert done.returncode == 0, done.stderr
    time.sleep(max(0.0, killed_at + 7 - time.monotonic()))  # the held request is done by now
    receipt = read_json(tmp_path / "receipt.json")
    assert jobs(cgi) == [receipt["job_id"]] and receipt["reused"] is True
    assert "may still be making its job" in (tmp_path / "rerun.log").read_text()


@pytest.mark.parametrize("args, says", [
    (["--cancer-type", "BRCAA"], "did you mean BRCA"),
    (["--cancer-type", "BRCA", "--reference", "hg99"], "reference"),
])
def test_bad_params_refused_before_any_request(tmp_path, cgi_env, cgi, mutations, args, says):
    done = run_gensvc(["cgi", "submit", "--input", f"mutations={mutations}", *args,
                       "--output", f"receipt={tmp_path / 'r.json'}"], cgi_env)
    assert done.returncode == 2 and says in done.stderr
    assert stats(cgi)["requests"] == 0


@pytest.mark.parametrize("kind, content, says", [
    ("mutations", "gene\tchange\nTP53\tR175H\n", "protein, gdna or chr pos ref alt"),
    ("cnas", "gene\tcna\nERBB2\tgain\n", "amp or del"),
    ("translocations", "fus\nBCR-ABL1\n", "GENE1__GENE2"),
    ("cnas", "", "empty"),
])
def test_unreadable_inputs_refused_before_any_request(tmp_path, cgi_env, cgi, kind, content, says):
    path = tmp_path / f"{kind}.tsv"
    path.write_text(content)
    done = run_gensvc(["cgi", "submit", "--input", f"{kind}={path}", "--cancer-type", "BRCA",
                       "--output", f"receipt={tmp_path / 'r.json'}"], cgi_env)
    assert done.returncode == 2 and says in done.stderr
    assert stats(cgi)["requests"] == 0


def test_table_inputs_of_every_kind(tmp_path, cgi_env, cgi):
    files = {"mutations": "protein\tsample\nTP53:p.R248Q\tS1\nKRAS:p.G12D\tS1\n",
             "cnas": "gene\tcna\tsample\nERBB2\tamp\tS1\n", "translocations": "fus\tsample\nBCR__ABL1\tS1\n"}
    args = []
    for kind, content in files.items():
        (tmp_path / f"{kind}.tsv").write_text(content)
        args += ["--input", f"{kind}={tmp_path / f'{kind}.tsv'}"]
    done = run_gensvc(["cgi", "submit", *args, "--cancer-type", "CANCER", "--output", f"receipt={tmp_path / 'receipt.json'}"], cgi_env)
    assert done.returncode == 0, done.stderr
    assert poll(tmp_path, cgi_env).returncode == 0
    assert download(tmp_path, cgi_env).returncode == 0
    keys = {row["key"] for row in parse_alterations(tmp_path / "out" / "alterations.tsv")}
    assert ("protein", "TP53:p.R248Q") in keys


@pytest.mark.parametrize("operation", ["submit", "poll", "download", "delete", "list"])
def test_wrapper_examples_run(tmp_path, cgi_env, cgi, operation):
    (tmp_path / "sample.vcf").write_text(VCF)
    if operation != "submit" and operation != "list":
        done = run_gensvc(["cgi", "submit", "--input", f"mutations={tmp_path / 'sample.vcf'}", "--cancer-type", "BRCA",
                           "--output", f"receipt={tmp_path / 'receipt.json'}"], cgi_env)
        assert done.returncode == 0, done.stderr
    if operation == "download":
        assert poll(tmp_path, cgi_env).returncode == 0
    (tmp_path / "Snakefile").write_text((REPO / "wrappers" / "cgi" / operation / "test" / "Snakefile").read_text())
    done = run_snakemake(tmp_path, cgi_env)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = [p for p in (tmp_path / "results").iterdir() if not p.name.endswith(".prov.json")]
    assert outputs and all(p.stat().st_size > 0 for p in outputs)
