"""The official client, sevenbridges-python 2.11.2, unchanged, drives the CAVATICA emulator
over loopback HTTP (pointed at it through SB_API_ENDPOINT / SB_AUTH_TOKEN, as a user
would): listing, querying, multipart upload, tasks, downloads, rate-limit reads."""

from __future__ import annotations

import os
import uuid
from datetime import datetime

import pytest
import requests

sbg = pytest.importorskip("sevenbridges")
from sevenbridges.errors import BadRequest, NotFound, TaskValidationError, TooManyRequests  # noqa: E402

from gensvc.emulators import start_emulator  # noqa: E402
from gensvc.emulators.cavatica_apps import variant_score  # noqa: E402

TOKEN = "sbg-test-token"
PROJECT = "gensvc-demo/demo-project"
SCORE_APP = "gensvc-demo/apps/vcf-score"
PART = 1024  # the test emulator's smallest part, so multipart needs only kilobytes

VCF = ("##fileformat=VCFv4.2\n"
       "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       "chr1\t100\t.\tA\tG,T\t.\tPASS\tDP=3\n"
       "chr2\t200\trs1\tC\tG\t50\tPASS\t.\n")


@pytest.fixture(scope="module")
def cavatica():
    with start_emulator("cavatica", tokens=[TOKEN], time_scale=0.005,
                        min_part_size=PART, rate_limit=(100_000, 300)) as emulator:
        yield emulator


