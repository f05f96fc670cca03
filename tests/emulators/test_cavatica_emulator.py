"""The CAVATICA emulator over raw HTTP: pagination, Range, error bodies, upload checks,
strict formats, rate limits and faults."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
import uuid

import pytest
import requests

from gensvc.emulators import start_emulator

TOKEN = "raw-test-token"
PROJECT = "gensvc-demo/demo-project"
PART = 1024
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
VCF = ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       "chr1\t100\t.\tA\tG\t.\tPASS\t.\n")


@pytest.fixture(scope="module")
def cavatica():
    with start_emulator("cavatica", tokens=[TOKEN], time_scale=0.005, min_part_size=PART,
                        rate_limit=(100_000, 300)) as emulator:
        yield emulator


class Client:
    """requests with the auth header; paths relative to the base URL."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.session = requests.Session()
        self.session.headers["X-SBG-Auth-Token"] = TOKEN

    def __call__(self, method, path, **kwargs):
        url = path if path.startswith("http") else self.emulator.url + path
        return self.session.request(method, url, timeout=30, **kwargs)

    def upload(self, data: bytes, name: str | None = None, part_size: int = PART, **where):
        """The whole multipart flow, done right; the new file's JSON."""
        name = name or f"raw-{uuid.uuid4().hex[:8]}.bin"
        init = self("POST", "/upload/multipart",
                    json={"name": name, "size": len(data), "part_size": part_size, **(where or {"project": PROJECT})})
        assert init.status_code == 201, init.text
        upload = init.json()
        size = upload["part_size"]
        for number in range(1, max(1, -(-len(data) // size)) + 1):
            self.put_part(upload["upload_id"], number, data[(number - 1) * size:number * size], report=True)
        done = self("POST", f"/upload/multipart/{upload['upload_id']}/complete", data="null")
        assert done.status_code == 200, done.text
        return done.json()

    def put_part(self, upload_id, number, chunk, report=True, etag=None):
        url = self("GET", f"/upload/multipart/{upload_id}/part/{number}").json()["url"]
        stored = requests.put(url, data=chunk, timeout=30)
        assert stored.status_code == 200, stored.text
        if report:
            reported = self("POST", f"/upload/multipart/{upload_id}/part/",
                            json={"part_number": number,
                                  "response": {"headers": {"ETag": etag or stored.headers["ETag"].strip('"')}}})
            assert reported.status_code == 200, reported.text
        return stored


@pytest.fixture
def api(cavatica):
    requests.delete(f"{cavatica.root}/_emulator/faults", timeout=5).raise_for_status()
    client = Client(cavatica)
    yield client
    requests.delete(f"{cavatica.root}/_emulator/faults", timeout=5)
    client.session.close()


def add_fault(emulator, **fault):
    requests.post(f"{emulator.root}/_emulator/faults", json=fault, timeout=5).raise_for_status()


def assert_platform_error(response, status, code):
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"status", "code", "message", "more_info"}
    assert body["status"] == status and body["code"] == code and body["message"]


def new_folder(api) -> str:
    made = api("POST", "/files", json={"name": f"dir-{uuid.uuid4().hex[:8]}", "type": "folder",
                                      "project": PROJECT})
    assert made.status_code == 201, made.text
    return made.json()["id"]


# Pagination and formats.
def test_pages_link_to_the_next_with_absolute_hrefs_and_count_the_whole_query(api):
    folder = new_folder(api)
    for n in range(5):
        api("POST", "/files", json={"name": f"sub{n}", "type": "folder", "parent": folder})

    first = api("GET", "/files", params={"parent": folder, "limit": 2})
    seen, page = [], first
    while True:
        assert page.headers["X-Total-Matching-Query"] == "5"
        seen += [item["name"] for item in page.json()["items"]]
        following = [link for link in page.json()["links"] if link["rel"] == "next"]
        if not following:
            break
        assert following[0]["href"].startswith(api.emulator.url + "/files?")
        page = api("GET", following[0]["href"])
    again = api("GET", first.json()["href"])

    assert seen == [f"sub{n}" for n in range(5)]
    assert again.json()["items"] == first.json()["items"]
    assert all(item["href"].startswith("http://") for item in first.json()["items"])


def test_a_limit_over_100_is_refused_with_the_platforms_error_body(api):
    assert_platform_error(api("GET", "/projects", params={"limit": 101}), 400, 90000)
    assert api("GET", "/projects", params={"limit": 100}).status_code == 200


def test_list_items_are_short_unless_fields_asks_for_all_or_some(api):
    short = api("GET", "/projects").json()["items"][0]
    full = api("GET", "/projects", params={"fields": "_all"}).json()["items"][0]
    some = api("GET", f"/projects/{PROJECT}", params={"fields": "id,type"}).json()

    assert "type" not in short and full["type"] == "v2"
    assert some == {"id": PROJECT, "type": "v2"}


def test_records_have_uuid_task_ids_and_datetimes_without_offsets(api):
    record = api.upload(VCF.encode(), name="formats.vcf")
    task = api("POST", "/tasks", json={"name": "t", "project": PROJECT, "app": "gensvc-demo/apps/vcf-score",
                                       "description": None, "inputs": {"input_vcf": {"class": "File", "path": record["id"]}}})
    project = api("GET", f"/projects/{PROJECT}").json()

    assert task.status_code == 201
    assert uuid.UUID(task.json()["id"]).version == 4
    assert DATETIME.match(task.json()["created_time"]) and DATETIME.match(record["created_on"])
    assert DATETIME.match(project["created_on"]) and project["type"] == "v2"
    uuid.UUID(project["billing_group"])


def test_a_get_with_a_json_null_body_is_answered(api):
    assert api("GET", "/user", data="null", headers={"Content-Type": "application/json"}).json()["username"] == "gensvc-demo"


# Errors and auth.
def test_errors_carry_the_platforms_body_and_codes(api):
    assert_platform_error(api("GET", "/files/0123456789abcdef01234567"), 404, 5002)
    assert_platform_error(api("GET", "/projects/gensvc-demo/nope"), 404, 3002)
    assert_platform_error(api("GET", "/tasks/not-a-uuid"), 400, 7005)
    assert_platform_error(api("GET", f"/tasks/{uuid.uuid4()}"), 404, 7002)
    assert_platform_error(api("GET", "/apps/gensvc-demo/apps/nothing"), 404, 6002)
    assert_platform_error(api("GET", "/no/such/path"), 404, 90003)
    assert_platform_error(api("POST", "/tasks", data="{not json"), 400, 90009)


def test_a_missing_or_unknown_token_is_401_and_the_root_needs_none(cavatica):
    no_token = requests.get(cavatica.url + "/user", timeout=5)
    wrong = requests.get(cavatica.url + "/user", headers={"X-SBG-Auth-Token": "nope"}, timeout=5)
    root = requests.get(cavatica.url + "/", timeout=5)

    assert_platform_error(no_token, 401, 90001)
    assert_platform_error(wrong, 401, 90001)
    default = requests.get(cavatica.url + "/user", headers={"X-SBG-Auth-Token": "cavatica-demo-token"}, timeout=5)
    assert_platform_error(default, 401, 90001)  # --tokens replaces the documented default
    assert root.status_code == 200 and root.json()["upload_url"].startswith(cavatica.url)


def test_every_api_answer_carries_rate_limit_headers_in_epoch_seconds(api):
    for response in (api("GET", "/user"), api("GET", "/files/0123456789abcdef01234567"),
                     requests.get(api.emulator.url + "/user", timeout=5)):
        assert response.headers["X-RateLimit-Limit"] == "100000"
        assert int(response.headers["X-RateLimit-Remaining"]) < 100_000
        assert abs(int(response.headers["X-RateLimit-Reset"]) - time.time()) <= 301


def test_the_budget_spent_gives_429_code_1000_until_the_window_resets():
    with start_emulator("cavatica", tokens=[TOKEN], rate_limit=(3, 300), time_scale=0.004) as emulator:
        session = requests.Session()
        session.headers["X-SBG-Auth-Token"] = TOKEN
        answers = [session.get(emulator.url + "/user", timeout=5) for _ in range(4)]
        free = session.get(emulator.url + "/rate_limit", timeout=5)
        reset = int(answers[-1].headers["X-RateLimit-Reset"])
        while time.time() < reset:
            time.sleep(0.1)
        after = session.get(emulator.url + "/user", timeout=5)

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert_platform_error(answers[-1], 429, 1000)
    assert answers[-1].headers["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in answers[-1].headers
    assert free.status_code == 200 and free.json()["rate"] == {"limit": 3, "remaining": 0, "reset": reset}
    assert after.status_code == 200


# Uploads: the emulator is the storage and checks what the client reports.
def test_a_put_part_answers_its_md5_as_etag_and_a_wrong_reported_etag_fails_completion(api):
    data = b"x" * (2 * PART)
    upload = api("POST", "/upload/multipart", json={"name": "etag.bin", "size": len(data),
                                                    "part_size": PART, "project": PROJECT}).json()
    first = api.put_part(upload["upload_id"], 1, data[:PART])
    api.put_part(upload["upload_id"], 2, data[PART:], etag="0" * 32)
    done = api("POST", f"/upload/multipart/{upload['upload_id']}/complete", data="null")

    assert first.headers["ETag"] == f'"{hashlib.md5(data[:PART]).hexdigest()}"'
    assert_platform_error(done, 400, 8007)
    assert "part 2" in done.json()["message"] and "part 1" not in done.json()["message"]


def test_completion_names_a_part_never_uploaded_or_never_reported(api):
    upload = api("POST", "/upload/multipart", json={"name": "gaps.bin", "size": 3 * PART,
                                                    "part_size": PART, "project": PROJECT}).json()
    api.put_part(upload["upload_id"], 1, b"a" * PART)
    api.put_part(upload["upload_id"], 2, b"b" * PART, report=False)
    done = api("POST", f"/upload/multipart/{upload['upload_id']}/complete")
    details = api("GET", f"/upload/multipart/{upload['upload_id']}").json()

    assert_platform_error(done, 400, 8007)
    assert "part 2 was not reported" in done.json()["message"]
    assert "part 3 was not uploaded" in done.json()["message"]
    assert [(p["part_number"], p["reported"]) for p in details["parts"]] == [(1, True), (2, False)]


def test_an_empty_last_part_and_an_oversize_one_before_it_are_accepted(api):
    data = bytes(range(256)) * 12 + b"!"  # 3*PART + 1
    upload = api("POST", "/upload/multipart", json={"name": "edge.bin", "size": len(data),
                                                    "part_size": PART, "project": PROJECT}).json()
    cuts = [(0, PART), (PART, 2 * PART), (2 * PART, len(data)), (len(data), len(data))]
    for number, (start, end) in enumerate(cuts, start=1):
        api.put_part(upload["upload_id"], number, data[start:end])
    done = api("POST", f"/upload/multipart/{upload['upload_id']}/complete")
    url = api("GET", f"/files/{done.json()['id']}/download_info").json()["url"]

    assert done.status_code == 200 and done.json()["size"] == len(data)
    assert requests.get(url, timeout=5).content == data


def test_the_server_raises_a_too_small_part_size_and_a_same_name_file_needs_overwrite(api):
    name = f"twice-{uuid.uuid4().hex[:6]}.bin"
    first = api.upload(b"one", name=name)
    init = api("POST", "/upload/multipart", json={"name": name, "size": 10, "part_size": 1, "project": PROJECT})
    overwrite = api("POST", "/upload/multipart", params={"overwrite": "True"},
                    json={"name": name, "size": 10, "part_size": 1, "project": PROJECT})

    assert_platform_error(init, 409, 8004)
    assert overwrite.status_code == 201 and overwrite.json()["part_size"] == PART
    assert first["size"] == 3


def test_a_storage_url_with_a_bad_signature_is_refused_in_s3s_xml(api):
    upload = api("POST", "/upload/multipart", json={"name": "sig.bin", "size": 4, "part_size": PART,
                                                    "project": PROJECT}).json()
    url = api("GET", f"/upload/multipart/{upload['upload_id']}/part/1").json()["url"]
    forged = re.sub(r"X-Signature=[0-9a-f]+", "X-Signature=" + "0" * 64, url)
    refused = requests.put(forged, data=b"data", timeout=5)

    assert refused.status_code == 403
    assert "<Code>AccessDenied</Code>" in refused.text


# Downloads with Range.
@pytest.fixture
def stored(api):
    data = bytes(range(256)) * 4
    record = api.upload(data)
    return data, api("GET", f"/files/{record['id']}/download_info").json()["url"]


def test_a_download_url_serves_ranges_with_206_clamped_past_the_end(stored):
    data, url = stored
    whole = requests.get(url, timeout=5)
    middle = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=5)
    past_end = requests.get(url, headers={"Range": f"bytes=1000-{10 * len(data)}"}, timeout=5)
    beyond = requests.get(url, headers={"Range": f"bytes={len(data)}-{len(data) + 10}"}, timeout=5)

    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Content-Length"] == str(len(data))
    assert middle.status_code == 206 and middle.content == data[10:20]
    assert middle.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert past_end.status_code == 206 and past_end.content == data[1000:]
    assert past_end.headers["Content-Range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    assert beyond.status_code == 416


def test_the_ignore_range_and_short_download_faults_misbehave_as_named(api, stored):
    data, url = stored
    add_fault(api.emulator, kind="ignore_range", count=1)
    ignored = requests.get(url, headers={"Range": "bytes=0-9"}, timeout=5)
    add_fault(api.emulator, kind="short_download", count=1)
    short = requests.get(url, timeout=5)

    assert ignored.status_code == 200 and ignored.content == data
    assert short.status_code == 200 and short.content == data[:-1]
    assert short.headers["Content-Length"] == str(len(data) - 1)


# Tasks.
def _task(api, app="gensvc-demo/apps/vcf-score", action="run", record=None):
    record = record or api.upload(VCF.encode())
    created = api("POST", "/tasks", params={"action": action} if action else None,
                  json={"name": "raw", "project": PROJECT, "app": app, "description": None,
                        "inputs": {"input_vcf": {"class": "File", "path": record["id"]}}})
    assert created.status_code == 201, created.text
    return created.json()


def _statuses_until_end(api, task):
    seen = [task["status"]]
    while seen[-1] not in ("COMPLETED", "FAILED", "ABORTED"):
        status = api("GET", task["href"]).json()["status"]
        if status != seen[-1]:
            seen.append(status)
        time.sleep(0.01)
    return seen


def test_a_task_moves_from_draft_through_queued_and_running_to_completed(api):
    draft = _task(api, action=None)
    run = api("POST", f"/tasks/{draft['id']}/actions/run", data="null")
    seen = _statuses_until_end(api, run.json())
    done = api("GET", draft["href"]).json()
    output = api("GET", f"/files/{done['outputs']['annotated_vcf']['path']}", params={"fields": "_all"}).json()

    assert draft["status"] == "DRAFT" and draft["start_time"] is None
    assert seen == ["QUEUED", "RUNNING", "COMPLETED"]
    assert DATETIME.match(done["end_time"]) and DATETIME.match(done["start_time"])
    assert output["origin"] == {"task": draft["id"]} and output["project"] == PROJECT
    assert_platform_error(api("POST", f"/tasks/{draft['id']}/actions/run"), 400, 7007)


def test_the_scoring_app_is_deterministic_across_tasks(api):
    record = api.upload(VCF.encode())
    outputs = []
    for _ in range(2):
        task = _task(api, record=record)
        _statuses_until_end(api, task)
        path = api("GET", task["href"]).json()["outputs"]["annotated_vcf"]["path"]
        url = api("GET", f"/files/{path}/download_info").json()["url"]
        outputs.append(requests.get(url, timeout=5).text)

    assert outputs[0] == outputs[1] and "CAV_SCORE=" in outputs[0]


def test_a_non_vcf_input_fails_the_task_with_the_reason_in_its_log(api):
    task = _task(api, record=api.upload(b"just some text\n"))
    assert _statuses_until_end(api, task)[-1] == "FAILED"
    details = api("GET", f"/tasks/{task['id']}/execution_details").json()
    log_info = details["jobs"][-1]["logs"]["job.err.log"]
    log_url = api("GET", log_info).json()["url"]

    assert details["status"] == "FAILED" and details["jobs"][-1]["status"] == "FAILED"
    assert "not a VCF" in requests.get(log_url, timeout=5).text


def test_the_task_fail_fault_fails_the_next_run_with_its_message(api):
    add_fault(api.emulator, kind="task_fail", count=1, message="out of disk")
    failed = _task(api)
    assert _statuses_until_end(api, failed)[-1] == "FAILED"
    details = api("GET", f"/tasks/{failed['id']}/execution_details").json()

    assert "out of disk" in details["message"]
    assert _statuses_until_end(api, _task(api))[-1] == "COMPLETED"  # the fault is spent


def test_abort_is_refused_for_a_finished_task_and_a_draft(api):
    draft = _task(api, action=None)
    task = _task(api)
    _statuses_until_end(api, task)

    assert_platform_error(api("POST", f"/tasks/{task['id']}/actions/abort"), 400, 7011)
    assert_platform_error(api("POST", f"/tasks/{draft['id']}/actions/abort"), 400, 7011)


def test_a_task_with_errors_stays_draft_and_cannot_be_run(api):
    created = api("POST", "/tasks", params={"action": "run"},
                  json={"project": PROJECT, "app": "gensvc-demo/apps/vcf-score",
                        "inputs": {"input_vcf": {"class": "File", "path": "0" * 24}, "colour": "red"}})
    task = created.json()

    assert created.status_code == 201 and task["status"] == "DRAFT"
    assert sorted(error["input"] for error in task["errors"]) == ["colour", "input_vcf"]
    assert_platform_error(api("POST", f"/tasks/{task['id']}/actions/run"), 400, 7024)


# Faults through the shared framework.
def test_the_maintenance_fault_answers_the_platforms_503_code_0_in_json(api):
    add_fault(api.emulator, kind="maintenance", path="/v2/user", count=1)
    down = api("GET", "/user")

    assert_platform_error(down, 503, 0)
    assert api("GET", "/user").status_code == 200


def test_standard_faults_apply_to_api_and_storage_paths(api, stored):
    _, url = stored
    add_fault(api.emulator, kind="status", status=502, path="/storage/*", count=1, body="<html>bad gateway</html>")
    add_fault(api.emulator, kind="drop", path="/v2/projects*", count=1)
    gateway = requests.get(url, timeout=5)
    with pytest.raises(requests.ConnectionError):
        api("GET", "/projects")

    assert gateway.status_code == 502 and "bad gateway" in gateway.text
    assert api("GET", "/projects").status_code == 200
    assert requests.get(f"{api.emulator.root}/_emulator/stats", timeout=5).json()["by_status"]["drop"] >= 1


def test_gensvc_emulate_cavatica_serves_the_v2_base_path():
    process = subprocess.Popen([sys.executable, "-m", "gensvc.emulators", "cavatica", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = json.loads(process.stdout.readline())
        answer = requests.get(line["url"] + "/user", headers={"X-SBG-Auth-Token": "cavatica-demo-token"},
                              timeout=5)
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert line["service"] == "cavatica" and line["url"].endswith("/v2")
    assert answer.status_code == 200


def test_the_split_app_takes_a_list_of_files_and_outputs_a_list(api):
    first = api.upload((VCF + "chr2\t5\t.\tT\tC\t.\tPASS\t.\n").encode(), name="one.vcf")
    second = api.upload(VCF.encode(), name="two.vcf")
    created = api("POST", "/tasks", params={"action": "run"},
                  json={"project": PROJECT, "app": "gensvc-demo/apps/vcf-split",
                        "inputs": {"input_vcfs": [{"class": "File", "path": first["id"]},
                                                  {"class": "File", "path": second["id"]}]}})
    assert _statuses_until_end(api, created.json())[-1] == "COMPLETED"
    outputs = api("GET", created.json()["href"]).json()["outputs"]["chromosome_vcfs"]
    raw = api("GET", "/apps/gensvc-demo/apps/vcf-split/raw").json()

    assert [item["name"] for item in outputs] == ["one.chr1.vcf", "one.chr2.vcf", "two.chr1.vcf"]
    assert all(item["class"] == "File" for item in outputs)
    assert raw["outputs"] == [{"id": "chromosome_vcfs", "type": ["null", "File[]"]}]
