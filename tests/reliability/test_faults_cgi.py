"""The fault matrix for the Cancer Genome Interpreter: submit, poll and download × each fault,
bounded and unbounded, against the CGI emulator over loopback (tests/reliability/faults.py
says what each cell must lead to).
"""

from __future__ import annotations

import time

import pytest
import requests

from helpers import isolated_env
from tests.reliability.conftest import cases
from tests.reliability.faults import (FAULTS, JOB_FAILED_DOWNLOAD, Emulated, JobService, finish_job, job_matrix,
                                       params, run_job_cell)

EMAIL, TOKEN = "faults@example.org", "cgi-faults-token-61c2"
AUTH = {"Authorization": f"{EMAIL} {TOKEN}"}
VCF = ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       "chr7\t140753336\t.\tA\tT\t.\tPASS\t.\nchr12\t25245350\t.\tC\tA\t.\tPASS\t.\n")
DOWNLOADS = ("alterations", "biomarkers", "summary")

CELLS = job_matrix("cgi", FAULTS + (JOB_FAILED_DOWNLOAD,))
XFAIL: dict[str, str] = {}


@pytest.fixture(scope="module")
def cgi():
    # a job runs 100 s × 0.02 = 2 s (still running when a poll cell's restart comes); a
    # quota no cell reaches
    emulated = Emulated("cgi", tokens=[TOKEN], time_scale=0.02, quota=10000, job_seconds=100)
    yield emulated
    emulated.close()


def mutations(workdir):
    path = workdir / "mutations.vcf"
    path.write_text(VCF.replace("#CHROM", f"##run={time.monotonic_ns()}\n#CHROM"))
    return path


@pytest.fixture(scope="module")
def service(cgi):
    def jobs():
        return set(requests.get(cgi.url, headers=AUTH, timeout=5).json())

    def forget(job):
        requests.delete(f"{cgi.url}/{job}", headers=AUTH, timeout=5)

    def fetch(receipt, out):
        outputs = [out / f"{name}.tsv" for name in DOWNLOADS]
        return ["cgi", "download", "--input", f"receipt={receipt}",
                *[arg for name, path in zip(DOWNLOADS, outputs) for arg in ("--output", f"{name}={path}")]], outputs

    return JobService(
        emulated=cgi,
        env=lambda workdir, settings: isolated_env(workdir, GENSVC_CGI_URL=cgi.url, GENSVC_CGI_EMAIL=EMAIL,
                                                   GENSVC_CGI_TOKEN=TOKEN,
                                                   **({"GENSVC_CGI_BACKOFF": "0.05"} | dict(settings))),
        submit=lambda workdir, receipt: ["cgi", "submit", "--input", f"mutations={mutations(workdir)}",
                                         "--cancer-type", "BRCA", "--reference", "hg38",
                                         "--output", f"receipt={receipt}"],
        poll=lambda receipt, status, timeout: ["cgi", "poll", "--input", f"receipt={receipt}", "--first-wait", "0.2",
                                               "--max-wait", "0.4", "--timeout", str(timeout),
                                               "--output", f"status={status}"],
        fetch=fetch,
        # poll reads the job (and its logs) there, download its results (?action=download)
        paths={"submit": ("/api/v1", "POST"), "poll": ("/api/v1/{job}", "GET"), "download": ("/api/v1/{job}", "GET")},
        jobs=jobs,
        job_fails={"kind": "job_error"},
        forget=forget,
        refusal_reads={"download": 1},  # a refused download reads the job's status on its path
    )


@pytest.fixture(scope="module")
def finished(service, tmp_path_factory):
    return finish_job(service, tmp_path_factory.mktemp("finished"))


@pytest.mark.parametrize("cell", cases(params(CELLS, XFAIL), fast=4))
def test_cgi_operation_under_a_fault(tmp_path, service, finished, cell):
    run_job_cell(service, cell, tmp_path, finished)