@pytest.fixture
def api(cavatica, monkeypatch, tmp_path):
    monkeypatch.setenv("SB_API_ENDPOINT", cavatica.url)
    monkeypatch.setenv("SB_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.sevenbridges/credentials of the user's
    requests.delete(f"{cavatica.root}/_emulator/faults", timeout=5).raise_for_status()
    client = sbg.Api()
    yield client
    requests.delete(f"{cavatica.root}/_emulator/faults", timeout=5)


def upload(api, path, **kwargs):
    transfer = api.files.upload(str(path), project=kwargs.pop("project", PROJECT), wait=True, **kwargs)
    assert transfer.status == "COMPLETED"
    return transfer.result()


@pytest.fixture
def vcf_file(api, tmp_path):
    path = tmp_path / f"sample-{uuid.uuid4().hex[:8]}.vcf"
    path.write_text(VCF)
    return upload(api, path)


def test_the_official_client_lists_projects_with_their_type_and_dates(api):
    projects = {project.id: project for project in api.projects.query().all()}

    assert PROJECT in projects
    assert projects[PROJECT].type == "v2"
    assert isinstance(projects[PROJECT].created_on, datetime)
    assert [p.id for p in api.projects.query(owner="gensvc-demo").all()] == list(projects)


def test_the_official_client_lists_apps_and_reads_one_revision(api):
    apps = {app.id: app for app in api.apps.query().all()}

    assert apps[SCORE_APP].revision == 1
    assert api.apps.get(f"{SCORE_APP}/0").revision == 0
    assert {item["id"] for item in apps[SCORE_APP].raw["inputs"]} == {"input_vcf", "tier_threshold"}


def test_the_official_client_uploads_by_multipart_and_downloads_the_same_bytes(api, tmp_path):
    data = os.urandom(5 * PART + 300)
    source = tmp_path / "blob.bin"
    source.write_bytes(data)

    record = upload(api, source, part_size=PART)
    record.download(str(tmp_path / "blob.out"))

    assert record.size == len(data)
    assert (tmp_path / "blob.out").read_bytes() == data


def test_a_file_of_whole_parts_plus_one_byte_uploads_despite_the_clients_empty_last_part(api, tmp_path):
    # sevenbridges-python cuts 3*PART+1 bytes into PART, PART, PART+1 and 0 bytes.
    data = os.urandom(3 * PART + 1)
    source = tmp_path / "edge.bin"
    source.write_bytes(data)

    record = upload(api, source, part_size=PART)
    record.download(str(tmp_path / "edge.out"))

    assert (tmp_path / "edge.out").read_bytes() == data


def test_the_official_client_queries_files_by_name_metadata_and_tag_across_pages(api, tmp_path):
    folder = api.files.create_folder(name=f"batch-{uuid.uuid4().hex[:8]}", project=PROJECT)
    names = [f"f{n}.txt" for n in range(5)]
    for n, name in enumerate(names):
        (tmp_path / name).write_text(name)
        record = api.files.upload(str(tmp_path / name), parent=folder.id, wait=True).result()
        record.metadata["sample_id"] = "odd" if n % 2 else "even"
        record.tags = ["kept"] if n < 2 else []
        record.save()

    first_page = api.files.query(parent=folder.id, limit=2)
    everything = list(first_page.all())
    by_metadata = api.files.query(parent=folder.id, metadata={"sample_id": "odd"}, limit=100)
    by_tag = api.files.query(parent=folder.id, tags=["kept"])
    by_name = api.files.query(parent=folder.id, names=["f3.txt"])

    assert len(first_page) == 2 and first_page.total == 5
    assert sorted(f.name for f in everything) == names
    assert sorted(f.name for f in by_metadata) == ["f1.txt", "f3.txt"]
    assert sorted(f.name for f in by_tag) == ["f0.txt", "f1.txt"]
    assert [f.name for f in by_name] == ["f3.txt"]
    assert by_name[0].metadata["sample_id"] == "odd"


def test_a_task_created_with_run_moves_to_completed_and_its_output_is_a_scored_vcf(api, vcf_file, tmp_path):
    task = api.tasks.create(name="score", project=PROJECT, app=SCORE_APP,
                            inputs={"input_vcf": vcf_file, "tier_threshold": 0.4}, run=True)
    assert task.status in ("QUEUED", "RUNNING")
    uuid.UUID(task.id)  # the client validated it too

    task.wait(period=0.02)
    output = task.outputs["annotated_vcf"]
    output.download(str(tmp_path / "scored.vcf"))
    scored = (tmp_path / "scored.vcf").read_text()
    from_query = list(api.files.query(project=PROJECT, origin={"task": task.id}))

    assert task.status == "COMPLETED"
    assert task.app == f"{SCORE_APP}/1"
    expected = [variant_score("chr1", "100", "A", alt) for alt in ("G", "T")]
    assert f"DP=3;CAV_SCORE={expected[0]:.4f},{expected[1]:.4f};CAV_TIER=" in scored
    assert "##INFO=<ID=CAV_SCORE,Number=A,Type=Float" in scored
    assert [f.id for f in from_query] == [output.id]


def test_a_draft_task_runs_when_told_to_and_an_older_revision_writes_no_tier(api, vcf_file, tmp_path):
    # The revision goes in the app id: the client drops `revision=0` (`if revision:`).
    task = api.tasks.create(name="draft", project=PROJECT, app=f"{SCORE_APP}/0",
                            inputs={"input_vcf": vcf_file})
    assert task.status == "DRAFT"

    task.run()
    task.wait(period=0.02)
    task.outputs["annotated_vcf"].download(str(tmp_path / "rev0.vcf"))

    assert task.status == "COMPLETED" and task.app == f"{SCORE_APP}/0"
    assert "CAV_SCORE=" in (tmp_path / "rev0.vcf").read_text()
    assert "CAV_TIER" not in (tmp_path / "rev0.vcf").read_text()


def test_a_task_with_a_missing_input_raises_the_clients_validation_error(api):
    with pytest.raises(TaskValidationError) as raised:
        api.tasks.create(name="no input", project=PROJECT, app=SCORE_APP, inputs={}, run=True)

    assert raised.value.task.status == "DRAFT"
    assert [error["input"] for error in raised.value.task.errors] == ["input_vcf"]


def test_an_aborted_task_passes_through_aborting_to_aborted(api, vcf_file):
    task = api.tasks.create(name="abort me", project=PROJECT, app=SCORE_APP,
                            inputs={"input_vcf": vcf_file}, run=True)

    task.abort()
    assert task.status == "ABORTING"
    task.wait(period=0.02)

    assert task.status == "ABORTED"
    assert dict(task.outputs or {}) == {}
    with pytest.raises(BadRequest):
        task.abort()  # a finished task cannot be aborted again


def test_a_failing_app_leaves_execution_details_naming_the_failed_job_and_its_log(api, vcf_file, tmp_path):
    task = api.tasks.create(name="fails", project=PROJECT, app="gensvc-demo/apps/failing-step",
                            inputs={"input_vcf": vcf_file}, run=True)
    task.wait(period=0.02)

    details = task.get_execution_details()
    failed = [job for job in details.jobs if job.status == "FAILED"]
    failed[0].logs["job.err.log"].download(str(tmp_path / "job.log"))

    assert task.status == "FAILED"
    assert [job.name for job in failed] == ["crash-step"]
    assert "crash-step" in details.message
    assert "ERROR: crash-step" in (tmp_path / "job.log").read_text()


def test_the_official_client_reads_the_rate_limit(api):
    api.users.me()

    rate = api.rate_limit.get().rate

    assert api.limit == 100_000
    assert 0 < api.remaining < 100_000
    assert rate.limit == 100_000 and rate.remaining == api.remaining
    assert api.reset_time > datetime.fromtimestamp(0)


def test_the_official_client_sees_the_platforms_errors(api):
    with pytest.raises(NotFound) as raised:
        api.files.get("0123456789abcdef01234567")

    assert raised.value.code == 5002
    assert raised.value.message == "Requested file does not exist."


def test_a_list_of_input_files_gives_a_list_of_output_files_the_client_can_download(api, vcf_file, tmp_path):
    task = api.tasks.create(name="split", project=PROJECT, app="gensvc-demo/apps/vcf-split",
                            inputs={"input_vcfs": [vcf_file]}, run=True)
    task.wait(period=0.02)
    outputs = task.outputs["chromosome_vcfs"]
    (tmp_path / "out").mkdir()
    for output in outputs:
        output.download(str(tmp_path / "out" / output.name))

    assert task.status == "COMPLETED"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(o.name for o in outputs)
    assert len(outputs) == 2 and all(o.name.endswith((".chr1.vcf", ".chr2.vcf")) for o in outputs)
    assert all((tmp_path / "out" / o.name).read_text().startswith("##fileformat=VCFv4.2") for o in outputs)


def test_the_official_client_raises_too_many_requests_with_code_1000_once_the_budget_is_spent(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    with start_emulator("cavatica", tokens=[TOKEN], rate_limit=(2, 300)) as emulator:
        monkeypatch.setenv("SB_API_ENDPOINT", emulator.url)
        monkeypatch.setenv("SB_AUTH_TOKEN", TOKEN)
        client = sbg.Api()
        client.users.me()
        client.users.me()
        with pytest.raises(TooManyRequests) as raised:
            client.users.me()

        assert raised.value.code == 1000
        assert client.remaining == 0  # GET /rate_limit still answers
