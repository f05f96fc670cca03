"""OpenCGA operations against the OpenCGA emulator over real HTTP: upload, index, poll, query,
search by the CLI and by Snakemake; tokens, crashes and faults."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from helpers import REPO, isolated_env, read_json, read_tsv, run_gensvc, run_snakemake
from gensvc.emulators.server import start_emulator

USER, PASSWORD = "analyst", "opencga-test-pass-3f9a"
STUDY = "gensvc@demo:demo"
TIME_SCALE = 0.01  # a 60 s index job takes 0.6 s
MIXED_VCF = (
    "##fileformat=VCFv4.2\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tNORMAL\tTUMOUR\n"
    "1\t11785743\trs1\tT\tC,G\t51\tPASS\tDP=27\tGT\t1/2\t0/0\n"
    "17\t7668029\t.\tGTT\tGT\t52\tPASS\tDP=42\tGT\t0/0\t0/1\n"
    "17\t7675088\t.\tC\tT\t89\tPASS\tDP=40\tGT\t0/1\t0/1\n"
    "22\t19950000\t.\tA\tAGGG\t60\tPASS\t.\tGT\t0/1\t0/0\n"
    "X\t154900000\t.\tC\tT\t70\tPASS\t.\tGT\t0/0\t1/1\n"
)
ALT_COUNT = 6  # the multi-allelic line is two variants


@pytest.fixture(scope="module")
def opencga_server():
    with start_emulator("opencga", tokens=[f"{USER}:{PASSWORD}"], time_scale=TIME_SCALE) as emulator:
        yield emulator


@pytest.fixture
def opencga(opencga_server):
    opencga_server.clear_faults()
    opencga_server.app.stats.reset()
    yield opencga_server
    opencga_server.clear_faults()


@pytest.fixture
def oc_env(tmp_path, opencga) -> dict:
    return isolated_env(tmp_path, GENSVC_OPENCGA_URL=opencga.url, GENSVC_OPENCGA_USER=USER,
                        GENSVC_OPENCGA_PASSWORD=PASSWORD, GENSVC_OPENCGA_BACKOFF="0.05",
                        GENSVC_OPENCGA_BACKOFF_MAX="0.2")


def write_vcf(tmp_path, text: str = MIXED_VCF, name: str | None = None) -> Path:
    # a name of its own per test: the emulator's study outlives one test
    path = tmp_path / (name or f"calls-{time.monotonic_ns()}.vcf")
    path.write_text(text)
    return path


def many_rows(rows: int) -> str:
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1"]
    lines += [f"5\t{1000 + 10 * i}\t.\tA\tG\t50\tPASS\t.\tGT\t0/1" for i in range(rows)]
    return "\n".join(lines) + "\n"


def upload(tmp_path, env, vcf, manifest="manifest.json", *extra):
    return run_gensvc(["opencga", "upload", "--input", f"files={vcf}", "--study", STUDY, "--folder", "runs/t1",
                       "--output", f"manifest={tmp_path / manifest}", "--log", tmp_path / f"{manifest}.log",
                       *extra], env)


def index(tmp_path, env, manifest="manifest.json", receipt="receipt.json"):
    return run_gensvc(["opencga", "index", "--input", f"manifest={tmp_path / manifest}",
                       "--output", f"receipt={tmp_path / receipt}", "--log", tmp_path / f"{receipt}.log"], env)


def poll(tmp_path, env, receipt="receipt.json", status="status.json"):
    return run_gensvc(["opencga", "poll", "--input", f"receipt={tmp_path / receipt}", "--first-wait", "0.1",
                       "--max-wait", "0.3", "--timeout", "60", "--output", f"status={tmp_path / status}",
                       "--log", tmp_path / f"{status}.log"], env)


def query(tmp_path, env, out, *extra):
    return run_gensvc(["opencga", "query", "--study", STUDY, "--output", f"variants={out}",
                       "--log", tmp_path / f"{Path(out).name}.log", *extra], env)


def indexed(tmp_path, env, vcf) -> dict:
    """Upload, index and poll ``vcf``; returns the manifest."""
    for done in (upload(tmp_path, env, vcf), index(tmp_path, env), poll(tmp_path, env)):
        assert done.returncode == 0, done.stderr
    return read_json(tmp_path / "manifest.json")


def jobs_on_server(opencga, tag_of_receipt=None) -> list[dict]:
    base = opencga.url + "webservices/rest/v2/"
    token = requests.post(base + "users/login", json={"user": USER, "password": PASSWORD},
                          timeout=10).json()["responses"][0]["results"][0]["token"]
    answer = requests.get(base + "jobs/search", params={"study": STUDY, "limit": 1000},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    jobs = answer["responses"][0]["results"]
    return [j for j in jobs if tag_of_receipt is None or any(tag_of_receipt in t for t in j["tags"])]


def test_upload_index_poll_and_query_give_back_one_variant_per_alt(tmp_path, oc_env, opencga):
    vcf = write_vcf(tmp_path)
    manifest = indexed(tmp_path, oc_env, vcf)
    [entry] = manifest["files"]
    assert entry["path"] == f"runs/t1/{vcf.name}" and entry["id"] == f"runs:t1:{vcf.name}"
    assert entry["size"] == vcf.stat().st_size and entry["reused"] is False
    assert read_json(tmp_path / "status.json")["status"] == "DONE"

    done = query(tmp_path, oc_env, tmp_path / "variants.tsv", "--file", entry["id"])
    assert done.returncode == 0, done.stderr
    rows = read_tsv(tmp_path / "variants.tsv")
    assert len(rows) == ALT_COUNT
    assert {(r["chromosome"], r["start"], r["alternate"]) for r in rows} >= {("1", "11785743", "C"), ("1", "11785743", "G")}
    prov = read_json(tmp_path / "variants.tsv.prov.json")
    assert prov["details"]["variants"] == ALT_COUNT and prov["versions"]["opencga"].startswith("5.")

    assert query(tmp_path, oc_env, tmp_path / "v.vcf", "--file", entry["id"], "--format", "vcf").returncode == 0
    lines = (tmp_path / "v.vcf").read_text().splitlines()
    assert lines[0] == "##fileformat=VCFv4.2" and lines[[l.startswith("#CHROM") for l in lines].index(True)].endswith("NORMAL\tTUMOUR")
    assert len([l for l in lines if not l.startswith("#")]) == ALT_COUNT

    assert query(tmp_path, oc_env, tmp_path / "v.jsonl", "--file", entry["id"], "--format", "jsonl",
                 "--gene", "TP53").returncode == 0
    genes = [line for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert len(genes) == 2 and all('"TP53"' in line for line in genes)


def test_a_query_is_read_page_by_page_to_the_end(tmp_path, oc_env, opencga):
    manifest = indexed(tmp_path, oc_env, write_vcf(tmp_path, many_rows(25)))
    opencga.app.stats.reset()
    done = query(tmp_path, {**oc_env, "GENSVC_PROGRESS_INTERVAL": "0"}, tmp_path / "all.tsv", "--file",
                 manifest["files"][0]["id"], "--page-size", "10")
    assert done.returncode == 0, done.stderr
    assert len(read_tsv(tmp_path / "all.tsv")) == 25
    log = (tmp_path / "all.tsv.log").read_text()
    assert f"opencga query {STUDY}: 10/25 variants" in log and f"opencga query {STUDY}: 25 variants in" in log
    assert opencga.stats()["by_path"]["/opencga/webservices/rest/v2/analysis/variant/query"] == 3


def test_uploading_again_reuses_the_file_and_indexing_again_finds_the_job(tmp_path, oc_env, opencga):
    vcf = write_vcf(tmp_path)
    assert upload(tmp_path, oc_env, vcf).returncode == 0
    assert index(tmp_path, oc_env).returncode == 0
    first = read_json(tmp_path / "receipt.json")
    again = upload(tmp_path, oc_env, vcf, "manifest2.json")
    assert again.returncode == 0, again.stderr
    assert read_json(tmp_path / "manifest2.json")["files"][0]["reused"] is True
    assert opencga.stats()["by_path"]["/opencga/webservices/rest/v2/files/upload"] == 1
    assert index(tmp_path, oc_env, "manifest2.json", "receipt2.json").returncode == 0
    second = read_json(tmp_path / "receipt2.json")
    assert second["job_id"] == first["job_id"] and second["reused"] is True
    assert len(jobs_on_server(opencga, first["idempotency_key"][:32])) == 1


def test_another_file_of_the_same_name_in_the_folder_is_refused(tmp_path, oc_env, opencga):
    vcf = write_vcf(tmp_path)
    assert upload(tmp_path, oc_env, vcf).returncode == 0
    vcf.write_text(MIXED_VCF + "2\t100\t.\tA\tG\t1\tPASS\t.\tGT\t0/1\t0/1\n")
    done = upload(tmp_path, oc_env, vcf, "m2.json")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "already exists" in done.stderr
    assert not (tmp_path / "m2.json").exists()


def test_a_folder_named_by_content_takes_a_changed_file_beside_the_old_one(tmp_path, oc_env, opencga):
    vcf = write_vcf(tmp_path)
    assert upload(tmp_path, oc_env, vcf, "m1.json", "--folder", "bydigest/{sha256}").returncode == 0
    vcf.write_text(MIXED_VCF + "2\t100\t.\tA\tG\t1\tPASS\t.\tGT\t0/1\t0/1\n")
    done = upload(tmp_path, oc_env, vcf, "m2.json", "--folder", "bydigest/{sha256}")
    assert done.returncode == 0, done.stderr
    first, second = (read_json(tmp_path / m)["files"][0] for m in ("m1.json", "m2.json"))
    assert first["path"] != second["path"] and first["name"] == second["name"] == vcf.name
    assert second["path"].startswith("bydigest/") and second["size"] == vcf.stat().st_size


def test_a_query_after_a_poll_reads_only_the_files_that_job_indexed(tmp_path, oc_env, opencga):
    indexed(tmp_path, oc_env, write_vcf(tmp_path, many_rows(4)))  # another file in the same study
    indexed(tmp_path, oc_env, write_vcf(tmp_path))
    done = run_gensvc(["opencga", "query", "--study", STUDY, "--input", f"status={tmp_path / 'status.json'}",
                       "--output", f"variants={tmp_path / 'v.tsv'}"], oc_env)
    assert done.returncode == 0, done.stderr
    assert len(read_tsv(tmp_path / "v.tsv")) == ALT_COUNT


def test_a_rerun_at_once_after_a_crash_mid_upload_reuses_the_file_the_dead_run_s_request_made(tmp_path, oc_env, opencga):
    # the server holds each upload 5 s before acting: the dead run's lands while the rerun's is held
    opencga.add_faults({"path": "*/files/upload", "method": "POST", "kind": "delay", "seconds": 5, "count": 2})
    vcf = write_vcf(tmp_path)
    log = tmp_path / "killed.log"
    process = subprocess.Popen([sys.executable, "-m", "gensvc.cli", "opencga", "upload", "--input", f"files={vcf}",
                                "--study", STUDY, "--folder", "runs/t1", "--output",
                                f"manifest={tmp_path / 'manifest.json'}", "--log", str(log)],
                               env=oc_env | {"GENSVC_LOG_LEVEL": "DEBUG"})
    deadline = time.monotonic() + 30
    while not (log.exists() and "files/upload" in log.read_text()):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    time.sleep(0.3)  # sent, and held
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    done = upload(tmp_path, oc_env, vcf)  # at once, as snakemake --retries does
    assert done.returncode == 0, done.stderr
    [entry] = read_json(tmp_path / "manifest.json")["files"]
    assert entry["path"] == f"runs/t1/{vcf.name}" and entry["size"] == vcf.stat().st_size
    assert "already there" in (tmp_path / "manifest.json.log").read_text()


def test_a_crash_during_index_leaves_one_job_that_the_rerun_finds(tmp_path, oc_env, opencga):
    assert upload(tmp_path, oc_env, write_vcf(tmp_path)).returncode == 0
    opencga.add_faults({"path": "*/operation/variant/index", "method": "POST", "kind": "delay", "seconds": 30,
                        "after": True, "count": 1})
    process = subprocess.Popen([sys.executable, "-m", "gensvc.cli", "opencga", "index", "--input",
                                f"manifest={tmp_path / 'manifest.json'}", "--output",
                                f"receipt={tmp_path / 'receipt.json'}"], env=oc_env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while opencga.stats()["by_path"].get("/opencga/webservices/rest/v2/operation/variant/index", 0) < 1:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    time.sleep(0.3)  # the job is made; its answer is held back
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert not (tmp_path / "receipt.json").exists()
    opencga.clear_faults()
    done = index(tmp_path, oc_env)
    assert done.returncode == 0, done.stderr
    receipt = read_json(tmp_path / "receipt.json")
    assert receipt["reused"] is True
    assert [j["id"] for j in jobs_on_server(opencga, receipt["idempotency_key"][:32])] == [receipt["job_id"]]
    assert opencga.stats()["by_path"]["/opencga/webservices/rest/v2/operation/variant/index"] == 1


def test_a_failed_index_job_exits_4_with_its_error_and_log(tmp_path, oc_env, opencga):
    assert upload(tmp_path, oc_env, write_vcf(tmp_path)).returncode == 0
    opencga.add_faults({"path": "*/operation/variant/index", "kind": "index_error", "message": "disk full on node 3"})
    assert index(tmp_path, oc_env).returncode == 0
    done = poll(tmp_path, oc_env)
    assert done.returncode == 4
    [line] = done.stderr.strip().splitlines()
    assert "ended ERROR: disk full on node 3" in line and "[ERROR]" in line
    assert not (tmp_path / "status.json").exists()


def test_an_error_answered_with_http_200_is_caught(tmp_path, oc_env, opencga):
    opencga.add_faults({"path": "*/files/upload", "kind": "error_200"})
    done = upload(tmp_path, oc_env, write_vcf(tmp_path))
    assert done.returncode == 5
    [line] = done.stderr.strip().splitlines()
    assert "HTTP 200 with an error: No file or chunk found" in line


def test_a_catalog_refusal_is_not_retried_and_says_the_server_s_words(tmp_path, oc_env, opencga):
    done = run_gensvc(["opencga", "search", "--resource", "samples", "--study", "nobody@none:none",
                       "--output", f"results={tmp_path / 's.tsv'}"], oc_env)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "HTTP 500" in line and "not found" in line.lower()
    assert opencga.stats()["by_path"]["/opencga/webservices/rest/v2/samples/search"] == 1


def test_an_outage_is_retried_on_every_path(tmp_path, oc_env, opencga):
    vcf = write_vcf(tmp_path)
    for path in ("files/upload", "files/search", "users/login"):
        opencga.add_faults({"path": f"*/{path}", "kind": "status", "status": 503, "count": 1})
    assert upload(tmp_path, oc_env, vcf).returncode == 0
    opencga.add_faults([{"path": "*/operation/variant/index", "kind": "status", "status": 503, "count": 1},
                        # a gateway's 500 after the job was made: found by its tag, not made twice
                        {"path": "*/operation/variant/index", "kind": "status", "status": 500, "count": 1,
                         "processed": True},
                        {"path": "*/jobs/*/info", "kind": "status", "status": 502, "count": 2},
                        {"path": "*/analysis/variant/query", "kind": "drop", "count": 1},
                        {"path": "*/analysis/variant/query", "kind": "truncate", "count": 1}])
    assert index(tmp_path, oc_env).returncode == 0
    receipt = read_json(tmp_path / "receipt.json")
    assert [j["id"] for j in jobs_on_server(opencga, receipt["idempotency_key"][:32])] == [receipt["job_id"]]
    assert poll(tmp_path, oc_env).returncode == 0
    done = query(tmp_path, oc_env, tmp_path / "v.tsv", "--file", read_json(tmp_path / "manifest.json")["files"][0]["id"])
    assert done.returncode == 0, done.stderr
    assert len(read_tsv(tmp_path / "v.tsv")) == ALT_COUNT
    assert opencga.stats()["by_status"].get("503", 0) == 4


def test_a_refused_token_is_renewed_once_then_the_call_ends_with_exit_3(tmp_path, oc_env, opencga):
    unauthorized = {"path": "*/samples/search", "kind": "status", "status": 401,
                    "body": {"events": [{"type": "ERROR", "message": "Authentication token is expired"}]}}
    opencga.add_faults({**unauthorized, "count": 1})
    out = tmp_path / "s.tsv"
    done = run_gensvc(["opencga", "search", "--resource", "samples", "--study", STUDY, "--output", f"results={out}",
                       "--log", tmp_path / "s.log"], oc_env)
    assert done.returncode == 0, done.stderr
    assert "refreshed the opencga token (refresh 1)" in (tmp_path / "s.log").read_text()

    opencga.clear_faults()
    opencga.add_faults(unauthorized)
    opencga.app.stats.reset()
    done = run_gensvc(["opencga", "search", "--resource", "samples", "--study", STUDY, "--output", f"results={out}"],
                      oc_env)
    assert done.returncode == 3
    [line] = done.stderr.strip().splitlines()
    assert "refused the credentials" in line and "GENSVC_OPENCGA_PASSWORD" in line
    paths = opencga.stats()["by_path"]
    assert paths["/opencga/webservices/rest/v2/samples/search"] == 2
    assert paths["/opencga/webservices/rest/v2/users/login"] == 2  # the login, one refresh


def test_a_wrong_password_exits_3_in_one_line(tmp_path, oc_env, opencga):
    done = run_gensvc(["opencga", "search", "--resource", "projects", "--output", f"results={tmp_path / 'p.tsv'}"],
                      {**oc_env, "GENSVC_OPENCGA_PASSWORD": "wrong-password"})
    assert done.returncode == 3
    [line] = done.stderr.strip().splitlines()
    assert "logging in as 'analyst'" in line and "wrong-password" not in line


def login_token(opencga) -> str:
    answer = requests.post(opencga.url + "webservices/rest/v2/users/login", json={"user": USER, "password": PASSWORD},
                           timeout=10).json()
    return answer["responses"][0]["results"][0]["token"]


def test_a_given_token_is_used_as_it_is_and_a_refused_one_exits_3_masked(tmp_path, oc_env, opencga):
    env = {k: v for k, v in oc_env.items() if k not in ("GENSVC_OPENCGA_USER", "GENSVC_OPENCGA_PASSWORD")}
    token = login_token(opencga)
    opencga.app.stats.reset()
    done = run_gensvc(["opencga", "search", "--resource", "projects", "--output", f"results={tmp_path / 'p.tsv'}"],
                      {**env, "GENSVC_OPENCGA_TOKEN": token})
    assert done.returncode == 0, done.stderr
    assert "users/login" not in str(opencga.stats()["by_path"])
    opencga.app.stats.reset()
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    done = run_gensvc(["opencga", "search", "--resource", "projects", "--output", f"results={tmp_path / 'p.tsv'}",
                       "--log", tmp_path / "p.log"], {**env, "GENSVC_OPENCGA_TOKEN": forged, "GENSVC_LOG_LEVEL": "DEBUG"})
    assert done.returncode == 3
    [line] = done.stderr.strip().splitlines()
    assert "GENSVC_OPENCGA_TOKEN" in line and "Invalid authentication token : ***" in line
    assert forged not in done.stderr + (tmp_path / "p.log").read_text()
    assert opencga.stats()["by_path"]["/opencga/webservices/rest/v2/projects/search"] == 1


def test_search_reads_every_page_of_each_resource(tmp_path, oc_env, opencga):
    indexed(tmp_path, oc_env, write_vcf(tmp_path))
    done = run_gensvc(["opencga", "search", "--resource", "samples", "--study", STUDY, "--page-size", "1",
                       "--filters", '{"id": ["NORMAL", "TUMOUR"], "somatic": false}',
                       "--output", f"results={tmp_path / 's.tsv'}"], oc_env)
    assert done.returncode == 0, done.stderr
    assert sorted(r["id"] for r in read_tsv(tmp_path / "s.tsv")) == ["NORMAL", "TUMOUR"]
    assert opencga.stats()["by_path"]["/opencga/webservices/rest/v2/samples/search"] >= 2
    done = run_gensvc(["opencga", "search", "--resource", "studies", "--project", "gensvc@demo", "--format", "json",
                       "--output", f"results={tmp_path / 'st.json'}"], oc_env)
    assert done.returncode == 0, done.stderr
    assert [s["fqn"] for s in read_json(tmp_path / "st.json")] == [STUDY]


def test_a_token_that_expires_mid_run_is_refreshed_not_refused(tmp_path, oc_env):
    # tokens live 2 s here and the job takes 8 s: the poll outlives its first token
    with start_emulator("opencga", tokens=[f"{USER}:{PASSWORD}"], time_scale=0.01, token_seconds=200,
                        job_seconds=800) as emulator:
        env = {**oc_env, "GENSVC_OPENCGA_URL": emulator.url}
        assert upload(tmp_path, env, write_vcf(tmp_path)).returncode == 0
        assert index(tmp_path, env).returncode == 0
        done = poll(tmp_path, env)
        assert done.returncode == 0, done.stderr
        log = (tmp_path / "status.json.log").read_text()
        assert log.count("logged in to opencga") == 1
        refreshes = log.count("refreshed the opencga token")
        assert 1 <= refreshes <= 8  # once per token's life, never a loop
        assert "401" not in emulator.stats()["by_status"]


def snakefile_chain(directive: str) -> str:
    def target(op):
        return f'"opencga/{op}"' if directive == "wrapper" else f'"{REPO / "wrappers" / "opencga" / op / "wrapper.py"}"'
    return f'''
rule upload:
    input: files="calls.vcf"
    output: manifest="results/manifest.json"
    params: study="{STUDY}", folder="smk/{directive}/"
    log: "logs/upload.log"
    {directive}: {target("upload")}

rule index:
    input: manifest="results/manifest.json"
    output: receipt="results/receipt.json"
    log: "logs/index.log"
    {directive}: {target("index")}

rule poll:
    input: receipt="results/receipt.json"
    output: status="results/status.json"
    params: first_wait=0.1, max_wait=0.3
    log: "logs/poll.log"
    {directive}: {target("poll")}

rule query:
    input: status="results/status.json"
    output: variants="results/variants.tsv"
    params: study="{STUDY}", file=["smk:{directive}:calls.vcf"]
    log: "logs/query.log"
    {directive}: {target("query")}

rule search:
    output: results="results/studies.json"
    params: resource="studies", project="gensvc@demo", format="json"
    log: "logs/search.log"
    {directive}: {target("search")}
'''


@pytest.mark.parametrize("directive", ["wrapper", "script"])
def test_snakemake_runs_upload_index_poll_and_query(tmp_path, oc_env, opencga, directive):
    work = tmp_path / "work"
    work.mkdir()
    (work / "calls.vcf").write_text(MIXED_VCF)
    (work / "Snakefile").write_text(snakefile_chain(directive))
    done = run_snakemake(work, oc_env, "results/variants.tsv", "results/studies.json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(read_tsv(work / "results" / "variants.tsv")) == ALT_COUNT
    assert [s["fqn"] for s in read_json(work / "results" / "studies.json")] == [STUDY]


def test_a_refused_refresh_token_falls_back_to_one_password_login(tmp_path, oc_env):
    # access tokens live 2 s, refresh tokens 1 s: every refresh is refused, the password logs in
    with start_emulator("opencga", tokens=[f"{USER}:{PASSWORD}"], time_scale=0.01, token_seconds=200,
                        refresh_seconds=100, job_seconds=500) as emulator:
        env = {**oc_env, "GENSVC_OPENCGA_URL": emulator.url}
        assert upload(tmp_path, env, write_vcf(tmp_path)).returncode == 0
        assert index(tmp_path, env).returncode == 0
        done = poll(tmp_path, env)
        assert done.returncode == 0, done.stderr
        log = (tmp_path / "status.json.log").read_text()
        fallbacks = log.count("the opencga refresh token was refused; logging in again")
        assert fallbacks >= 1 and log.count("logged in to opencga") == 1 + fallbacks
        assert "refreshed the opencga token" not in log
        assert emulator.stats()["by_status"].get("401", 0) == fallbacks  # only the refused refreshes


def test_index_by_file_ids_without_a_manifest(tmp_path, oc_env, opencga):
    assert upload(tmp_path, oc_env, write_vcf(tmp_path)).returncode == 0
    file_id = read_json(tmp_path / "manifest.json")["files"][0]["id"]
    done = run_gensvc(["opencga", "index", "--study", STUDY, "--files", file_id, "--options", '{"calculateStats": true}',
                       "--output", f"receipt={tmp_path / 'receipt.json'}"], oc_env)
    assert done.returncode == 0, done.stderr
    assert read_json(tmp_path / "receipt.json")["request"] == {"study": STUDY, "files": [file_id],
                                                               "options": {"calculateStats": True}}
    assert poll(tmp_path, oc_env).returncode == 0
    job = read_json(tmp_path / "status.json")["job"]
    assert [f["id"] for f in job["input"]] == [file_id] and job["params"]["calculateStats"] is True


def test_a_url_that_answers_a_web_page_ends_in_one_line_exit_5(tmp_path, oc_env):
    import http.server
    import threading

    class Portal(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = b"<html><head><title>Sign in - Campus portal</title></head><body>login</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**oc_env, "GENSVC_OPENCGA_URL": f"http://127.0.0.1:{server.server_port}/opencga/"}
        done = run_gensvc(["opencga", "search", "--resource", "projects", "--output", f"results={tmp_path / 'p.tsv'}"],
                          env)
    finally:
        server.shutdown()
    assert done.returncode == 5
    [line] = done.stderr.strip().splitlines()
    assert "Campus portal" in line and "GENSVC_OPENCGA_URL" in line


def test_a_catalog_refusal_of_an_index_is_not_sent_again(tmp_path, oc_env, opencga):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a VCF\n")
    assert upload(tmp_path, oc_env, notes).returncode == 0
    done = index(tmp_path, oc_env)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "is not a VCF file" in line
    assert opencga.stats()["by_path"]["/opencga/webservices/rest/v2/operation/variant/index"] == 1


def test_a_killed_job_ends_the_poll_with_exit_4(tmp_path, oc_env, opencga):
    assert upload(tmp_path, oc_env, write_vcf(tmp_path)).returncode == 0
    assert index(tmp_path, oc_env).returncode == 0
    job_id = read_json(tmp_path / "receipt.json")["job_id"]
    base = opencga.url + "webservices/rest/v2/"
    killed = requests.post(base + f"jobs/{job_id}/kill", params={"study": STUDY},
                           headers={"Authorization": f"Bearer {login_token(opencga)}"}, timeout=10)
    assert killed.status_code == 200, killed.text
    done = poll(tmp_path, oc_env)
    assert done.returncode == 4
    [line] = done.stderr.strip().splitlines()
    assert f"opencga job {job_id} ended ABORTED: Job killed by the user" in line and "killed on request" in line


def test_the_organization_goes_with_the_login(tmp_path, oc_env, opencga):
    out = ["--output", f"results={tmp_path / 'p.tsv'}"]
    done = run_gensvc(["opencga", "search", "--resource", "projects", *out],
                      {**oc_env, "GENSVC_OPENCGA_ORGANIZATION": "gensvc"})
    assert done.returncode == 0, done.stderr
    done = run_gensvc(["opencga", "search", "--resource", "projects", *out],
                      {**oc_env, "GENSVC_OPENCGA_ORGANIZATION": "elsewhere"})
    assert done.returncode == 3
    [line] = done.stderr.strip().splitlines()
    assert "Organization 'elsewhere' not found" in line


@pytest.mark.parametrize("text", ["[1, 2]", '{"service": "cgi", "files": []}', "not json"])
def test_a_manifest_not_written_by_upload_is_refused_before_anything_is_sent(tmp_path, oc_env, opencga, text):
    (tmp_path / "manifest.json").write_text(text)
    done = index(tmp_path, oc_env)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "manifest" in line and opencga.stats()["requests"] == 0
