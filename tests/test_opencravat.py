"""OpenCRAVAT operations, the same cases against our emulator and the real server (open-cravat 3.2.4).

The real server runs offline with the small modules under tests/peers/opencravat_modules
(setup: tests/peers/setup_opencravat.sh, which `make test` runs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from helpers import REPO, add_fault, isolated_env, read_json, run_gensvc, run_snakemake, stats
from gensvc.emulators.server import start_emulator
from peers.opencravat_server import start_opencravat

# a multiallelic site, an insertion, a deletion, an MNP; chr and bare names
VCF = (
    "##fileformat=VCFv4.2\n"
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "chr1\t1000\trs1\tA\tG,T\t50\tPASS\tDP=10\n"
    "1\t2000\t.\tC\tCAT\t.\t.\t.\n"
    "chr2\t3000\tdel1\tGTA\tG\t30\tPASS\tDP=5\n"
    "chr3\t4003\t.\tAC\tGT\t.\t.\t.\n"
)
# as OpenCRAVAT reports them (tests/peers/README.md, observed on the real server)
EXPECTED = [("chr1", "1000", "A", "G"), ("chr1", "1000", "A", "T"), ("chr1", "2001", "-", "AT"),
            ("chr2", "3001", "TA", "-"), ("chr3", "4003", "AC", "GT")]
PASSWORD = "s3cret-Pa55word-for-tests"


@dataclass
class Peer:
    name: str
    url: str
    annotator: str
    emulator: object = None

    def job_ids(self, session=None) -> list[str]:
        return (session or requests).get(f"{self.url}submit/jobs", timeout=10).json()


@pytest.fixture(scope="session")
def oc_emulator():
    with start_emulator("opencravat", time_scale=0.2) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def oc_real(tmp_path_factory):
    with start_opencravat(tmp_path_factory.mktemp("oc-real")) as server:
        yield server


@pytest.fixture(params=["emulator", "real"])
def peer(request) -> Peer:
    if request.param == "emulator":
        emulator = request.getfixturevalue("oc_emulator")
        requests.delete(f"{emulator.root}/_emulator/faults", timeout=5)
        requests.delete(f"{emulator.root}/_emulator/stats", timeout=5)
        return Peer("emulator", emulator.url, "clinvar", emulator)
    server = request.getfixturevalue("oc_real")
    return Peer("real", server.url, "gensvcdemo")


@pytest.fixture
def oc_env(tmp_path, peer) -> dict:
    return isolated_env(tmp_path, GENSVC_OPENCRAVAT_URL=peer.url, GENSVC_OPENCRAVAT_BACKOFF="0.05")


@pytest.fixture
def vcf(tmp_path) -> Path:
    # a name unique per test: the real server files a job under its input's name
    # unique content too: submissions are recognised by their inputs' digests
    unique = time.monotonic_ns()
    path = tmp_path / f"in_{unique}.vcf"
    path.write_text(VCF.replace("##fileformat=VCFv4.2\n", f"##fileformat=VCFv4.2\n##gensvcTest={unique}\n"))
    return path


def submit(tmp_path, env, vcf, peer, *extra, receipt="receipt.json"):
    return run_gensvc(["opencravat", "submit", "--input", f"files={vcf}", "--annotators", peer.annotator,
                       "--reports", "tsv", "--output", f"receipt={tmp_path / receipt}", *extra], env)


def poll(tmp_path, env, *extra):
    return run_gensvc(["opencravat", "poll", "--input", f"receipt={tmp_path / 'receipt.json'}",
                       "--output", f"status={tmp_path / 'status.json'}", "--first-wait", "0.3", "--max-wait", "1",
                       "--timeout", "120", *extra], env)


def report(tmp_path, env, *kinds):
    outputs = [a for kind in kinds for a in ("--output", f"{kind}={tmp_path / ('report.' + kind)}")]
    return run_gensvc(["opencravat", "report", "--input", f"receipt={tmp_path / 'receipt.json'}", *outputs], env)


def report_rows(path: Path) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def test_submit_poll_report(tmp_path, oc_env, vcf, peer):
    done = submit(tmp_path, oc_env, vcf, peer)
    assert done.returncode == 0, done.stderr
    receipt = read_json(tmp_path / "receipt.json")
    assert receipt["service"] == "opencravat" and receipt["job_id"] in peer.job_ids()
    assert len(receipt["idempotency_key"]) == 64 and receipt["reused"] is False
    done = poll(tmp_path, oc_env)
    assert done.returncode == 0, done.stderr
    assert read_json(tmp_path / "status.json")["status"] == "Finished"
    done = report(tmp_path, oc_env, "tsv", "vcf", "csv")
    assert done.returncode == 0, done.stderr
    rows = report_rows(tmp_path / "report.tsv")
    assert [(r["chrom"], r["pos"], r["ref_base"], r["alt_base"]) for r in rows] == EXPECTED
    assert any(column.startswith(f"{peer.annotator}.") for column in rows[0])
    assert (tmp_path / "report.vcf").read_text().startswith("##fileformat=VCF")
    assert (tmp_path / "report.csv").stat().st_size > 0
    prov = read_json(tmp_path / "report.tsv.prov.json")
    assert prov["details"]["reports"]["vcf"]["content_type"].startswith("text/x-vcard")


def test_bgzipped_vcf_is_accepted(tmp_path, oc_env, vcf, peer):
    import pysam

    gz = Path(f"{vcf}.gz")
    pysam.tabix_compress(str(vcf), str(gz))
    done = submit(tmp_path, oc_env, gz, peer)
    assert done.returncode == 0, done.stderr
    assert poll(tmp_path, oc_env).returncode == 0
    assert report(tmp_path, oc_env, "tsv").returncode == 0
    assert len(report_rows(tmp_path / "report.tsv")) == len(EXPECTED)


def test_rerun_after_a_crash_between_post_and_receipt_submits_once(tmp_path, oc_env, vcf, peer):
    before = set(peer.job_ids())
    if peer.emulator is not None:
        # the server acts on the POST, then holds its answer while we kill the client
        add_fault(peer.emulator, path="/submit/submit", method="POST", kind="delay", seconds=30, after=True, count=1)
    command = [sys.executable, "-m", "gensvc.cli", "opencravat", "submit", "--input", f"files={vcf}",
               "--annotators", peer.annotator, "--output", f"receipt={tmp_path / 'receipt.json'}"]
    client = subprocess.Popen(command, env=oc_env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while set(peer.job_ids()) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    client.send_signal(signal.SIGKILL)
    client.wait()
    assert set(peer.job_ids()) != before, "the job never reached the server"
    (tmp_path / "receipt.json").unlink(missing_ok=True)  # the crash came before the receipt
    done = submit(tmp_path, oc_env, vcf, peer, receipt="receipt.json")
    assert done.returncode == 0, done.stderr
    assert read_json(tmp_path / "receipt.json")["reused"] is True
    assert len(set(peer.job_ids()) - before) == 1


def test_job_found_on_the_server_when_the_journal_is_lost(tmp_path, oc_env, vcf, peer):
    before = set(peer.job_ids())
    assert submit(tmp_path, oc_env, vcf, peer).returncode == 0
    first = read_json(tmp_path / "receipt.json")["job_id"]
    # another machine, or a wiped state dir: only the note on the server knows
    done = submit(tmp_path, oc_env | {"GENSVC_STATE_DIR": str(tmp_path / "other-state")}, vcf, peer, receipt="again.json")
    assert done.returncode == 0, done.stderr
    assert read_json(tmp_path / "again.json")["job_id"] == first
    assert len(set(peer.job_ids()) - before) == 1


def test_other_params_make_a_new_job(tmp_path, oc_env, vcf, peer):
    assert submit(tmp_path, oc_env, vcf, peer).returncode == 0
    done = submit(tmp_path, oc_env, vcf, peer, "--note", "second run", receipt="other.json")
    assert done.returncode == 0, done.stderr
    first, second = read_json(tmp_path / "receipt.json"), read_json(tmp_path / "other.json")
    assert first["job_id"] != second["job_id"]  # and not the same second: submissions are spaced


def test_job_that_cannot_start_fails_clearly_in_bounded_time(tmp_path, oc_env, vcf, peer):
    done = submit(tmp_path, oc_env, vcf, peer, "--input-format", "maf")
    assert done.returncode == 0, done.stderr
    started = time.monotonic()
    done = poll(tmp_path, oc_env, "--stuck-after", "3", "--timeout", "90")
    assert done.returncode == 4
    assert time.monotonic() - started < 60
    line = done.stderr.strip().splitlines()[-1]
    assert "stayed Submitted" in line and "Aborted" in line and "input format maf" in line
    assert not (tmp_path / "status.json").exists()


def test_unknown_annotator_is_refused_before_submitting(tmp_path, oc_env, vcf, peer):
    before = peer.job_ids()
    done = run_gensvc(["opencravat", "submit", "--input", f"files={vcf}", "--annotators", "nosuchmodule",
                       "--output", f"receipt={tmp_path / 'r.json'}"], oc_env)
    assert done.returncode == 2
    assert "nosuchmodule" in done.stderr and "installed:" in done.stderr
    assert peer.job_ids() == before


def test_annotate_refuses_an_unknown_annotator_as_submit_does(tmp_path, oc_env, vcf, peer):
    out = tmp_path / "one.jsonl"
    done = run_gensvc(["opencravat", "annotate", "--chrom", "chr7", "--pos", "140753336", "--ref", "A", "--alt", "T",
                       "--annotators", f"{peer.annotator},nosuchmodule", "--output", f"annotations={out}"], oc_env)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "annotators not installed on the server: nosuchmodule" in line and "installed: " in line and peer.annotator in line.split("installed: ")[1]
    assert not out.exists()
    if peer.emulator is not None:
        assert "/submit/annotate" not in stats(peer.emulator)["by_path"]  # refused before any variant was sent


@pytest.mark.parametrize("content", [None, "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\nchr1\tnotanumber\t.\tA\tG\n"])
def test_missing_or_malformed_input_is_refused_before_any_request(tmp_path, oc_env, peer, content):
    path = tmp_path / "bad.vcf"
    if content is not None:
        path.write_text(content)
    before = peer.job_ids()
    done = run_gensvc(["opencravat", "submit", "--input", f"files={path}", "--output", f"receipt={tmp_path / 'r.json'}"], oc_env)
    assert done.returncode == 2
    assert "bad.vcf" in done.stderr and "Traceback" not in done.stderr
    assert peer.job_ids() == before
    if peer.emulator is not None:
        assert stats(peer.emulator)["by_path"] == {"/submit/jobs": 2}  # only our own listings above


def test_annotate_one_variant_and_a_vcf(tmp_path, oc_env, vcf, peer):
    out = tmp_path / "one.jsonl"
    done = run_gensvc(["opencravat", "annotate", "--chrom", "chr7", "--pos", "140753336", "--ref", "A", "--alt", "T",
                       "--annotators", peer.annotator, "--output", f"annotations={out}"], oc_env)
    assert done.returncode == 0, done.stderr
    [line] = [json.loads(l) for l in out.read_text().splitlines()]
    assert line["annotation"]["crx"]["pos"] == 140753336 and peer.annotator in line["annotation"]
    table = tmp_path / "all.tsv"
    done = run_gensvc(["opencravat", "annotate", "--input", f"vcf={vcf}", "--annotators", peer.annotator,
                       "--output", f"annotations={table}"], oc_env)
    assert done.returncode == 0, done.stderr
    rows = report_rows(table)
    # each ALT in OpenCRAVAT's own spelling, as the jobs report it
    assert [(r["crx.chrom"], r["crx.pos"], r["crx.ref_base"], r["crx.alt_base"]) for r in rows] == EXPECTED


# ---- faults: the emulator only -------------------------------------------------------


@pytest.fixture
def emulated(oc_emulator) -> Peer:
    requests.delete(f"{oc_emulator.root}/_emulator/faults", timeout=5)
    requests.delete(f"{oc_emulator.root}/_emulator/stats", timeout=5)
    return Peer("emulator", oc_emulator.url, "clinvar", oc_emulator)


@pytest.fixture
def emu_env(tmp_path, emulated) -> dict:
    return isolated_env(tmp_path, GENSVC_OPENCRAVAT_URL=emulated.url, GENSVC_OPENCRAVAT_BACKOFF="0.05")


def test_transient_errors_while_polling_do_not_fail_the_job(tmp_path, emu_env, vcf, emulated):
    assert submit(tmp_path, emu_env, vcf, emulated).returncode == 0
    job = read_json(tmp_path / "receipt.json")["job_id"]
    add_fault(emulated.emulator, path=f"/submit/jobs/{job}/status", kind="status", status=503, count=4)
    add_fault(emulated.emulator, path=f"/submit/jobs/{job}/status", kind="status", status=429,
              headers={"Retry-After": "1"}, count=1)
    add_fault(emulated.emulator, path=f"/submit/jobs/{job}/status", kind="drop", count=1)
    done = poll(tmp_path, emu_env, "--max-wait", "0.5")
    assert done.returncode == 0, done.stderr
    seen = stats(emulated.emulator)["by_status"]
    assert seen["503"] == 4 and seen["429"] == 1 and seen["drop"] == 1


def test_status_outage_past_the_retries_is_tolerated_then_times_out(tmp_path, emu_env, vcf, emulated):
    assert submit(tmp_path, emu_env, vcf, emulated).returncode == 0
    job = read_json(tmp_path / "receipt.json")["job_id"]
    add_fault(emulated.emulator, path=f"/submit/jobs/{job}/status", kind="status", status=502)
    done = poll(tmp_path, emu_env | {"GENSVC_OPENCRAVAT_MAX_ATTEMPTS": "2"}, "--timeout", "3")
    assert done.returncode == 5
    assert "did not finish within 3 s" in done.stderr


def test_download_cut_short_resumes_and_is_identical(tmp_path, emu_env, vcf, emulated):
    assert submit(tmp_path, emu_env, vcf, emulated, "--reports", "vcf").returncode == 0
    assert poll(tmp_path, emu_env).returncode == 0
    assert report(tmp_path, emu_env, "vcf").returncode == 0
    clean = (tmp_path / "report.vcf").read_bytes()
    job = read_json(tmp_path / "receipt.json")["job_id"]
    add_fault(emulated.emulator, path=f"/submit/jobs/{job}/reports/vcf", method="GET", kind="truncate", count=2)
    done = report(tmp_path, emu_env, "vcf")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report.vcf").read_bytes() == clean
    assert read_json(tmp_path / "report.vcf.prov.json")["details"]["reports"]["vcf"]["resumed"] == 2
    assert not list(tmp_path.glob("*.part"))


def test_a_finished_job_whose_details_cannot_be_read_for_a_while_is_still_reported_finished(
        tmp_path, emu_env, vcf, emulated):
    # the server restarting just as the job finished: the job list is out of reach for
    # longer than one request's retries, and the poll rides it out as it rides out a status check
    assert submit(tmp_path, emu_env, vcf, emulated).returncode == 0
    add_fault(emulated.emulator, path="/submit/getjobs", kind="status", status=503, count=3)
    done = poll(tmp_path, emu_env | {"GENSVC_OPENCRAVAT_MAX_ATTEMPTS": "2"})
    assert done.returncode == 0, done.stderr
    assert read_json(tmp_path / "status.json")["status"] == "Finished"
    assert stats(emulated.emulator)["by_status"]["503"] == 3


@pytest.mark.parametrize("fault", [{"kind": "status", "status": 502}, {"kind": "drop", "processed": True}],
                         ids=["502", "connection-lost-after-it-acted"])
def test_a_report_the_server_is_asked_to_make_is_asked_again_after_a_lost_answer(
        tmp_path, emu_env, vcf, emulated, fault):
    # making a report is making it again from the job's results: safe to send twice
    assert submit(tmp_path, emu_env, vcf, emulated).returncode == 0  # the job makes tsv only
    assert poll(tmp_path, emu_env).returncode == 0
    job = read_json(tmp_path / "receipt.json")["job_id"]
    add_fault(emulated.emulator, path=f"/submit/jobs/{job}/reports/vcf", method="POST", count=2, **fault)
    done = report(tmp_path, emu_env, "vcf")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report.vcf").read_text().startswith("##fileformat=VCF")
    assert stats(emulated.emulator)["by_route"][f"POST /submit/jobs/{job}/reports/vcf"] == 3


def test_failed_job_exits_4_with_its_log(tmp_path, emu_env, vcf, emulated):
    assert submit(tmp_path, emu_env, vcf, emulated).returncode == 0
    job = read_json(tmp_path / "receipt.json")["job_id"]
    add_fault(emulated.emulator, path=f"/submit/jobs/{job}/status", kind="status", status=200,
              body={"status": "Error", "id": job}, count=1)
    done = poll(tmp_path, emu_env)
    assert done.returncode == 4
    assert f"opencravat job {job} ended Error" in done.stderr


def test_job_that_dies_after_it_started_fails_with_exit_4_not_a_timeout(tmp_path, emu_env, vcf, emulated):
    add_fault(emulated.emulator, path="/submit/submit", kind="job_abort", count=1)
    assert submit(tmp_path, emu_env, vcf, emulated).returncode == 0
    job = read_json(tmp_path / "receipt.json")["job_id"]
    started = time.monotonic()
    done = poll(tmp_path, emu_env, "--stuck-after", "2", "--timeout", "60")
    assert done.returncode == 4, done.stderr
    assert time.monotonic() - started < 50
    [line] = done.stderr.strip().splitlines()
    # the run died at the gene mapper: /status is frozen there, only the job list says Aborted
    assert f"opencravat job {job} stopped at 'Started" in line and "(hg38)'" in line and "Aborted" in line
    assert "job log:" in line and not (tmp_path / "status.json").exists()
    # a new submission with the same inputs does not reuse the failed job
    assert submit(tmp_path, emu_env, vcf, emulated, receipt="again.json").returncode == 0
    assert read_json(tmp_path / "again.json")["job_id"] != job


# ---- server mode: credentials ---------------------------------------------------------


@pytest.fixture(scope="session")
def oc_multiuser_emulator():
    with start_emulator("opencravat", time_scale=0.2, tokens=[f"alice:{PASSWORD}"]) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def oc_multiuser_real(tmp_path_factory):
    with start_opencravat(tmp_path_factory.mktemp("oc-multi"), multiuser=True) as server:
        answer = requests.get(f"{server.url}server/signup",
                              params={"username": "alice", "password": PASSWORD, "question": "q", "answer": "a"}, timeout=10)
        assert answer.json() in ("Signup successful", "Already registered")
        yield server


@pytest.mark.parametrize("kind", ["emulator", "real"])
def test_server_mode_login_and_wrong_password(request, tmp_path, vcf, kind):
    server = request.getfixturevalue("oc_multiuser_emulator" if kind == "emulator" else "oc_multiuser_real")
    annotator = "clinvar" if kind == "emulator" else "gensvcdemo"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GENSVC_")}
    env = {**clean, "GENSVC_STATE_DIR": str(tmp_path / "state"), "GENSVC_OPENCRAVAT_URL": server.url,
           "GENSVC_OPENCRAVAT_USER": "alice", "GENSVC_OPENCRAVAT_PASSWORD": PASSWORD, "GENSVC_LOG_LEVEL": "DEBUG"}
    args = ["opencravat", "submit", "--input", f"files={vcf}", "--annotators", annotator,
            "--output", f"receipt={tmp_path / 'r.json'}", "--log", str(tmp_path / "submit.log")]
    done = run_gensvc(args, env)
    assert done.returncode == 0, done.stderr
    wrong = "not-the-Pa55word-at-all"
    done = run_gensvc(args, env | {"GENSVC_OPENCRAVAT_PASSWORD": wrong})
    assert done.returncode == 3
    assert "login as 'alice' failed" in done.stderr and "GENSVC_OPENCRAVAT_PASSWORD" in done.stderr
    assert "Authorization" in (tmp_path / "submit.log").read_text()  # the header was logged, masked
    (tmp_path / "submit.log").rename(tmp_path / "wrong.log")
    nobody = run_gensvc(args, {k: v for k, v in env.items() if not k.startswith("GENSVC_OPENCRAVAT_USER")})
    assert nobody.returncode == 3 and "needs a login" in nobody.stderr
    everything = done.stdout + done.stderr + "".join(
        p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    assert PASSWORD not in everything and wrong not in everything


# ---- the wrappers ----------------------------------------------------------------------


def test_wrappers_chain_in_snakemake(tmp_path, oc_env, vcf, peer):
    (tmp_path / "Snakefile").write_text(f'''
rule all:
    input:
        "results/s.tsv",


rule submit:
    input:
        files="{vcf}",
    output:
        receipt="results/s.receipt.json",
    params:
        annotators=["{peer.annotator}"],
        reports=["tsv"],
    log:
        "logs/submit.log",
    wrapper:
        "opencravat/submit"


rule poll:
    input:
        receipt="results/s.receipt.json",
    output:
        status="results/s.status.json",
    params:
        first_wait=0.3,
        max_wait=1,
    log:
        "logs/poll.log",
    wrapper:
        "opencravat/poll"


rule report:
    input:
        receipt="results/s.receipt.json",
        status="results/s.status.json",
    output:
        tsv="results/s.tsv",
    log:
        "logs/report.log",
    script:
        "{REPO / 'wrappers' / 'opencravat' / 'report' / 'wrapper.py'}"
''')
    done = run_snakemake(tmp_path, oc_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(report_rows(tmp_path / "results" / "s.tsv")) == len(EXPECTED)


@pytest.mark.parametrize("operation", ["submit", "poll", "report", "annotate"])
def test_wrapper_examples_run(tmp_path, operation, oc_emulator):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GENSVC_")}
    env = {**clean, "GENSVC_STATE_DIR": str(tmp_path / "state"), "GENSVC_OPENCRAVAT_URL": oc_emulator.url}
    (tmp_path / "sample.vcf").write_text(VCF)
    if operation in ("poll", "report"):
        done = run_gensvc(["opencravat", "submit", "--input", f"files={tmp_path / 'sample.vcf'}", "--reports", "tsv",
                           "--output", f"receipt={tmp_path / 'receipt.json'}"], env)
        assert done.returncode == 0, done.stderr
    if operation == "report":
        assert poll(tmp_path, env).returncode == 0
    example = REPO / "wrappers" / "opencravat" / operation / "test" / "Snakefile"
    (tmp_path / "Snakefile").write_text(example.read_text())
    done = run_snakemake(tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = [p for p in (tmp_path / "results").iterdir() if not p.name.endswith(".prov.json")]
    assert outputs and all(p.stat().st_size > 0 for p in outputs)
