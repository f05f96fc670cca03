"""Hostile answers, service by service: each cell's stand-in server (tests/reliability/
hostile_server.py, independent of our emulators) answers one thing no service should send,
and gensvc must refuse it in one line with its documented exit code, write nothing outside
the output directory and leave no half or temporary file.

What tests/reliability/test_hostile_job_answers.py already covers (CGI's and OpenCRAVAT's
HTML and broken JSON, job ids with `/` and `..`, tampered receipts; Bravo's HTML page) and
tests/test_bravo_paging.py (Bravo's next links that repeat or never end) stays there; the
cells here are the rest: endless and oversized bodies, lying lengths and sizes,
Content-Disposition paths, hostile zips, and each of it for CAVATICA and OpenCGA.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from helpers import isolated_env, run_gensvc, write_vcf
from tests.reliability.conftest import cases
from tests.reliability.hostile_server import (
    Answer, HostileServer, as_json, broken_json, declared_huge, endless, gzip_bomb, html_page, lying_zip_bomb, zip_of,
)

KEY = "0" * 64
# an absolute name no test would make for itself: its existence after a run is a write outside
ABSOLUTE = f"/tmp/gensvc-hostile-{uuid.uuid4().hex}.txt"
TSV = b"chrom\tpos\tref\talt\nchr1\t1000\tA\tG\n"


@dataclass
class Run:
    """What a cell runs: the routes its server answers, the CLI call, what the line must say."""

    routes: Callable[[str], dict]  # root -> routes
    argv: Callable[[Path], list]  # tmp -> gensvc arguments
    says: tuple[str, ...]
    exit_code: int = 5
    env: dict = field(default_factory=dict)
    receipt: tuple[str, str, str] | None = None  # (service, base path under root, job id)
    check: Callable | None = None  # (server, tmp) -> None: more a cell must hold


def receipt(path: Path, service: str, base_url: str, job_id: str, request: dict | None = None) -> None:
    path.write_text(json.dumps({
        "service": service, "operation": "submit", "base_url": base_url, "job_id": job_id,
        "idempotency_key": KEY, "submitted_at": "2026-12-01T09:00:00+00:00", "request": request or {},
        "versions": {"gensvc": "0"},
    }))


# ---- Bravo ---------------------------------------------------------------------------------

BRAVO = "/freeze5/hg38/api/v1"


def bravo(answer: Answer, says: tuple[str, ...]) -> Run:
    return Run(lambda root: {("GET", f"{BRAVO}/variant"): answer},
               lambda tmp: ["bravo", "variant", "--variant-id", "22-16389447-A-G",
                            "--output", f"variants={tmp / 'out' / 'variants.json'}"],
               says, env={"GENSVC_BRAVO_TOKEN": "t", "GENSVC_BRAVO_RATE_LIMIT": "off"})


BRAVO_CELLS = {
    "bravo-variant-data-not-a-list": bravo(as_json({"data": "22-16389447-A-G", "next": None}),
                                           ("bravo answered", "where a page of records belongs")),
    "bravo-variant-records-not-objects": bravo(as_json({"data": [["22", 16389447]], "next": None}),
                                               ("bravo answered", "where a record belongs")),
    "bravo-variant-endless-stream": bravo(endless(), ("bravo's answer", "GENSVC_BRAVO_MAX_ANSWER_BYTES")),
    "bravo-variant-body-too-large": bravo(declared_huge(), ("bravo's answer", "GENSVC_BRAVO_MAX_ANSWER_BYTES")),
    "bravo-variant-gzip-bomb": bravo(gzip_bomb(), ("bravo's answer", "GENSVC_BRAVO_MAX_ANSWER_BYTES")),
}


# ---- OpenCRAVAT ----------------------------------------------------------------------------

OC_JOB = "261201-090000"


def opencravat_report(answer: Answer, says: tuple[str, ...]) -> Run:
    def routes(root):
        return {
            ("GET", "/submit/servermode"): as_json({"servermode": False}),
            ("GET", f"/submit/jobs/{OC_JOB}/reports"): as_json(["tsv"]),
            ("GET", f"/submit/jobs/{OC_JOB}/reports/tsv"): answer,
        }
    return Run(routes, lambda tmp: ["opencravat", "report", "--input", f"receipt={tmp / 'in' / 'receipt.json'}",
                                    "--output", f"tsv={tmp / 'out' / 'report.tsv'}"],
               says, receipt=("opencravat", "/", OC_JOB))


def opencravat_status(answer: Answer, says: tuple[str, ...]) -> Run:
    return Run(lambda root: {("GET", "/submit/servermode"): as_json({"servermode": False}),
                             ("GET", f"/submit/jobs/{OC_JOB}/status"): answer},
               lambda tmp: ["opencravat", "poll", "--input", f"receipt={tmp / 'in' / 'receipt.json'}", "--timeout", "20",
                            "--first-wait", "0.1", "--output", f"status={tmp / 'out' / 'status.json'}"],
               says, receipt=("opencravat", "/", OC_JOB))


def disposition(name: str) -> Answer:
    return Answer(200, TSV, "text/tab-separated-values", headers={"Content-Disposition": f'attachment; filename="{name}"'})


OPENCRAVAT_CELLS = {
    "opencravat-poll-endless-stream": opencravat_status(endless(), ("opencravat's answer", "MAX_ANSWER_BYTES")),
    "opencravat-poll-body-too-large": opencravat_status(declared_huge(), ("opencravat's answer", "MAX_ANSWER_BYTES")),
    "opencravat-report-endless-stream": opencravat_report(endless(b"chr1\t1000\tA\tG\n" * 4096, "text/plain"),
                                                          ("opencravat's download", "MAX_DOWNLOAD_BYTES")),
    "opencravat-report-body-too-large": opencravat_report(declared_huge(content_type="text/plain"),
                                                          ("opencravat's download", "MAX_DOWNLOAD_BYTES")),
    "opencravat-report-shorter-than-content-length": opencravat_report(
        Answer(200, TSV, "text/plain", length=len(TSV) + 100), ("opencravat GET failed", "a response cut short")),
    "opencravat-report-disposition-dotdot": opencravat_report(disposition("../../escape.tsv"),
                                                              ("unsafe file name", "'../../escape.tsv'")),
    "opencravat-report-disposition-absolute": opencravat_report(disposition(ABSOLUTE), ("unsafe file name", ABSOLUTE)),
}


# ---- CGI -----------------------------------------------------------------------------------

CGI_JOB = "0123456789abcdef0123"
CGI_TABLES = {"alterations.tsv": "Input ID\tCHROMOSOME\tPOSITION\tREF\tALT\n", "biomarkers.tsv": "Sample ID\tAlterations\n",
              "summary.txt": "=== CGI-ANALYSIS ===\nCGI version: v0\n"}


def cgi_download(answer: Answer, says: tuple[str, ...], *extra) -> Run:
    return Run(lambda root: {("GET", f"/api/v1/{CGI_JOB}"): answer},
               lambda tmp: ["cgi", "download", "--input", f"receipt={tmp / 'in' / 'receipt.json'}", *extra,
                            "--output", f"alterations={tmp / 'out' / 'alterations.tsv'}",
                            "--output", f"summary={tmp / 'out' / 'summary.txt'}"],
               says, receipt=("cgi", "/api/v1", CGI_JOB))


def cgi_zip(data: bytes, **headers) -> Answer:
    return Answer(200, data, "application/zip", headers=headers)


def cgi_info(answer: Answer, says: tuple[str, ...]) -> Run:
    return Run(lambda root: {("GET", f"/api/v1/{CGI_JOB}"): answer},
               lambda tmp: ["cgi", "poll", "--input", f"receipt={tmp / 'in' / 'receipt.json'}", "--timeout", "20",
                            "--first-wait", "0.1", "--output", f"status={tmp / 'out' / 'status.json'}"],
               says, receipt=("cgi", "/api/v1", CGI_JOB))


GOOD_ZIP = zip_of(CGI_TABLES)
CGI_CELLS = {
    "cgi-poll-endless-stream": cgi_info(endless(), ("cgi's answer", "GENSVC_CGI_MAX_ANSWER_BYTES")),
    "cgi-poll-body-too-large": cgi_info(declared_huge(), ("cgi's answer", "GENSVC_CGI_MAX_ANSWER_BYTES")),
    "cgi-download-zip-dotdot": cgi_download(cgi_zip(zip_of({**CGI_TABLES, "../../escape.txt": "x"})),
                                            ("refusing the result archive", "'../../escape.txt'")),
    "cgi-download-zip-absolute": cgi_download(cgi_zip(zip_of({**CGI_TABLES, ABSOLUTE: "x"})),
                                              ("refusing the result archive", "outside the destination")),
    "cgi-download-zip-symlink": cgi_download(cgi_zip(zip_of({**CGI_TABLES, "alterations.tsv": "/etc/passwd"},
                                                            links=["alterations.tsv"])),
                                             ("refusing the result archive", "'alterations.tsv' is a link")),
    "cgi-download-zip-bomb-lying-sizes": cgi_download(cgi_zip(lying_zip_bomb(
        {k: v for k, v in CGI_TABLES.items() if k != "alterations.tsv"}, "alterations.tsv")),
        ("refusing the result archive", "'alterations.tsv' is damaged")),
    "cgi-download-not-a-zip": cgi_download(Answer(200, "<html>Back soon</html>", "text/html"),
                                           ("refusing the result archive", "not a zip")),
    "cgi-download-endless-stream": cgi_download(endless(b"PK" * 32768, "application/zip"),
                                                ("cgi's download", "max_bytes"), "--max-bytes", str(4 << 20)),
    "cgi-download-body-too-large": cgi_download(declared_huge(content_type="application/zip"),
                                                ("cgi's download", "max_bytes")),
    "cgi-download-shorter-than-content-length": cgi_download(
        Answer(200, GOOD_ZIP, "application/zip", length=len(GOOD_ZIP) + 100), ("cgi GET failed", "a response cut short")),
    "cgi-download-disposition-dotdot": cgi_download(cgi_zip(GOOD_ZIP, **{"Content-Disposition": 'attachment; filename="../escape.zip"'}),
                                                    ("unsafe file name", "'../escape.zip'")),
    "cgi-download-disposition-absolute": cgi_download(cgi_zip(GOOD_ZIP, **{"Content-Disposition": f"attachment; filename*=UTF-8''{ABSOLUTE}"}),
                                                      ("unsafe file name", ABSOLUTE)),
}


# ---- CAVATICA ------------------------------------------------------------------------------

CAV = "/v2"
TASK = "0f3c2a1e-7b7d-4c1e-9a43-2b8f5d0e6c11"
FILE_ID = "5f0c1a2b3c4d5e6f7a8b9c0d"
PAYLOAD = bytes(range(256)) * 64  # 16 KiB
CAV_ENV = {"GENSVC_CAVATICA_TOKEN": "cavatica-hostile-token", "GENSVC_CAVATICA_RATE_LIMIT": "off"}


def cavatica_projects(first: Callable[[str], Answer], says: tuple[str, ...]) -> Run:
    return Run(lambda root: {("GET", f"{CAV}/projects/"): first(root)},
               lambda tmp: ["cavatica", "projects", "--output", f"json={tmp / 'out' / 'projects.json'}"],
               says, env=CAV_ENV)


def repeating_next(root: str) -> Answer:
    link = f"{root}{CAV}/projects/?offset=100&limit=100"
    return as_json({"items": [{"id": "o/p", "name": "p"}], "links": [{"rel": "next", "href": link}]})


def completed_task(file_id: str = FILE_ID) -> Answer:
    return as_json({"id": TASK, "status": "COMPLETED",
                    "outputs": {"out": {"class": "File", "path": file_id, "name": "out.vcf"}}})


def storage(body: bytes = PAYLOAD, *, total: int | None = None, sent: bytes | None = None, **headers):
    """A storage that serves Range parts of ``body``: says ``total`` as its size, sends ``sent``."""
    def answer(request):
        first, last = (int(x) for x in request.headers["Range"].split("=")[1].split("-"))
        part = body[first:last + 1] if sent is None else sent
        return Answer(206, part, "application/octet-stream", length=last - first + 1, headers={
            "Content-Range": f"bytes {first}-{last}/{len(body) if total is None else total}", **headers})
    return answer


def cavatica_download(*, size: int = len(PAYLOAD), task: Answer | None = None, storage_answer=None,
                      says: tuple[str, ...]) -> Run:
    def routes(root):
        return {
            ("GET", f"{CAV}/tasks/{TASK}"): task or completed_task(),
            ("GET", f"{CAV}/files/{FILE_ID}"): as_json({"id": FILE_ID, "name": "out.vcf", "size": size}),
            ("GET", f"{CAV}/files/{FILE_ID}/download_info"): as_json({"url": f"{root}/storage/out.vcf?sig=1"}),
            ("GET", "/storage/out.vcf"): storage_answer or storage(),
        }
    return Run(routes, lambda tmp: ["cavatica", "download", "--input", f"receipt={tmp / 'in' / 'receipt.json'}",
                                    "--output", f"file={tmp / 'out' / 'out.vcf'}"],
               says, env=CAV_ENV, receipt=("cavatica", CAV + "/", TASK))


def cavatica_run(task: Answer, says: tuple[str, ...]) -> Run:
    return Run(lambda root: {("GET", f"{CAV}/tasks"): as_json({"items": []}),
                             ("POST", f"{CAV}/tasks"): task},
               lambda tmp: ["cavatica", "run", "--project", "o/p", "--app", "o/p/app/3",
                            "--output", f"receipt={tmp / 'out' / 'receipt.json'}"],
               says, env=CAV_ENV)


def cavatica_upload(init: Answer, says: tuple[str, ...]) -> Run:
    return Run(lambda root: {("GET", f"{CAV}/files"): as_json({"items": []}),
                             ("POST", f"{CAV}/upload/multipart"): init},
               lambda tmp: ["cavatica", "upload", "--project", "o/p", "--input", f"files={tmp / 'in' / 'a.vcf'}",
                            "--output", f"manifest={tmp / 'out' / 'manifest.json'}"],
               says, env=CAV_ENV, check=lambda server, tmp: _nothing_after_init(server))


def _nothing_after_init(server) -> None:
    # the id never went into a URL: nothing was asked after the upload was opened
    assert server.paths()[-1] == f"{CAV}/upload/multipart", server.paths()


CAVATICA_CELLS = {
    "cavatica-projects-html-200": cavatica_projects(lambda root: html_page(), ("HTML page", "not JSON")),
    "cavatica-projects-invalid-json": cavatica_projects(lambda root: broken_json(), ("invalid JSON",)),
    "cavatica-projects-wrong-shape": cavatica_projects(lambda root: as_json({"items": {"id": "o/p"}}),
                                                       ("where a page of items belongs",)),
    "cavatica-projects-next-repeats": cavatica_projects(repeating_next, ("cavatica paging does not end",)),
    "cavatica-projects-endless-stream": cavatica_projects(lambda root: endless(), ("MAX_ANSWER_BYTES",)),
    "cavatica-projects-body-too-large": cavatica_projects(lambda root: declared_huge(), ("MAX_ANSWER_BYTES",)),
    "cavatica-projects-gzip-bomb": cavatica_projects(lambda root: gzip_bomb(), ("MAX_ANSWER_BYTES",)),
    "cavatica-run-task-id-dotdot": cavatica_run(as_json({"id": "../../escape", "status": "DRAFT"}),
                                                ("'../../escape', which is not a job id",)),
    "cavatica-run-task-id-slash": cavatica_run(as_json({"id": "a/b", "status": "DRAFT"}), ("'a/b', which is not a job id",)),
    "cavatica-upload-id-dotdot": cavatica_upload(as_json({"upload_id": "..", "part_size": 5 << 20}),
                                                 ("'..', which is not", "upload")),
    "cavatica-download-file-id-dotdot": cavatica_download(task=completed_task(".."), says=("'..', which is not",)),
    "cavatica-download-size-differs-from-record": cavatica_download(size=len(PAYLOAD) + 10, storage_answer=storage(),
                                                                    says=("but the platform's record says",)),
    "cavatica-download-shorter-than-content-length": cavatica_download(
        storage_answer=storage(sent=PAYLOAD[:100]), says=("cavatica GET failed: a response cut short",)),
    "cavatica-download-endless-stream": cavatica_download(storage_answer=lambda request: Answer(
        206, b"", "application/octet-stream", headers={"Content-Range": f"bytes 0-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"},
        stream=endless().stream), says=("the storage sent more than bytes",)),
    "cavatica-download-disposition-dotdot": cavatica_download(
        storage_answer=storage(**{"Content-Disposition": 'attachment; filename="../../escape.vcf"'}),
        says=("unsafe file name", "'../../escape.vcf'")),
    "cavatica-download-disposition-absolute": cavatica_download(
        storage_answer=storage(**{"Content-Disposition": f'attachment; filename="{ABSOLUTE}"'}),
        says=("unsafe file name", ABSOLUTE)),
}


# ---- OpenCGA -------------------------------------------------------------------------------

CGA = "/opencga/webservices/rest/v2"
CGA_ENV = {"GENSVC_OPENCGA_TOKEN": "opencga-hostile-token"}


def envelope(results: list, num_matches: int | None = None) -> Answer:
    response = {"results": results, "numResults": len(results)}
    if num_matches is not None:
        response["numMatches"] = num_matches
    return as_json({"apiVersion": "v2", "events": [], "responses": [response]})


def opencga_search(answer, says: tuple[str, ...]) -> Run:
    return Run(lambda root: {("GET", f"{CGA}/projects/search"): answer},
               lambda tmp: ["opencga", "search", "--resource", "projects", "--page-size", "2",
                            "--output", f"results={tmp / 'out' / 'projects.tsv'}"],
               says, env=CGA_ENV)


def opencga_index(job: Answer, says: tuple[str, ...]) -> Run:
    return Run(lambda root: {("GET", f"{CGA}/jobs/search"): envelope([]),
                             ("POST", f"{CGA}/operation/variant/index"): job},
               lambda tmp: ["opencga", "index", "--study", "u@p:s", "--files", "data:a.vcf",
                            "--output", f"receipt={tmp / 'out' / 'receipt.json'}"],
               says, env=CGA_ENV)


def opencga_upload(size_said: int, says: tuple[str, ...]) -> Run:
    def routes(root):
        return {("GET", f"{CGA}/files/search"): envelope([]),
                ("POST", f"{CGA}/files/upload"): envelope([{"id": "data:a.vcf", "path": "data/a.vcf", "size": size_said}])}
    return Run(routes, lambda tmp: ["opencga", "upload", "--study", "u@p:s", "--input", f"files={tmp / 'in' / 'a.vcf'}",
                                    "--output", f"manifest={tmp / 'out' / 'manifest.json'}"],
               says, env=CGA_ENV)


PROJECTS = [{"id": "p1", "fqn": "u@p1", "name": "one"}, {"id": "p2", "fqn": "u@p2", "name": "two"}]
OPENCGA_CELLS = {
    "opencga-search-html-200": opencga_search(html_page(), ("HTML page", "not JSON")),
    "opencga-search-invalid-json": opencga_search(broken_json(), ("invalid JSON",)),
    "opencga-search-results-not-a-list": opencga_search(envelope("p1"), ("where a page of results belongs",)),
    "opencga-search-results-not-records": opencga_search(envelope([["p1"], ["p2"]]), ("where a record belongs",)),
    "opencga-search-page-repeats": opencga_search(envelope(PROJECTS), ("opencga paging does not end",)),
    "opencga-search-endless-stream": opencga_search(endless(), ("GENSVC_OPENCGA_MAX_ANSWER_BYTES",)),
    "opencga-search-body-too-large": opencga_search(declared_huge(), ("GENSVC_OPENCGA_MAX_ANSWER_BYTES",)),
    "opencga-search-gzip-bomb": opencga_search(gzip_bomb(), ("GENSVC_OPENCGA_MAX_ANSWER_BYTES",)),
    "opencga-index-job-id-dotdot": opencga_index(envelope([{"id": "../../escape"}]), ("'../../escape', which is not a job id",)),
    "opencga-index-job-id-slash": opencga_index(envelope([{"id": "a/b"}]), ("'a/b', which is not a job id",)),
    "opencga-upload-size-differs": opencga_upload(10, ("opencga holds data/a.vcf as 10 bytes",)),
}

ALL = {**BRAVO_CELLS, **OPENCRAVAT_CELLS, **CGI_CELLS, **CAVATICA_CELLS, **OPENCGA_CELLS}


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.mark.reliability("hostile")
@pytest.mark.parametrize("cell", cases(list(ALL), fast=12))
def test_a_hostile_answer_is_refused_in_one_line_and_leaves_nothing(tmp_path, cell):
    run = ALL[cell]
    for name in ("in", "out", "tmp", "work"):
        (tmp_path / name).mkdir()
    write_vcf(tmp_path / "in" / "a.vcf", "chr1\t1000\t.\tA\tG\t.\tPASS\t.")
    with HostileServer(run.routes("")) as server:
        server.routes = run.routes(server.root)
        service = cell.split("-")[0]
        env = isolated_env(tmp_path, TMPDIR=str(tmp_path / "tmp"), GENSVC_CGI_EMAIL="someone@example.org",
                           GENSVC_CGI_TOKEN="cgi-hostile-token", **{
                               f"GENSVC_{service.upper()}_URL": f"{server.root}{_base(service)}",
                               f"GENSVC_{service.upper()}_MAX_ATTEMPTS": "2",
                               f"GENSVC_{service.upper()}_BACKOFF": "0.05", **_bounds(cell, service), **run.env})
        if run.receipt:
            kind, base, job_id = run.receipt
            receipt(tmp_path / "in" / "receipt.json", kind, f"{server.root}{base}", job_id)
        before = _files(tmp_path)
        done = run_gensvc(run.argv(tmp_path), env, cwd=tmp_path / "work", timeout=60)
        if run.check:
            run.check(server, tmp_path)
    assert done.returncode == run.exit_code, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    for fragment in run.says:
        assert fragment in lines[0], lines[0]
    # nothing in the output directory (no output, no half file, no provenance), no temp file
    assert not _files(tmp_path / "out"), _files(tmp_path / "out")
    host_locks = tmp_path / "tmp" / f"gensvc-{os.getuid()}"  # the host's submission locks, kept by design
    assert not [p for p in _files(tmp_path / "tmp") if not p.is_relative_to(host_locks)], _files(tmp_path / "tmp")
    made = _files(tmp_path) - before
    allowed = [tmp_path / "state", tmp_path / "xdg-state", tmp_path / "work" / ".gensvc", host_locks]
    outside = [p for p in made if not any(p.is_relative_to(place) for place in allowed)]
    assert not outside, outside
    assert not [p for p in _files(tmp_path) if p.name.endswith((".part", ".partial")) and "transfers" not in p.parts]
    # where a hostile name (../escape, ../../escape from the working directory) would land
    assert not list(tmp_path.rglob("escape*")) and not list(tmp_path.parent.glob("escape*"))
    assert not os.path.exists(ABSOLUTE)


def _bounds(cell: str, service: str) -> dict:
    """An endless (or expanding) body is refused once past its bound: 4 MiB here, not the
    default's 128 MiB (an answer) or 16 GiB (a download); the defaults are what the
    too-large cells meet."""
    if "endless" not in cell and "gzip-bomb" not in cell:
        return {}
    return {f"GENSVC_{service.upper()}_MAX_ANSWER_BYTES": str(4 << 20),
            f"GENSVC_{service.upper()}_MAX_DOWNLOAD_BYTES": str(4 << 20)}


def _base(service: str) -> str:
    return {"bravo": f"{BRAVO}/", "opencravat": "/", "cgi": "/api/v1", "cavatica": f"{CAV}/",
            "opencga": "/opencga/"}[service]
