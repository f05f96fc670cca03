"""Answers no service should send: an HTML page or broken JSON where JSON belongs, a job id
that is not one, a receipt whose job id was tampered with.

They come from a stand-in server each test starts (http.server in a thread, independent of
our emulators), so every answer is exactly the hostile one the test names. Each is a cell of
the hostile-answers figure, beside tests/reliability/test_hostile_answers.py (the rest of the
matrix, all five services); all of them run in `make test` too.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from helpers import isolated_env, run_gensvc, write_vcf

HTML = "<!DOCTYPE html>\n<html><head><title>Site maintenance</title></head>\n<body><h1>Back soon</h1></body></html>\n"
KEY = "0" * 64


class StandIn:
    """A loopback HTTP server answering from ``routes``: (method, path) -> (status, type, body).

    A route's path may end in ``*`` (a prefix). Unrouted requests get 404 text/plain.
    Every request's method, path and query is kept in ``seen``.
    """

    def __init__(self, routes: dict):
        self.routes = routes
        self.seen: list[tuple[str, str, str]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                stand_in.seen.append((self.command, parts.path, parts.query))
                status, content_type, body = stand_in.route(self.command, parts.path, parts.query)
                payload = body if isinstance(body, bytes) else body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def route(self, method: str, path: str, query: str):
        for (want_method, want_path), answer in self.routes.items():
            if want_method != method:
                continue
            if want_path == path or (want_path.endswith("*") and path.startswith(want_path[:-1])):
                return answer(query) if callable(answer) else answer
        return 404, "text/plain", "no such route"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def as_json(document) -> tuple[int, str, str]:
    return 200, "application/json", json.dumps(document)


def html(status: int = 200) -> tuple[int, str, str]:
    return status, "text/html; charset=utf-8", HTML


BROKEN_JSON = (200, "application/json", '{"status": "Runn')


@pytest.fixture
def base_env(tmp_path) -> dict:
    (tmp_path / "tmp").mkdir()
    return isolated_env(tmp_path, TMPDIR=str(tmp_path / "tmp"), GENSVC_CGI_EMAIL="someone@example.org",
                        GENSVC_CGI_TOKEN="cgi-standin-token", GENSVC_CGI_BACKOFF="0.05",
                        GENSVC_OPENCRAVAT_BACKOFF="0.05")


def write_receipt(path: Path, service: str, base_url: str, job_id: str) -> Path:
    path.write_text(json.dumps({
        "service": service, "operation": "submit", "base_url": base_url, "job_id": job_id,
        "idempotency_key": KEY, "submitted_at": "2026-12-01T09:00:00+00:00", "request": {},
        "versions": {"gensvc": "0"},
    }))
    return path


def one_line(done) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# ---- CGI -------------------------------------------------------------------------------

CGI_JOB = "0123456789abcdef0123"
CGI_INFO = {"status": "Running", "metadata": {"id": CGI_JOB, "user": "someone@example.org", "title": "t"}}


@pytest.fixture
def mutations(tmp_path) -> Path:
    return write_vcf(tmp_path / "m.vcf", "chr7\t140753336\t.\tA\tT\t.\tPASS\t.")


def cgi_submit(tmp_path, env, mutations):
    return run_gensvc(["cgi", "submit", "--input", f"mutations={mutations}", "--cancer-type", "BRCA",
                       "--reference", "hg38", "--output", f"receipt={tmp_path / 'receipt.json'}"], env)


def cgi_poll(tmp_path, env):
    return run_gensvc(["cgi", "poll", "--input", f"receipt={tmp_path / 'receipt.json'}", "--first-wait", "0.1",
                       "--max-wait", "0.2", "--timeout", "30", "--output", f"status={tmp_path / 'status.json'}"], env)


@pytest.mark.reliability("hostile")
@pytest.mark.parametrize("answer", [html(), BROKEN_JSON], ids=["html", "broken-json"])
def test_a_cgi_job_list_that_is_not_json_is_one_line_and_exit_5(tmp_path, base_env, mutations, answer):
    with StandIn({("GET", "/api/v1"): answer, ("GET", "/api/v1/*"): as_json(CGI_INFO)}) as server:
        env = base_env | {"GENSVC_CGI_URL": f"{server.root}/api/v1"}
        done = cgi_submit(tmp_path, env, mutations)
        listed = run_gensvc(["cgi", "list", "--output", f"jobs={tmp_path / 'jobs.json'}"], env)
    for result in (done, listed):
        assert result.returncode == 5, result.stderr
        line = one_line(result)
        assert "not JSON" in line and "/api/v1" in line and "GENSVC_CGI_URL" in line
    assert "HTML page" in line if answer[1].startswith("text/html") else "invalid JSON" in line
    assert not (tmp_path / "receipt.json").exists() and not (tmp_path / "jobs.json").exists()
    assert ("POST", "/api/v1", "") not in server.seen  # nothing submitted on an unreadable list


@pytest.mark.reliability("hostile")
@pytest.mark.parametrize("answer", [html(), BROKEN_JSON, as_json(["not", "a", "job"])],
                         ids=["html", "broken-json", "a-list"])
def test_a_cgi_job_info_that_is_not_json_ends_the_poll_with_one_line_and_exit_5(tmp_path, base_env, answer):
    with StandIn({("GET", f"/api/v1/{CGI_JOB}"): answer}) as server:
        write_receipt(tmp_path / "receipt.json", "cgi", f"{server.root}/api/v1", CGI_JOB)
        done = cgi_poll(tmp_path, base_env)
    assert done.returncode == 5, done.stderr
    line = one_line(done)
    assert f"/api/v1/{CGI_JOB}" in line and "did not finish" not in line  # refused at once, not waited out
    assert len(server.seen) == 1
    assert not (tmp_path / "status.json").exists()


@pytest.mark.reliability("hostile")
def test_an_html_error_page_from_cgi_is_a_4xx_refusal_in_one_plain_line(tmp_path, base_env):
    with StandIn({("GET", f"/api/v1/{CGI_JOB}"): html(404)}) as server:
        write_receipt(tmp_path / "receipt.json", "cgi", f"{server.root}/api/v1", CGI_JOB)
        done = cgi_poll(tmp_path, base_env)
    assert done.returncode == 2, done.stderr
    line = one_line(done)
    assert "HTTP 404" in line and "Site maintenance" in line  # the page's title, not its markup
    assert "<" not in line


@pytest.mark.reliability("hostile")
@pytest.mark.parametrize("job_id", [HTML, "../../outside", "a/b", "..", "", "x" * 300],
                         ids=["html", "dotdot", "slash", "dots", "empty", "long"])
def test_a_cgi_submission_answered_with_something_that_is_not_a_job_id_fails_clearly(
        tmp_path, base_env, mutations, job_id):
    with StandIn({("GET", "/api/v1"): as_json([]), ("POST", "/api/v1"): as_json(job_id)}) as server:
        done = cgi_submit(tmp_path, base_env | {"GENSVC_CGI_URL": f"{server.root}/api/v1"}, mutations)
    assert done.returncode == 5, done.stderr
    line = one_line(done)
    assert "is not a job id" in line and "/api/v1" in line
    assert not (tmp_path / "receipt.json").exists()


@pytest.mark.reliability("hostile")
def test_a_cgi_submission_answered_with_an_html_page_writes_no_receipt(tmp_path, base_env, mutations):
    with StandIn({("GET", "/api/v1"): as_json([]), ("POST", "/api/v1"): html()}) as server:
        done = cgi_submit(tmp_path, base_env | {"GENSVC_CGI_URL": f"{server.root}/api/v1"}, mutations)
    assert done.returncode == 5, done.stderr
    assert "HTML page" in one_line(done)
    assert not (tmp_path / "receipt.json").exists()


@pytest.mark.reliability("hostile")
def test_a_cgi_job_list_naming_a_path_is_refused_before_it_is_followed(tmp_path, base_env, mutations):
    with StandIn({("GET", "/api/v1"): as_json(["../../admin"]), ("GET", "/admin"): as_json(CGI_INFO)}) as server:
        done = cgi_submit(tmp_path, base_env | {"GENSVC_CGI_URL": f"{server.root}/api/v1"}, mutations)
    assert done.returncode == 5, done.stderr
    assert "'../../admin', which is not a job id" in one_line(done)
    assert [path for _, path, _ in server.seen] == ["/api/v1"]


def result_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("alterations.tsv", "Input ID\tCHROMOSOME\tPOSITION\tREF\tALT\n")
        archive.writestr("biomarkers.tsv", "Sample ID\tAlterations\n")
        archive.writestr("summary.txt", "=== CGI-ANALYSIS ===\nCGI version: v0\n")
    return buffer.getvalue()


@pytest.mark.reliability("hostile")
@pytest.mark.parametrize("job_id", ["../escape", "../../escape", "/escape", "a/../../escape", "abc\n"])
def test_a_tampered_cgi_receipt_is_refused_before_anything_is_sent_or_written(tmp_path, base_env, job_id):
    with StandIn({("GET", "/*"): (200, "application/zip", result_zip())}) as server:
        write_receipt(tmp_path / "receipt.json", "cgi", f"{server.root}/api/v1", job_id)
        done = run_gensvc(["cgi", "download", "--input", f"receipt={tmp_path / 'receipt.json'}",
                           "--output", f"alterations={tmp_path / 'out' / 'alterations.tsv'}"], base_env)
        deleted = run_gensvc(["cgi", "delete", "--input", f"receipt={tmp_path / 'receipt.json'}",
                              "--output", f"deleted={tmp_path / 'deleted.json'}"], base_env)
    for result in (done, deleted):
        assert result.returncode == 2, result.stderr
        assert "job id" in one_line(result) and "receipt" in one_line(result)
    assert server.seen == []
    assert not [p for p in tmp_path.rglob("*escape*")]
    assert not (tmp_path / "out" / "alterations.tsv").exists()


# ---- OpenCRAVAT ----------------------------------------------------------------------

OC_JOB = "261201-090000"


def oc_routes(**overrides) -> dict:
    """A personal OpenCRAVAT server with one annotator, as the real one answers."""
    routes = {
        ("GET", "/submit/servermode"): as_json({"servermode": False}),
        ("GET", "/submit/annotators"): as_json({"gensvcdemo": {"name": "gensvcdemo", "version": "1.0.0"}}),
        ("GET", "/submit/reports"): as_json({"valid": ["vcf", "tsv", "csv"]}),
        ("GET", "/submit/jobs"): as_json([]),
    }
    routes.update({tuple(k.split(" ", 1)): v for k, v in overrides.items()})
    return routes


@pytest.fixture
def oc_input(tmp_path) -> Path:
    return write_vcf(tmp_path / "in.vcf", "chr1\t1000\t.\tA\tG\t.\t.\t.")


def oc_submit(tmp_path, env, oc_input):
    return run_gensvc(["opencravat", "submit", "--input", f"files={oc_input}", "--annotators", "gensvcdemo",
                       "--output", f"receipt={tmp_path / 'receipt.json'}"], env)


@pytest.mark.reliability("hostile")
@pytest.mark.parametrize("answer, says", [
    (html(), "HTML page"),
    (BROKEN_JSON, "invalid JSON"),
    (as_json({"id": "../../outside"}), "'../../outside', which is not a job id"),
    (as_json({"id": HTML}), "is not a job id"),
    (as_json(["not", "an", "object"]), "sent no job id"),
], ids=["html", "broken-json", "dotdot-id", "html-id", "a-list"])
def test_an_opencravat_submission_answer_that_is_not_a_job_is_one_line_and_exit_5(tmp_path, base_env, oc_input, answer, says):
    with StandIn(oc_routes(**{"POST /submit/submit": answer})) as server:
        done = oc_submit(tmp_path, base_env | {"GENSVC_OPENCRAVAT_URL": f"{server.root}/"}, oc_input)
    assert done.returncode == 5, done.stderr
    line = one_line(done)
    assert says in line and "/submit/submit" in line
    assert not (tmp_path / "receipt.json").exists()


@pytest.mark.reliability("hostile")
@pytest.mark.parametrize("overrides", [
    {"GET /submit/jobs": html()},
    {"GET /submit/jobs": BROKEN_JSON},
    {"GET /submit/jobs": as_json(["../../outside"])},
    {"GET /submit/jobs": as_json([OC_JOB]), "GET /submit/getjobs": html()},
    {"GET /submit/jobs": as_json([OC_JOB]), "GET /submit/getjobs": as_json(["not", "jobs"])},
], ids=["html-list", "broken-list", "dotdot-in-list", "html-getjobs", "strings-getjobs"])
def test_an_opencravat_job_list_that_is_not_one_is_one_line_and_exit_5(tmp_path, base_env, oc_input, overrides):
    with StandIn(oc_routes(**overrides, **{"POST /submit/submit": as_json({"id": OC_JOB})})) as server:
        done = oc_submit(tmp_path, base_env | {"GENSVC_OPENCRAVAT_URL": f"{server.root}/"}, oc_input)
    assert done.returncode == 5, done.stderr
    assert "/submit/" in one_line(done)
    assert ("POST", "/submit/submit", "") not in server.seen  # nothing submitted on an unreadable list
    assert not (tmp_path / "receipt.json").exists()


@pytest.mark.reliability("hostile")
@pytest.mark.parametrize("answer", [html(), BROKEN_JSON, as_json(["Finished"]), as_json({"status": ["Finished"]})],
                         ids=["html", "broken-json", "a-list", "status-not-a-string"])
def test_an_opencravat_status_that_is_not_json_ends_the_poll_with_one_line_and_exit_5(tmp_path, base_env, answer):
    with StandIn(oc_routes(**{f"GET /submit/jobs/{OC_JOB}/status": answer})) as server:
        write_receipt(tmp_path / "receipt.json", "opencravat", f"{server.root}/", OC_JOB)
        done = run_gensvc(["opencravat", "poll", "--input", f"receipt={tmp_path / 'receipt.json'}",
                           "--output", f"status={tmp_path / 'status.json'}", "--first-wait", "0.1",
                           "--max-wait", "0.2", "--timeout", "20"], base_env)
    assert done.returncode == 5, done.stderr
    line = one_line(done)
    assert f"/submit/jobs/{OC_JOB}/status" in line and "did not finish" not in line
    assert not (tmp_path / "status.json").exists()


@pytest.mark.reliability("hostile")
def test_an_html_error_page_from_opencravat_is_a_4xx_refusal_in_one_plain_line(tmp_path, base_env):
    with StandIn(oc_routes(**{f"GET /submit/jobs/{OC_JOB}/status": html(400)})) as server:
        write_receipt(tmp_path / "receipt.json", "opencravat", f"{server.root}/", OC_JOB)
        done = run_gensvc(["opencravat", "poll", "--input", f"receipt={tmp_path / 'receipt.json'}",
                           "--output", f"status={tmp_path / 'status.json'}", "--timeout", "20"], base_env)
    assert done.returncode == 2, done.stderr
    line = one_line(done)
    assert "HTTP 400" in line and "Site maintenance" in line and "<" not in line


@pytest.mark.reliability("hostile")
@pytest.mark.parametrize("job_id", ["../escape", "..", "a/b", "x" * 300])
def test_a_tampered_opencravat_receipt_is_refused_before_anything_is_sent(tmp_path, base_env, job_id):
    with StandIn(oc_routes()) as server:
        write_receipt(tmp_path / "receipt.json", "opencravat", f"{server.root}/", job_id)
        polled = run_gensvc(["opencravat", "poll", "--input", f"receipt={tmp_path / 'receipt.json'}",
                             "--output", f"status={tmp_path / 'status.json'}", "--timeout", "5"], base_env)
        reported = run_gensvc(["opencravat", "report", "--input", f"receipt={tmp_path / 'receipt.json'}",
                               "--output", f"tsv={tmp_path / 'report.tsv'}"], base_env)
    for result in (polled, reported):
        assert result.returncode == 2, result.stderr
        assert "job id" in one_line(result)
    assert server.seen == []


def test_the_receipt_schema_and_the_code_agree_on_what_a_job_id_is():
    import yaml

    from gensvc.core.jobids import JOB_ID_PATTERN, is_job_id
    from gensvc.schema import SCHEMA_DIR

    schema = yaml.safe_load((SCHEMA_DIR / "receipt.yaml").read_text())
    assert schema["properties"]["job_id"]["pattern"] == JOB_ID_PATTERN
    for good in (CGI_JOB, OC_JOB, "3f2c1a9e-7b7d-4c1e-9a43-2b8f5d0e6c11", "variant-index.20240101.ab_c"):
        assert is_job_id(good), good
    for bad in ("", ".", "..", "../x", "a/b", "a\\b", "a..b", "-x", ".hidden", "x" * 129, "abc\n", "a b", HTML):
        assert not is_job_id(bad), bad


# ---- Bravo -----------------------------------------------------------------------------


def bravo_variant(tmp_path, env, server):
    return run_gensvc(["bravo", "variant", "--variant-id", "22-16389447-A-G", "--output",
                       f"variants={tmp_path / 'variants.json'}"],
                      env | {"GENSVC_BRAVO_URL": f"{server.root}/freeze5/hg38/api/v1/", "GENSVC_BRAVO_TOKEN": "t",
                             "GENSVC_BRAVO_RATE_LIMIT": "off"})


@pytest.mark.reliability("hostile")
@pytest.mark.parametrize("answer", [html(), BROKEN_JSON, as_json(["not", "a", "page"])],
                         ids=["html", "broken-json", "a-list"])
def test_a_bravo_page_that_is_not_a_json_object_is_one_line_and_exit_5(tmp_path, base_env, answer):
    with StandIn({("GET", "/freeze5/hg38/api/v1/variant"): answer}) as server:
        done = bravo_variant(tmp_path, base_env, server)
    assert done.returncode == 5, done.stderr
    line = one_line(done)
    assert "/api/v1/variant" in line and "GENSVC_BRAVO_URL" in line and "<" not in line
    assert len(server.seen) == 1  # answered at once, not waited out
    assert not (tmp_path / "variants.json").exists()


@pytest.mark.reliability("hostile")
def test_a_status_bravo_never_sends_is_a_refusal_in_one_line_exit_2(tmp_path, base_env):
    teapot = (418, "application/json", json.dumps({"error": "I'm a teapot"}))
    with StandIn({("GET", "/freeze5/hg38/api/v1/variant"): teapot}) as server:
        done = bravo_variant(tmp_path, base_env, server)
    assert done.returncode == 2, done.stderr
    assert "HTTP 418: I'm a teapot" in one_line(done)
