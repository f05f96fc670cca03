"""CAVATICA operations against the CAVATICA emulator over real HTTP: CLI, wrapper: and
script:, crashes mid-upload and mid-run, and the faults of each path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from helpers import REPO, add_fault, isolated_env, read_json, read_tsv, reset_emulator, run_gensvc, run_snakemake, stats
from gensvc.emulators.server import start_emulator

TOKEN = "cavatica-test-token-4b7e1d"
PROJECT = "gensvc-demo/demo-project"
APP = "gensvc-demo/apps/vcf-score"
PART = 5 * 1024 * 1024
VCF = (
    "##fileformat=VCFv4.2\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "chr7\t140753336\t.\tA\tT\t.\tPASS\t.\n"
    "chr12\t25245350\t.\tC\tA,T\t.\tPASS\t.\n"
)


@pytest.fixture(scope="session")
def cavatica_server():
    with start_emulator("cavatica", tokens=[TOKEN], time_scale=0.01) as emulator:
        yield emulator


@pytest.fixture
def cavatica(cavatica_server):
    reset_emulator(cavatica_server)
    yield cavatica_server
    requests.delete(f"{cavatica_server.root}/_emulator/faults", timeout=5)


def environment(tmp_path, emulator) -> dict:
    # backoff_max is also the wait between two answers saying the platform is under maintenance
    return isolated_env(tmp_path, GENSVC_CAVATICA_URL=emulator.url, GENSVC_CAVATICA_TOKEN=TOKEN,
                        GENSVC_CAVATICA_BACKOFF="0.05", GENSVC_CAVATICA_BACKOFF_MAX="0.5", GENSVC_LOG_LEVEL="DEBUG")


@pytest.fixture(scope="module")
def slow_cavatica():
    """Tasks that stay QUEUED 2 s and RUNNING 10 s: time to abort them."""
    with start_emulator("cavatica", tokens=[TOKEN], time_scale=0.2) as emulator:
        yield emulator


@pytest.fixture
def env(tmp_path, cavatica) -> dict:
    return environment(tmp_path, cavatica)


def api(emulator, path, **params):
    response = requests.get(f"{emulator.url}/{path}", params=params, headers={"X-SBG-Auth-Token": TOKEN}, timeout=5)
    response.raise_for_status()
    return response.json()


def project_files(emulator, name) -> list[dict]:
    return api(emulator, "files", project=PROJECT, name=name, fields="_all")["items"]


def tasks_with(emulator, text) -> list[dict]:
    items = api(emulator, "tasks", project=PROJECT, fields="_all", limit=100)["items"]
    return [t for t in items if text in str(t.get("description"))]


def sample_vcf(tmp_path, name=None) -> Path:
    path = tmp_path / (name or f"s{time.monotonic_ns()}.vcf")
    path.write_text(VCF.replace("##fileformat=VCFv4.2\n", f"##fileformat=VCFv4.2\n##run={path.stem}\n"))
    return path


def big_file(tmp_path, size=2 * PART + 1000) -> Path:
    path = tmp_path / f"big{time.monotonic_ns()}.bin"
    path.write_bytes(os.urandom(size))
    return path


def upload(tmp_path, env, *files, manifest="manifest.json", extra=()):
    args = ["cavatica", "upload", "--project", PROJECT, "--output", f"manifest={tmp_path / manifest}"]
    for path in files:
        args += ["--input", f"files={path}"]
    return run_gensvc([*args, *extra], env)


def run_task(tmp_path, env, inputs, *extra, app=APP, receipt="receipt.json"):
    return run_gensvc(["cavatica", "run", "--project", PROJECT, "--app", app, "--inputs", json.dumps(inputs),
                       "--output", f"receipt={tmp_path / receipt}", *extra], env)


def poll(tmp_path, env, *extra, receipt="receipt.json"):
    return run_gensvc(["cavatica", "poll", "--input", f"receipt={tmp_path / receipt}", "--first-wait", "0.1",
                       "--max-wait", "0.3", "--timeout", "60", "--output", f"status={tmp_path / 'status.json'}", *extra],
                      env)


def download(tmp_path, env, *extra):
    return run_gensvc(["cavatica", "download", "--input", f"receipt={tmp_path / 'receipt.json'}",
                       "--output", f"file={tmp_path / 'out' / 'annotated.vcf'}", *extra], env)


def puts_to_parts(emulator) -> dict[str, int]:
    return {path: n for path, n in stats(emulator)["by_path"].items() if path.startswith("/storage/uploads/")}


def asked_for_part(emulator, number) -> bool:
    return any(path.startswith("/v2/upload/multipart/") and path.endswith(f"/part/{number}")
               for path in stats(emulator)["by_path"])


def test_upload_run_poll_download_annotate_the_vcf(tmp_path, env, cavatica):
    vcf = sample_vcf(tmp_path)
    done = upload(tmp_path, env, vcf)
    assert done.returncode == 0, done.stderr
    [entry] = read_json(tmp_path / "manifest.json")["files"]
    assert entry["name"] == vcf.name and entry["size"] == vcf.stat().st_size and not entry["reused"]
    [record] = project_files(cavatica, vcf.name)
    assert record["id"] == entry["id"] and record["size"] == entry["size"]
    done = run_task(tmp_path, env, {"input_vcf": {"manifest": vcf.name}, "tier_threshold": 0.5},
                    "--input", f"manifest={tmp_path / 'manifest.json'}")
    assert done.returncode == 0, done.stderr
    receipt = read_json(tmp_path / "receipt.json")
    assert receipt["request"]["app"] == f"{APP}/1" and receipt["versions"]["app_revision"] == 1
    assert poll(tmp_path, env).returncode == 0
    assert read_json(tmp_path / "status.json")["status"] == "COMPLETED"
    done = download(tmp_path, env, "--output-id", "annotated_vcf")
    assert done.returncode == 0, done.stderr
    lines = [l for l in (tmp_path / "out" / "annotated.vcf").read_text().splitlines() if not l.startswith("#")]
    assert len(lines) == 2 and all("CAV_SCORE=" in l and "CAV_TIER=" in l for l in lines)
    prov = read_json(tmp_path / "out" / "annotated.vcf.prov.json")
    assert prov["versions"]["cavatica_app"] == f"{APP}/1"


def test_a_multipart_upload_checks_every_part_and_reuses_the_file_on_a_second_run(tmp_path, env, cavatica):
    big = big_file(tmp_path)
    done = upload(tmp_path, env, big, extra=["--part-size", str(PART)])
    assert done.returncode == 0, done.stderr
    assert sorted(puts_to_parts(cavatica).values()) == [1, 1, 1]  # three parts, each sent once
    [entry] = read_json(tmp_path / "manifest.json")["files"]
    assert entry["size"] == big.stat().st_size
    done = upload(tmp_path, env, big, manifest="again.json")
    assert done.returncode == 0, done.stderr
    [again] = read_json(tmp_path / "again.json")["files"]
    assert again["reused"] and again["id"] == entry["id"]
    assert len(project_files(cavatica, big.name)) == 1 and len(puts_to_parts(cavatica)) == 3


def test_an_upload_whose_init_report_and_complete_answers_are_lost_makes_one_file(tmp_path, env, cavatica):
    big = big_file(tmp_path)
    # each POST of the protocol acted on by the platform, its answer lost on the way back
    add_fault(cavatica, path="/v2/upload/multipart", method="POST", kind="drop", processed=True, count=1)
    add_fault(cavatica, path="/v2/upload/multipart/*/part/", method="POST", kind="status", status=502,
              processed=True, count=1)
    add_fault(cavatica, path="/v2/upload/multipart/*/complete", method="POST", kind="drop", processed=True, count=1)
    done = upload(tmp_path, env, big, extra=["--part-size", str(PART)])
    assert done.returncode == 0, done.stderr
    assert stats(cavatica)["by_status"].get("drop") == 2 and stats(cavatica)["by_status"].get("502") == 1
    [entry] = read_json(tmp_path / "manifest.json")["files"]
    [record] = project_files(cavatica, big.name)
    assert record["id"] == entry["id"] and record["size"] == big.stat().st_size
    assert sorted(puts_to_parts(cavatica).values()) == [1, 1, 1]  # no part sent twice


def test_a_different_file_of_the_same_name_is_refused_unless_overwrite_says_so(tmp_path, env, cavatica):
    vcf = sample_vcf(tmp_path)
    assert upload(tmp_path, env, vcf).returncode == 0
    vcf.write_text(vcf.read_text() + "chr1\t1000\t.\tA\tG\t.\tPASS\t.\n")
    done = upload(tmp_path, env, vcf, manifest="m2.json")
    assert done.returncode == 2
    assert "different" in done.stderr and "overwrite=if_different" in done.stderr
    done = upload(tmp_path, env, vcf, manifest="m3.json", extra=["--overwrite", "if_different"])
    assert done.returncode == 0, done.stderr
    [record] = project_files(cavatica, vcf.name)
    assert record["size"] == vcf.stat().st_size


def test_an_upload_killed_mid_transfer_resumes_without_sending_reported_parts_again(tmp_path, env, cavatica):
    big = big_file(tmp_path)
    add_fault(cavatica, path="/storage/uploads/*/3", method="PUT", kind="delay", seconds=60, count=1)
    command = [sys.executable, "-m", "gensvc.cli", "cavatica", "upload", "--project", PROJECT, "--input",
               f"files={big}", "--part-size", str(PART), "--parallel", "1",
               "--output", f"manifest={tmp_path / 'manifest.json'}"]
    client = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 60
        while not asked_for_part(cavatica, 3) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # its PUT under way, hanging
        assert len(puts_to_parts(cavatica)) == 2  # parts 1 and 2 stored and reported
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    requests.delete(f"{cavatica.root}/_emulator/faults", timeout=5)
    done = upload(tmp_path, env, big)
    assert done.returncode == 0, done.stderr
    counts = {path.rsplit("/", 1)[1]: n for path, n in puts_to_parts(cavatica).items()}
    assert counts["1"] == 1 and counts["2"] == 1 and counts["3"] >= 1  # the reported parts were not sent again
    [record] = project_files(cavatica, big.name)
    assert record["size"] == big.stat().st_size
    assert "resuming upload" in done.stderr


def test_a_rerun_at_once_after_a_crash_mid_completion_completes_the_same_upload_into_one_file(tmp_path, env, cavatica):
    # the platform holds the completion 5 s before acting: the dead run's acts after the rerun's
    add_fault(cavatica, path="/v2/upload/multipart/*/complete", method="POST", kind="delay", seconds=5, count=1)
    vcf = sample_vcf(tmp_path)
    log = tmp_path / "killed.log"
    client = subprocess.Popen([sys.executable, "-m", "gensvc.cli", "cavatica", "upload", "--project", PROJECT,
                               "--input", f"files={vcf}", "--output", f"manifest={tmp_path / 'manifest.json'}",
                               "--log", str(log)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and "/complete" in log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # sent, and held
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    done = upload(tmp_path, env, vcf)  # at once, as snakemake --retries does
    assert done.returncode == 0, done.stderr
    assert "resuming upload" in done.stderr  # not a second one
    time.sleep(5)  # the dead run's completion has acted by now
    [record] = project_files(cavatica, vcf.name)
    assert read_json(tmp_path / "manifest.json")["files"][0]["id"] == record["id"]
    assert record["size"] == vcf.stat().st_size


def test_a_run_killed_after_the_task_was_made_finds_it_again(tmp_path, env, cavatica):
    vcf = sample_vcf(tmp_path)
    assert upload(tmp_path, env, vcf).returncode == 0
    file_id = read_json(tmp_path / "manifest.json")["files"][0]["id"]
    add_fault(cavatica, path="/v2/tasks", method="POST", kind="delay", seconds=60, after=True, count=1)
    command = [sys.executable, "-m", "gensvc.cli", "cavatica", "run", "--project", PROJECT, "--app", APP,
               "--inputs", json.dumps({"input_vcf": {"id": file_id}}), "--output", f"receipt={tmp_path / 'receipt.json'}"]
    client = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 60
        while not [t for t in api(cavatica, "tasks", project=PROJECT, fields="_all", limit=100)["items"]
                   if t["inputs"].get("input_vcf", {}).get("path") == file_id] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    requests.delete(f"{cavatica.root}/_emulator/faults", timeout=5)
    done = run_task(tmp_path, env, {"input_vcf": {"id": file_id}})
    assert done.returncode == 0, done.stderr
    receipt = read_json(tmp_path / "receipt.json")
    assert receipt["reused"] is True
    made = [t for t in api(cavatica, "tasks", project=PROJECT, fields="_all", limit=100)["items"]
            if t["inputs"].get("input_vcf", {}).get("path") == file_id]
    assert [t["id"] for t in made] == [receipt["job_id"]]


def test_the_platforms_input_errors_end_in_exit_2_naming_each_input(tmp_path, env, cavatica):
    done = run_task(tmp_path, env, {"input_vcf": {"id": "0123456789abcdef01234567"}, "bogus": 3})
    assert done.returncode == 2
    line = done.stderr.strip().splitlines()[-1]
    assert "input_vcf:" in line and "bogus:" in line and "does not exist" in line
    assert not (tmp_path / "receipt.json").exists()


def test_a_failed_task_exits_4_with_its_failing_job_and_log(tmp_path, env, cavatica):
    vcf = sample_vcf(tmp_path)
    assert upload(tmp_path, env, vcf).returncode == 0
    file_id = read_json(tmp_path / "manifest.json")["files"][0]["id"]
    assert run_task(tmp_path, env, {"input_vcf": {"id": file_id}}, app="gensvc-demo/apps/failing-step").returncode == 0
    done = poll(tmp_path, env)
    assert done.returncode == 4, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "ended FAILED" in line and "FAILED" in line and "job " in line and "job.err.log" in line
    assert not (tmp_path / "status.json").exists()


def test_a_draft_that_was_never_run_is_an_error_not_an_endless_wait(tmp_path, env, cavatica):
    vcf = sample_vcf(tmp_path)
    assert upload(tmp_path, env, vcf).returncode == 0
    file_id = read_json(tmp_path / "manifest.json")["files"][0]["id"]
    task = requests.post(f"{cavatica.url}/tasks", headers={"X-SBG-Auth-Token": TOKEN}, timeout=5,
                         json={"project": PROJECT, "app": APP, "inputs": {"input_vcf": {"class": "File", "path": file_id}}}).json()
    receipt = {"service": "cavatica", "operation": "run", "base_url": cavatica.url + "/", "job_id": task["id"],
               "idempotency_key": "0" * 64, "submitted_at": "2026-01-01T00:00:00+00:00", "request": {},
               "versions": {"gensvc": "0"}}
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    done = poll(tmp_path, env)
    assert done.returncode == 2 and "DRAFT that was never run" in done.stderr


def test_abort_a_running_task_and_again_once_it_has_ended(tmp_path, slow_cavatica):
    env = environment(tmp_path, slow_cavatica)
    vcf = sample_vcf(tmp_path)
    assert upload(tmp_path, env, vcf).returncode == 0
    file_id = read_json(tmp_path / "manifest.json")["files"][0]["id"]
    assert run_task(tmp_path, env, {"input_vcf": {"id": file_id}}).returncode == 0
    results = []
    for n in range(2):
        done = run_gensvc(["cavatica", "abort", "--input", f"receipt={tmp_path / 'receipt.json'}",
                           "--output", f"aborted={tmp_path / f'a{n}.json'}"], env)
        assert done.returncode == 0, done.stderr
        results.append(read_json(tmp_path / f"a{n}.json")["result"])
        time.sleep(0.2)
    assert results[0].startswith("aborted") and results[1].startswith("already")
    assert poll(tmp_path, env).returncode == 4


def test_poll_times_out_and_aborts_when_asked(tmp_path, slow_cavatica):
    env, cavatica = environment(tmp_path, slow_cavatica), slow_cavatica
    vcf = sample_vcf(tmp_path)
    assert upload(tmp_path, env, vcf).returncode == 0
    file_id = read_json(tmp_path / "manifest.json")["files"][0]["id"]
    assert run_task(tmp_path, env, {"input_vcf": {"id": file_id}}).returncode == 0
    done = run_gensvc(["cavatica", "poll", "--input", f"receipt={tmp_path / 'receipt.json'}", "--first-wait", "0.05",
                       "--timeout", "0.1", "--abort-on-timeout", "--output", f"status={tmp_path / 'status.json'}"], env)
    assert done.returncode == 5 and "aborted" in done.stderr
    task = api(cavatica, f"tasks/{read_json(tmp_path / 'receipt.json')['job_id']}")
    assert task["status"] in ("ABORTING", "ABORTED")


def finished_task(tmp_path, env):
    vcf = sample_vcf(tmp_path)
    assert upload(tmp_path, env, vcf).returncode == 0
    file_id = read_json(tmp_path / "manifest.json")["files"][0]["id"]
    assert run_task(tmp_path, env, {"input_vcf": {"id": file_id}}).returncode == 0
    assert poll(tmp_path, env).returncode == 0


@pytest.mark.parametrize("kind, said", [("ignore_range", "ignored the Range"), ("short_download", "record says")])
def test_a_download_from_a_storage_that_ignores_range_or_serves_another_size_is_refused(tmp_path, env, cavatica,
                                                                                        kind, said):
    finished_task(tmp_path, env)
    add_fault(cavatica, path="/storage/files/*", kind=kind)
    done = download(tmp_path, env)
    assert done.returncode == 5 and said in done.stderr
    assert not (tmp_path / "out" / "annotated.vcf").exists()


def test_a_large_output_comes_in_range_parts_and_whole(tmp_path, env, cavatica):
    vcf = tmp_path / f"large{time.monotonic_ns()}.vcf"
    records = "".join(f"chr1\t{1000 + n}\t.\tA\tG\t.\tPASS\t.\n" for n in range(60000))
    vcf.write_text(VCF.split("chr7")[0] + records)
    assert upload(tmp_path, env, vcf).returncode == 0
    assert run_task(tmp_path, env, {"input_vcf": {"manifest": vcf.name}}, "--input",
                    f"manifest={tmp_path / 'manifest.json'}").returncode == 0
    assert poll(tmp_path, env).returncode == 0
    done = download(tmp_path, env, "--part-size", str(1024 * 1024), "--output", f"manifest={tmp_path / 'dl.json'}")
    assert done.returncode == 0, done.stderr
    [entry] = read_json(tmp_path / "dl.json")["files"]
    out = tmp_path / "out" / "annotated.vcf"
    assert entry["size"] == out.stat().st_size > 2 * 1024 * 1024
    assert read_json(f"{out}.prov.json")["details"]["parts_fetched"] == -(-entry["size"] // (1024 * 1024))
    body = [l for l in out.read_text().splitlines() if not l.startswith("#")]
    assert len(body) == 60000 and all("CAV_SCORE=" in l for l in body)


def test_maintenance_is_waited_out_and_errors_carry_the_platforms_message_and_code(tmp_path, env, cavatica):
    add_fault(cavatica, path="/v2/projects*", kind="maintenance", count=2)
    done = run_gensvc(["cavatica", "projects", "--output", f"table={tmp_path / 'p.tsv'}"], env)
    assert done.returncode == 0, done.stderr
    assert {row["id"] for row in read_tsv(tmp_path / "p.tsv")} >= {PROJECT, "gensvc-demo/apps"}
    done = run_gensvc(["cavatica", "files", "--project", "gensvc-demo/no-such", "--output", f"json={tmp_path / 'f.json'}"], env)
    assert done.returncode == 2
    assert "code 3002" in done.stderr and "HTTP 404" in done.stderr
    done = run_gensvc(["cavatica", "projects", "--output", f"table={tmp_path / 'q.tsv'}"],
                      {**env, "GENSVC_CAVATICA_TOKEN": "wrong-token-98765"})
    assert done.returncode == 3 and "code 90001" in done.stderr
    everything = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    assert TOKEN not in everything + done.stderr and "wrong-token-98765" not in everything + done.stderr


def test_files_are_listed_across_pages_and_filtered(tmp_path, env, cavatica):
    vcfs = [sample_vcf(tmp_path, f"page{n}-{time.monotonic_ns()}.vcf") for n in range(5)]
    assert upload(tmp_path, env, *vcfs).returncode == 0
    done = run_gensvc(["cavatica", "files", "--project", PROJECT, "--limit", "2", "--output",
                       f"json={tmp_path / 'f.json'}", "--output", f"table={tmp_path / 'f.tsv'}"], env)
    assert done.returncode == 0, done.stderr
    names = {item["name"] for item in read_json(tmp_path / "f.json")["files"]}
    assert {v.name for v in vcfs} <= names
    assert len(read_tsv(tmp_path / "f.tsv")) == len(names) == len(api(cavatica, "files", project=PROJECT, limit=100)["items"])
    done = run_gensvc(["cavatica", "files", "--project", PROJECT, "--name", vcfs[1].name, "--name", vcfs[3].name,
                       "--fields", "id,name", "--output", f"table={tmp_path / 'g.tsv'}"], env)
    assert done.returncode == 0, done.stderr
    rows = read_tsv(tmp_path / "g.tsv")
    assert sorted(r["name"] for r in rows) == sorted([vcfs[1].name, vcfs[3].name]) and set(rows[0]) == {"id", "name"}
    done = run_gensvc(["cavatica", "apps", "--project", "gensvc-demo/apps", "--output", f"table={tmp_path / 'a.tsv'}"], env)
    assert done.returncode == 0 and any(r["id"].startswith(APP) for r in read_tsv(tmp_path / "a.tsv"))


def test_parallel_processes_slow_down_before_the_platforms_budget_is_spent(tmp_path):
    with start_emulator("cavatica", tokens=[TOKEN], rate_limit=(6, 300), time_scale=0.01) as emulator:
        env = environment(tmp_path, emulator)
        command = [sys.executable, "-m", "gensvc.cli", "cavatica", "projects", "--limit", "1"]
        clients = [subprocess.Popen([*command, "--output", f"table={tmp_path / f'p{n}.tsv'}"], env=env,
                                    stderr=subprocess.PIPE, text=True) for n in range(3)]
        results = [(c.wait(timeout=120), c.stderr.read()) for c in clients]
        assert all(code == 0 for code, _ in results), results
        assert "429" not in emulator.stats()["by_status"]
        assert emulator.stats()["requests"] >= 6  # more than one window's worth: they waited


def test_upload_run_poll_download_by_wrapper_and_script(tmp_path, env, cavatica):
    workdir = tmp_path / "work"
    workdir.mkdir()
    sample_vcf(workdir, "sample.vcf")
    wrappers = REPO / "wrappers" / "cavatica"
    rules = "\n".join((wrappers / op / "test" / "Snakefile").read_text() for op in ("upload", "run", "download"))
    poll_rule = (wrappers / "poll" / "test" / "Snakefile").read_text().replace(
        'wrapper:\n        "cavatica/poll"', f'script:\n        "{wrappers / "poll" / "wrapper.py"}"')
    (workdir / "Snakefile").write_text("rule all:\n    input: 'results/sample.cav.vcf'\n\n" + rules + "\n" + poll_rule)
    done = run_snakemake(workdir, env)
    assert done.returncode == 0, done.stderr[-3000:]
    body = [l for l in (workdir / "results" / "sample.cav.vcf").read_text().splitlines() if not l.startswith("#")]
    assert body and all("CAV_SCORE=" in l for l in body)
    assert read_json(workdir / "results" / "sample.cavatica.status.json")["status"] == "COMPLETED"


def test_the_apps_output_vcf_merges_as_cav_fields_per_alt_with_task_and_app_revision(tmp_path, env, cavatica):
    vcf = sample_vcf(tmp_path)
    finished = upload(tmp_path, env, vcf)
    assert finished.returncode == 0
    assert run_task(tmp_path, env, {"input_vcf": {"manifest": vcf.name}}, "--input",
                    f"manifest={tmp_path / 'manifest.json'}").returncode == 0
    assert poll(tmp_path, env).returncode == 0
    assert download(tmp_path, env).returncode == 0
    done = run_gensvc(["merge", "annotations", "--input", f"vcf={vcf}", "--input",
                       f"cavatica={tmp_path / 'out' / 'annotated.vcf'}", "--output", f"tsv={tmp_path / 'merged.tsv'}",
                       "--output", f"vcf={tmp_path / 'merged.vcf.gz'}"], env)
    assert done.returncode == 0, done.stderr
    rows = read_tsv(tmp_path / "merged.tsv")
    assert [(r["pos"], r["alt"]) for r in rows] == [("140753336", "T"), ("25245350", "A"), ("25245350", "T")]
    assert all(0 <= float(r["CAV_SCORE"]) < 1 and r["CAV_TIER"] in ("high", "medium", "low") for r in rows)
    import gzip

    header = [l for l in gzip.open(tmp_path / "merged.vcf.gz", "rt") if l.startswith("##gensvcSource=<ID=cavatica")]
    task_id = read_json(tmp_path / "receipt.json")["job_id"]
    assert len(header) == 1 and f'JobID="{task_id}"' in header[0] and f"{APP}/1" in header[0]


def test_a_part_the_storage_refuses_ends_the_upload_in_one_line_and_a_rerun_completes_it(tmp_path, env, cavatica):
    big = big_file(tmp_path)
    add_fault(cavatica, path="/storage/uploads/*/2", method="PUT", kind="status", status=403, count=1)
    done = upload(tmp_path, env, big, extra=["--part-size", str(PART), "--parallel", "1"])
    assert done.returncode == 5
    line = done.stderr.strip().splitlines()[-1]
    assert "refused part 2 (HTTP 403" in line and not project_files(cavatica, big.name)
    done = upload(tmp_path, env, big, extra=["--part-size", str(PART), "--parallel", "1"])
    assert done.returncode == 0, done.stderr
    [record] = project_files(cavatica, big.name)
    assert record["size"] == big.stat().st_size


def test_a_download_killed_mid_transfer_resumes_from_the_parts_it_has(tmp_path, env, cavatica):
    vcf = tmp_path / f"resume{time.monotonic_ns()}.vcf"
    vcf.write_text(VCF.split("chr7")[0] + "".join(f"chr2\t{5000 + n}\t.\tC\tT\t.\tPASS\t.\n" for n in range(60000)))
    assert upload(tmp_path, env, vcf).returncode == 0
    assert run_task(tmp_path, env, {"input_vcf": {"manifest": vcf.name}}, "--input",
                    f"manifest={tmp_path / 'manifest.json'}").returncode == 0
    assert poll(tmp_path, env).returncode == 0
    add_fault(cavatica, path="/storage/files/*", method="GET", kind="delay", seconds=1)
    command = [sys.executable, "-m", "gensvc.cli", "cavatica", "download", "--input",
               f"receipt={tmp_path / 'receipt.json'}", "--part-size", str(1024 * 1024), "--parallel", "1",
               "--output", f"file={tmp_path / 'out' / 'annotated.vcf'}"]
    client = subprocess.Popen(command, env=env)
    notes = tmp_path / "state" / "transfers" / "cavatica-download"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                json.loads(p.read_text()).get("done") for p in notes.glob("*.json") if p.stat().st_size):
            time.sleep(0.05)
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    requests.delete(f"{cavatica.root}/_emulator/faults", timeout=5)
    assert not (tmp_path / "out" / "annotated.vcf").exists()
    done = download(tmp_path, env, "--part-size", str(1024 * 1024))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out" / "annotated.vcf"
    parts = -(-out.stat().st_size // (1024 * 1024))
    assert parts >= 3 and read_json(f"{out}.prov.json")["details"]["parts_fetched"] < parts
    body = [l for l in out.read_text().splitlines() if not l.startswith("#")]
    assert len(body) == 60000 and all("CAV_SCORE=" in l for l in body)
    assert not list(notes.glob("*.part"))  # the transfer's bytes moved to the output


def test_a_429_waits_until_the_platforms_reset_and_goes_on(tmp_path):
    with start_emulator("cavatica", tokens=[TOKEN], rate_limit=(3, 300), time_scale=0.01) as emulator:
        env = environment(tmp_path, emulator)
        # our own limiter off, so nothing slows down first: the platform's 429 is met, and waited out
        runs = [run_gensvc(["cavatica", "projects", "--limit", "1", "--rate-limit", "off",
                            "--output", f"table={tmp_path / f'p{n}.tsv'}"], env) for n in range(3)]
        assert [r.returncode for r in runs] == [0, 0, 0], runs[-1].stderr
        assert "429" in emulator.stats()["by_status"]
        assert all({r["id"] for r in read_tsv(tmp_path / f"p{n}.tsv")} >= {PROJECT} for n in range(3))


def split_task(tmp_path, env):
    """A finished vcf-split task over two VCFs: its output chromosome_vcfs lists four files."""
    first, second = sample_vcf(tmp_path, "one.vcf"), sample_vcf(tmp_path, "two.vcf")
    assert upload(tmp_path, env, first, second).returncode == 0
    assert run_task(tmp_path, env, {"input_vcfs": {"manifest": True}}, "--input",
                    f"manifest={tmp_path / 'manifest.json'}", app="gensvc-demo/apps/vcf-split").returncode == 0
    assert poll(tmp_path, env).returncode == 0


def test_a_list_output_downloads_into_one_named_output_per_element(tmp_path, env, cavatica):
    split_task(tmp_path, env)
    out = tmp_path / "parts"
    done = run_gensvc(["cavatica", "download", "--input", f"receipt={tmp_path / 'receipt.json'}",
                       "--output-id", "chromosome_vcfs", "--output", f"manifest={tmp_path / 'dl.json'}",
                       *[a for n in range(4) for a in ("--output", f"chromosome_vcfs_{n}={out / f'{n}.vcf'}")]], env)
    assert done.returncode == 0, done.stderr
    entries = read_json(tmp_path / "dl.json")["files"]
    assert [(e["output"], e["index"], e["name"]) for e in entries] == [
        ("chromosome_vcfs_0", 0, "one.chr7.vcf"), ("chromosome_vcfs_1", 1, "one.chr12.vcf"),
        ("chromosome_vcfs_2", 2, "two.chr7.vcf"), ("chromosome_vcfs_3", 3, "two.chr12.vcf")]
    for n, (stem, chrom, pos) in enumerate([("one", "chr7", "140753336"), ("one", "chr12", "25245350"),
                                            ("two", "chr7", "140753336"), ("two", "chr12", "25245350")]):
        lines = (out / f"{n}.vcf").read_text().splitlines()
        assert f"##run={stem}" in lines and lines[-2].startswith("#CHROM")
        assert lines[-1].split("\t")[:2] == [chrom, pos]
        assert entries[n]["size"] == (out / f"{n}.vcf").stat().st_size


def test_a_list_output_named_without_output_id_is_found_by_the_names_prefix(tmp_path, env, cavatica):
    split_task(tmp_path, env)
    out = tmp_path / "parts"
    done = run_gensvc(["cavatica", "download", "--input", f"receipt={tmp_path / 'receipt.json'}",
                       *[a for n in range(4) for a in ("--output", f"chromosome_vcfs_{n}={out / f'{n}.vcf'}")]], env)
    assert done.returncode == 0, done.stderr
    assert "##run=two" in (out / "3.vcf").read_text() and "25245350" in (out / "3.vcf").read_text()


def test_naming_fewer_outputs_than_the_list_has_elements_is_one_line_exit_2_naming_them(tmp_path, env, cavatica):
    split_task(tmp_path, env)
    out = tmp_path / "parts"
    done = run_gensvc(["cavatica", "download", "--input", f"receipt={tmp_path / 'receipt.json'}",
                       "--output-id", "chromosome_vcfs", "--output", f"chromosome_vcfs_0={out / '0.vcf'}",
                       "--output", f"chromosome_vcfs_1={out / '1.vcf'}"], env)
    assert done.returncode == 2
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("gensvc cavatica download:") and all(name in line for name in ("one.chr7.vcf", "one.chr12.vcf", "two.chr7.vcf", "two.chr12.vcf"))
    assert "chromosome_vcfs_2" in line and "Traceback" not in done.stderr
    assert not out.exists() or not any(out.iterdir())
    assert not any(p.startswith("/storage/files/") for p in stats(cavatica)["by_path"])


def test_a_list_output_into_the_single_file_output_is_refused_naming_its_elements(tmp_path, env, cavatica):
    split_task(tmp_path, env)
    done = download(tmp_path, env, "--output-id", "chromosome_vcfs")
    assert done.returncode == 2 and "two.chr12.vcf" in done.stderr and "chromosome_vcfs_0" in done.stderr


def test_a_list_output_whose_last_element_is_refused_leaves_none_of_its_outputs(tmp_path, env, cavatica):
    split_task(tmp_path, env)
    task = api(cavatica, f"tasks/{read_json(tmp_path / 'receipt.json')['job_id']}")
    last = task["outputs"]["chromosome_vcfs"][-1]["path"]
    add_fault(cavatica, path=f"/storage/files/{last}*", kind="ignore_range")
    out = tmp_path / "parts"
    args = ["cavatica", "download", "--input", f"receipt={tmp_path / 'receipt.json'}",
            *[a for n in range(4) for a in ("--output", f"chromosome_vcfs_{n}={out / f'{n}.vcf'}")]]
    done = run_gensvc(args, env)
    assert done.returncode == 5 and "ignored the Range" in done.stderr
    assert not out.exists() or not any(out.iterdir())
    requests.delete(f"{cavatica.root}/_emulator/faults", timeout=5)
    assert run_gensvc(args, env).returncode == 0
    assert "##run=two" in (out / "3.vcf").read_text() and "25245350" in (out / "3.vcf").read_text()
