"""The fault matrix for OpenCRAVAT: submit, poll, report download, a report made on request and
live annotation × each fault, bounded and unbounded, against the OpenCRAVAT emulator over loopback (tests/reliability/faults.py says
what each cell must lead to).
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from helpers import isolated_env
from tests.reliability.conftest import cases
from tests.reliability.faults import (FAULTS, JOB_FAILED_DOWNLOAD, Emulated, JobService, Kind, finish_job, job_matrix,
                                       params, run_job_cell)

VCF = ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       "chr7\t140753336\t.\tA\tT\t.\tPASS\t.\nchr12\t25245350\t.\tC\tA\t.\tPASS\t.\n")

# submit, poll, report download, a report made on request, and live annotation (its
# synchronous query)
CELLS = job_matrix("opencravat", FAULTS + (JOB_FAILED_DOWNLOAD,),
                   operations=("submit", "poll", "download", "make-report", "query"))
XFAIL: dict[str, str] = {}


@pytest.fixture(scope="module")
def oc():
    # a job runs 10 s × 0.2 = 2 s: still running when a poll cell's restart comes
    emulated = Emulated("opencravat", time_scale=0.2, job_seconds=10)
    yield emulated
    emulated.close()


def vcf(workdir):
    # a name and content unique to the call: the server files a job under its input's name
    unique = time.monotonic_ns()
    path = workdir / f"in_{unique}.vcf"
    path.write_text(VCF.replace("#CHROM", f"##run={unique}\n#CHROM"))
    return path


def make_report(workdir, receipt, out):
    # a report type the job did not make: the server is asked to make it (a POST), then it is fetched
    output = out / "report.vcf"
    return ["opencravat", "report", "--input", f"receipt={receipt}", "--output", f"vcf={output}"], [output]


def without_run_line(name, data):
    """A VCF report apart from the input's header line that made it unique."""
    return b"".join(line for line in data.splitlines(keepends=True) if not line.startswith(b"##run="))


def annotate(workdir, receipt, out):
    output = out / "annotations.jsonl"
    return ["opencravat", "annotate", "--chrom", "chr7", "--pos", "140753336", "--ref", "A", "--alt", "T",
            "--annotators", "clinvar", "--output", f"annotations={output}"], [output]


@pytest.fixture(scope="module")
def service(oc):
    def jobs():
        return set(requests.get(f"{oc.url}submit/jobs", timeout=5).json())

    def forget(job):
        requests.delete(f"{oc.url}submit/jobs/{job}", timeout=5)

    def fetch(receipt, out):
        output = out / "report.tsv"
        return ["opencravat", "report", "--input", f"receipt={receipt}", "--output", f"tsv={output}"], [output]

    return JobService(
        emulated=oc,
        env=lambda workdir, settings: isolated_env(workdir, GENSVC_OPENCRAVAT_URL=oc.url,
                                                   **({"GENSVC_OPENCRAVAT_BACKOFF": "0.05"} | dict(settings))),
        submit=lambda workdir, receipt: ["opencravat", "submit", "--input", f"files={vcf(workdir)}",
                                         "--annotators", "clinvar", "--reports", "tsv",
                                         "--output", f"receipt={receipt}"],
        poll=lambda receipt, status, timeout: ["opencravat", "poll", "--input", f"receipt={receipt}",
                                               "--first-wait", "0.2", "--max-wait", "0.4",
                                               "--timeout", str(timeout), "--output", f"status={status}"],
        fetch=fetch,
        paths={"submit": ("/submit/submit", "POST"), "poll": ("/submit/jobs/{job}/status", "GET"),
               "download": ("/submit/jobs/{job}/reports/tsv", "GET"),
               "make-report": ("/submit/jobs/{job}/reports/vcf", "POST"), "query": ("/submit/annotate", "GET")},
        jobs=jobs,
        job_fails={"kind": "job_error"},
        forget=forget,
        kinds={"make-report": Kind(make_report, own_job=True, normalise=without_run_line), "query": Kind(annotate)},
    )


@pytest.fixture(scope="module")
def finished(service, tmp_path_factory):
    return finish_job(service, tmp_path_factory.mktemp("finished"))


@pytest.mark.parametrize("cell", cases(params(CELLS, XFAIL), fast=4))
def test_opencravat_operation_under_a_fault(tmp_path, service, finished, cell):
    run_job_cell(service, cell, tmp_path, finished)
