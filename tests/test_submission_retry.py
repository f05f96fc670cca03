"""A submission is retried, and never makes two jobs: faults on the submit path of the
OpenCRAVAT and CGI emulators, counted with their stats and job lists.

After 429/503 (the server did not take the request) it is simply sent again; after any
other 5xx, a connection lost after sending or a read timeout, the server may have made
the job: it is looked up by its idempotency tag first and sent again only if absent.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from helpers import add_fault, isolated_env, read_json, run_gensvc, stats
from gensvc.emulators.server import start_emulator

EMAIL, TOKEN = "retry@example.org", "cgi-retry-token-3f9a"
VCF = (
    "##fileformat=VCFv4.2\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "chr7\t140753336\t.\tA\tT\t.\tPASS\t.\n"
)

# (fault on the submit POST, whether the server made the job despite it, extra settings)
NOT_PROCESSED = {
    "503 twice": ({"kind": "status", "status": 503, "count": 2}, {}),
    "429 with Retry-After": ({"kind": "status", "status": 429, "headers": {"Retry-After": "1"}, "count": 1}, {}),
    "500 before the job was made": ({"kind": "status", "status": 500, "count": 1}, {}),
    "502 before the job was made": ({"kind": "status", "status": 502, "count": 1}, {}),
    "connection dropped before the job was made": ({"kind": "drop", "count": 1}, {}),
}
PROCESSED = {
    "502 after the job was made": ({"kind": "status", "status": 502, "processed": True, "count": 1}, {}),
    "500 after the job was made": ({"kind": "status", "status": 500, "processed": True, "count": 1}, {}),
    "504 after the job was made, every time": ({"kind": "status", "status": 504, "processed": True}, {}),
    "connection dropped after the job was made": ({"kind": "drop", "processed": True, "count": 1}, {}),
    "answer cut short": ({"kind": "truncate", "count": 1}, {}),
    "answer slower than the read timeout": ({"kind": "delay", "seconds": 4, "after": True, "count": 1},
                                            {"READ_TIMEOUT": "1"}),
}
CASES = [pytest.param(fault, False, extra, id=name) for name, (fault, extra) in NOT_PROCESSED.items()] + \
        [pytest.param(fault, True, extra, id=name) for name, (fault, extra) in PROCESSED.items()]


def clean_env(tmp_path, service: str, **settings) -> dict:
    key = service.upper()
    return isolated_env(tmp_path, **{f"GENSVC_{key}_BACKOFF": "0.05", f"GENSVC_{key}_BACKOFF_MAX": "0.2"},
                        **{f"GENSVC_{key}_{name}": value for name, value in settings.items()})


def unique_vcf(tmp_path):
    path = tmp_path / f"in_{time.monotonic_ns()}.vcf"
    path.write_text(VCF.replace("#CHROM", f"##gensvcTest={path.stem}\n#CHROM"))
    return path


# ---- OpenCRAVAT ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oc_server():
    with start_emulator("opencravat", time_scale=0.2) as emulator:
        yield emulator


@pytest.fixture
def oc(oc_server):
    requests.delete(f"{oc_server.root}/_emulator/faults", timeout=5)
    requests.delete(f"{oc_server.root}/_emulator/stats", timeout=5)
    yield oc_server
    requests.delete(f"{oc_server.root}/_emulator/faults", timeout=5)


def oc_jobs_tagged(oc, tag: str) -> list[str]:
    ids = requests.get(f"{oc.url}submit/jobs", timeout=5).json()
    jobs = requests.get(f"{oc.url}submit/getjobs", params={"ids": json.dumps(ids)}, timeout=5).json()
    return [job["id"] for job in jobs if tag in str(job.get("note", ""))]


def oc_submit(tmp_path, oc, vcf, **settings):
    env = clean_env(tmp_path, "opencravat", URL=oc.url, **settings)
    receipt = tmp_path / "receipt.json"
    done = run_gensvc(["opencravat", "submit", "--input", f"files={vcf}", "--annotators", "clinvar",
                       "--output", f"receipt={receipt}"], env, timeout=120)
    return done, receipt


@pytest.mark.parametrize("fault, processed, extra", CASES)
def test_opencravat_submission_is_retried_and_makes_one_job(tmp_path, oc, fault, processed, extra):
    add_fault(oc, path="/submit/submit", method="POST", **fault)
    done, receipt = oc_submit(tmp_path, oc, unique_vcf(tmp_path), **extra)
    assert done.returncode == 0, done.stderr
    key = read_json(receipt)["idempotency_key"]
    assert oc_jobs_tagged(oc, f"gensvc:{key[:32]}") == [read_json(receipt)["job_id"]]
    posts = stats(oc)["by_path"]["/submit/submit"]
    faulted = fault.get("count", 1)
    # a job the server made is found, not sent again; one it did not make is sent again
    assert posts == (1 if processed else faulted + 1)


@pytest.mark.parametrize(("status", "says"), [
    (503, "3 attempts"),  # refused: not taken, sent again up to max_attempts
    # each 502 is followed by a look-up that finds nothing, then a new attempt: at most
    # max_attempts submissions in all, and the line says the last one may have acted
    (502, "may have acted"),
], ids=["refused-every-attempt", "answer-lost-every-attempt"])
def test_opencravat_submission_failing_on_every_attempt_spends_one_budget_and_exits_5_without_a_job(
        tmp_path, oc, status, says):
    add_fault(oc, path="/submit/submit", method="POST", kind="status", status=status)
    before = requests.get(f"{oc.url}submit/jobs", timeout=5).json()
    done, receipt = oc_submit(tmp_path, oc, unique_vcf(tmp_path), MAX_ATTEMPTS="3")
    assert done.returncode == 5
    assert stats(oc)["by_path"]["/submit/submit"] == 3
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and str(status) in line and says in line
    assert not receipt.exists()
    assert requests.get(f"{oc.url}submit/jobs", timeout=5).json() == before


def test_opencravat_application_error_on_submit_is_not_retried(tmp_path, oc):
    # OpenCRAVAT's own errors are HTTP 500 with {"status": "error"}: an answer, not an outage
    add_fault(oc, path="/submit/submit", method="POST", kind="status", status=500,
              body={"status": "error", "msg": "something in the options"}, count=5)
    done, _ = oc_submit(tmp_path, oc, unique_vcf(tmp_path))
    assert done.returncode == 2
    assert "something in the options" in done.stderr
    assert stats(oc)["by_path"]["/submit/submit"] == 1


def test_concurrent_opencravat_submissions_reaching_the_server_late_each_get_a_job_of_their_own(tmp_path, oc):
    # OpenCRAVAT names a job by the second it arrived and hands a second submission in that second the
    # first one's job. Every other submission is held up on its way in (as a busy host or network holds
    # one), so that spacing the sends alone would land it in the same second as the next one.
    add_fault(oc, path="/submit/submit", method="POST", kind="delay", seconds=1.05, rate=0.5)
    from concurrent.futures import ThreadPoolExecutor

    places = [tmp_path / f"s{n}" for n in range(6)]
    for place in places:
        place.mkdir()
    with ThreadPoolExecutor(max_workers=len(places)) as pool:
        done = list(pool.map(lambda place: oc_submit(place, oc, unique_vcf(place)), places))
    assert [d.returncode for d, _ in done] == [0] * len(places), [d.stderr for d, _ in done]
    receipts = [read_json(receipt) for _, receipt in done]
    assert len({r["job_id"] for r in receipts}) == len(places)  # none given another's job
    for receipt in receipts:
        assert oc_jobs_tagged(oc, f"gensvc:{receipt['idempotency_key'][:32]}") == [receipt["job_id"]]


# ---- CGI -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cgi_server():
    with start_emulator("cgi", tokens=[TOKEN], time_scale=0.02, quota=50) as emulator:
        yield emulator


AUTH = {"Authorization": f"{EMAIL} {TOKEN}"}


@pytest.fixture
def cgi(cgi_server):
    for job in requests.get(cgi_server.url, headers=AUTH, timeout=5).json():
        requests.delete(f"{cgi_server.url}/{job}", headers=AUTH, timeout=5)
    requests.delete(f"{cgi_server.root}/_emulator/faults", timeout=5)
    requests.delete(f"{cgi_server.root}/_emulator/stats", timeout=5)
    yield cgi_server
    requests.delete(f"{cgi_server.root}/_emulator/faults", timeout=5)


def cgi_jobs(cgi) -> dict[str, str]:
    """Every job of the account -> its title."""
    ids = requests.get(cgi.url, headers=AUTH, timeout=5).json()
    return {job: requests.get(f"{cgi.url}/{job}", headers=AUTH, timeout=5).json()["metadata"]["title"]
            for job in ids}


def cgi_submit(tmp_path, cgi, mutations, **settings):
    env = clean_env(tmp_path, "cgi", URL=cgi.url, EMAIL=EMAIL, TOKEN=TOKEN, **settings)
    receipt = tmp_path / "receipt.json"
    done = run_gensvc(["cgi", "submit", "--input", f"mutations={mutations}", "--cancer-type", "BRCA",
                       "--reference", "hg38", "--output", f"receipt={receipt}"], env, timeout=120)
    return done, receipt


@pytest.mark.parametrize("fault, processed, extra", CASES)
def test_cgi_submission_is_retried_and_makes_one_job(tmp_path, cgi, fault, processed, extra):
    add_fault(cgi, path="/api/v1", method="POST", **fault)
    done, receipt = cgi_submit(tmp_path, cgi, unique_vcf(tmp_path), **extra)
    assert done.returncode == 0, done.stderr
    key = read_json(receipt)["idempotency_key"]
    jobs = cgi_jobs(cgi)
    assert [job for job, title in jobs.items() if f"gensvc:{key[:32]}" in title] == [read_json(receipt)["job_id"]]
    assert len(jobs) == 1
    seen = stats(cgi)["by_status"]
    injected = "drop" if fault["kind"] == "drop" else str(fault.get("status", 200))
    if fault["kind"] in ("status", "drop"):
        assert seen[injected] >= 1  # the fault did fire


def test_cgi_submission_refused_through_every_attempt_exits_5_without_a_job(tmp_path, cgi):
    add_fault(cgi, path="/api/v1", method="POST", kind="status", status=503)
    done, receipt = cgi_submit(tmp_path, cgi, unique_vcf(tmp_path), MAX_ATTEMPTS="3")
    assert done.returncode == 5
    assert stats(cgi)["by_status"]["503"] == 3
    assert len(done.stderr.strip().splitlines()) == 1 and "3 attempts" in done.stderr
    assert not receipt.exists() and cgi_jobs(cgi) == {}
