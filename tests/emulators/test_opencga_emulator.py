"""The OpenCGA emulator against contracts.md section 4 and CLIENT-FACTS.md, over raw HTTP on
loopback with requests: the envelope and its Content-Type, login and JWT-shaped tokens
(expiry, rotation, every issued token valid), the catalog searches and their paging totals,
uploads, index jobs on the clock (DONE and ERROR), the variant query's filters and
MAX_LIMIT, OpenCGA's errors answered with HTTP 200, and faults."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time

import pytest
import requests

from gensvc.emulators import EMULATORS, start_emulator
from gensvc.emulators.opencga import MAX_LIMIT, NO_FILE_MESSAGE

USER, PASSWORD = "tester", "secret-pass"
TIME_SCALE = 0.005  # a 60 s index job takes 0.3 s
REST = "webservices/rest/v2/"


def vcf_text(rows: int, samples: int = 1, start: int = 7661779, chrom: str = "17") -> str:
    names = "\t".join(f"S{n}" for n in range(1, samples + 1))
    lines = ["##fileformat=VCFv4.2", f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{names}"]
    for i in range(rows):
        calls = "\t".join("0/1" if (i + n) % 2 == 0 else "0/0" for n in range(samples))
        lines.append(f"{chrom}\t{start + 3 * i}\t.\tA\tG\t50\tPASS\t.\tGT\t{calls}")
    return "\n".join(lines) + "\n"


MIXED_VCF = (
    "##fileformat=VCFv4.2\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tNORMAL\tTUMOUR\n"
    "1\t11785743\trs1\tT\tC,G\t51\tPASS\tDP=27\tGT\t1/2\t0/0\n"      # MTHFR, split in two
    "17\t7668029\t.\tGTT\tGT\t52\tPASS\tDP=42\tGT\t0/0\t0/1\n"       # TP53 deletion
    "17\t7675088\t.\tTC\tAG\t89\tPASS\tDP=40\tGT\t0/1\t0/1\n"        # TP53 MNV
    "22\t19950000\t.\tA\tAGGG\t60\tPASS\t.\tGT\t0/1\t0/0\n"          # COMT insertion
    "chrX\t154900000\t.\tC\tT\t70\tPASS\t.\tGT\t0/0\t1/1\n"          # F8 SNV
)
BAD_VCF = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t100\t.\tA\tG\t.\t.\t.\n1\tten\t.\tA\tG\t.\t.\t.\n"


@pytest.fixture(scope="module")
def opencga():
    with start_emulator("opencga", tokens=[f"{USER}:{PASSWORD}", "other:pw"],
                        time_scale=TIME_SCALE) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def no_faults(opencga):
    opencga.clear_faults()
    yield
    opencga.clear_faults()


class Api:
    """Raw calls to one emulator with a logged-in token."""

    def __init__(self, emulator, user: str = USER, password: str = PASSWORD):
        self.base = emulator.url + REST
        tokens = self.login({"user": user, "password": password}).json()["responses"][0]["results"][0]
        self.token, self.refresh_token = tokens["token"], tokens["refreshToken"]

    def login(self, body: dict) -> requests.Response:
        return requests.post(self.base + "users/login", json=body, timeout=30)

    def headers(self, token: str | None = None) -> dict:
        return {"Authorization": f"Bearer {token or self.token}"}

    def get(self, path: str, token: str | None = None, **params) -> requests.Response:
        return requests.get(self.base + path, params=params, headers=self.headers(token), timeout=30)

    def post(self, path: str, body=None, **params) -> requests.Response:
        return requests.post(self.base + path, params=params, json=body, headers=self.headers(), timeout=30)

    def result(self, response: requests.Response) -> dict:
        assert response.status_code == 200, response.text
        return response.json()["responses"][0]

    def upload(self, name: str, text: str | bytes, study: str = "demo", folder: str = "data/",
               **fields) -> requests.Response:
        data = {"study": study, "name": name, "relativeFilePath": folder, "parents": "true", **fields}
        body = text.encode() if isinstance(text, str) else text
        return requests.post(self.base + "files/upload", headers=self.headers(), data=data,
                             files={"file": (f"/home/me/{name}", body, "application/octet-stream")},
                             timeout=30)

    def new_study(self, study_id: str) -> str:
        self.result(self.post("studies/create", {"id": study_id, "name": study_id}, project="demo"))
        return f"gensvc@demo:{study_id}"

    def index(self, study: str, file_id: str, job_id: str) -> dict:
        return self.result(self.post("operation/variant/index", {"file": file_id}, study=study,
                                     jobId=job_id))["results"][0]

    def wait(self, study: str, job_id: str) -> dict:
        deadline = time.monotonic() + 30
        while True:
            job = self.result(self.get(f"jobs/{job_id}/info", study=study))["results"][0]
            if job["internal"]["status"]["id"] not in ("PENDING", "QUEUED", "RUNNING"):
                return job
            assert time.monotonic() < deadline, "the index job never ended"
            time.sleep(0.02)


@pytest.fixture(scope="module")
def api(opencga):
    return Api(opencga)


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def error_event(response: requests.Response) -> dict:
    body = response.json()
    assert response.headers["Content-Type"] == "application/json"
    assert body["responses"] and body["responses"][0]["numResults"] == 0
    (event,) = body["events"]
    assert event["type"] == "ERROR" and event["message"] == event["description"]
    return event


def test_opencga_is_registered_with_the_other_emulators():
    assert EMULATORS["opencga"] == "gensvc.emulators.opencga"


def test_the_host_answers_head_and_meta_about_says_a_5_x_version_in_the_full_envelope(opencga):
    head = requests.head(opencga.url.rstrip("/"), timeout=10)
    assert head.status_code == 302 and head.headers["Location"].endswith("/opencga/")
    assert requests.get(opencga.url, timeout=10).status_code == 200
    answer = requests.get(opencga.url + REST + "meta/about", params={"skip": 0, "limit": 1000}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"  # exactly: pyopencga demands it
    body = answer.json()
    assert {"apiVersion", "time", "events", "params", "type", "responses"} <= set(body)
    assert body["apiVersion"] == "v2" and body["type"] == "QUERY"
    assert body["params"] == {"skip": "0", "limit": "1000"}
    (first,) = body["responses"]
    assert {"time", "events", "numResults", "results", "resultType", "numTotalResults", "numMatches",
            "numInserted", "numUpdated", "numDeleted", "attributes"} <= set(first)
    assert first["results"][0]["Version"].startswith("5.")


def test_login_gives_jwt_shaped_tokens_whose_exp_a_client_can_read(opencga, api):
    access, refresh = claims(api.token), claims(api.refresh_token)
    assert access["sub"] == USER and access["typ"] == "access"
    assert access["exp"] > time.time() and refresh["exp"] > access["exp"]
    assert api.result(api.get("projects/search"))["results"][0]["fqn"] == "gensvc@demo"


def test_a_wrong_password_is_401_in_the_error_envelope_and_mixing_password_and_refresh_is_refused(api):
    wrong = api.login({"user": USER, "password": "nope"})
    assert wrong.status_code == 401
    event = error_event(wrong)
    assert event["name"] == "CatalogAuthenticationException"
    assert event["message"] == "Incorrect user or password."
    mixed = api.login({"user": USER, "password": PASSWORD, "refreshToken": api.refresh_token})
    assert mixed.status_code == 500
    assert "refreshToken" in error_event(mixed)["message"]


def test_refresh_tokens_rotate_and_every_issued_access_token_stays_valid(api):
    first = api.login({"refreshToken": api.refresh_token}).json()["responses"][0]["results"][0]
    second = api.login({"refreshToken": first["refreshToken"]}).json()["responses"][0]["results"][0]
    assert len({api.refresh_token, first["refreshToken"], second["refreshToken"]}) == 3
    assert len({api.token, first["token"], second["token"]}) == 3
    for token in (api.token, first["token"], second["token"]):  # pyopencga's sub-clients keep old ones
        assert api.get("studies/search", token=token, project="demo").status_code == 200


def test_a_refresh_token_is_no_access_token_and_an_access_token_cannot_refresh(api):
    assert api.get("projects/search", token=api.refresh_token).status_code == 401
    refused = api.login({"refreshToken": api.token})
    assert refused.status_code == 401
    assert error_event(refused)["message"].startswith("Invalid authentication token")


def test_a_tampered_token_is_401_and_no_token_is_403(api):
    head, body, signature = api.token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**claims(api.token), "sub": "other"}).encode()).decode().rstrip("=")
    answer = api.get("projects/search", token=f"{head}.{forged}.{signature}")
    assert answer.status_code == 401
    assert error_event(answer)["name"] == "CatalogAuthenticationException"
    anonymous = requests.get(api.base + "projects/search", timeout=10)
    assert anonymous.status_code == 403
    assert error_event(anonymous)["name"] == "CatalogAuthorizationException"
    assert api.get("projects/search", token="not-a-jwt").status_code == 401


def test_tokens_expire_on_the_time_scale_and_a_refresh_brings_a_working_one():
    # 3600 s tokens at this scale live 0.36 s; refresh tokens 86400 s live 8.6 s
    with start_emulator("opencga", tokens=[f"{USER}:{PASSWORD}"], time_scale=0.0001) as emulator:
        api = Api(emulator)
        assert claims(api.token)["exp"] - time.time() < 1
        while time.time() < claims(api.token)["exp"]:
            time.sleep(0.05)
        expired = api.get("projects/search")
        assert expired.status_code == 401
        assert error_event(expired)["message"].startswith("Authentication token is expired")
        fresh = api.login({"refreshToken": api.refresh_token}).json()["responses"][0]["results"][0]
        assert api.get("projects/search", token=fresh["token"]).status_code == 200


def test_the_token_may_come_as_the_sid_parameter_and_is_never_echoed_in_params(api):
    answer = requests.get(api.base + "projects/search", params={"sid": api.token}, timeout=10)
    assert answer.status_code == 200
    assert "sid" not in answer.json()["params"]


def test_an_upload_without_a_file_part_answers_http_200_with_an_error_and_no_envelope(api):
    answer = requests.post(api.base + "files/upload", headers=api.headers(),
                           data={"study": "demo", "name": "x.vcf", "relativeFilePath": "data/"}, timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"error": NO_FILE_MESSAGE}


def test_the_error_200_fault_answers_any_path_with_http_200_and_an_error(opencga, api):
    opencga.add_faults({"path": "*/jobs/search", "kind": "error_200", "message": "Job manager down", "count": 1})
    answer = api.get("jobs/search", study="demo")
    assert answer.status_code == 200 and answer.json() == {"error": "Job manager down"}
    assert api.get("jobs/search", study="demo").json()["responses"][0]["numResults"] >= 0


def test_an_upload_is_stored_with_its_folder_format_and_samples_and_downloads_byte_for_byte(api):
    study = api.new_study("uploads")
    answer = api.upload("mixed.vcf", MIXED_VCF, study=study, folder="deep/er/")
    record = answer.json()["responses"][0]["results"][0]
    assert record["id"] == "deep:er:mixed.vcf" and record["path"] == "deep/er/mixed.vcf"
    assert record["name"] == "mixed.vcf"  # the name field, not the client's local path
    assert (record["format"], record["bioformat"], record["size"]) == ("VCF", "VARIANT", len(MIXED_VCF))
    assert record["sampleIds"] == ["NORMAL", "TUMOUR"]
    folders = api.result(api.get("files/search", study=study, type="DIRECTORY"))["results"]
    assert {"deep/", "deep/er/"} <= {f["path"] for f in folders}
    download = api.get("files/deep:er:mixed.vcf/download", study=study)
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.content == MIXED_VCF.encode()
    found = api.result(api.get("files/search", study=study, name="mixed.vcf", count="true"))
    assert found["numMatches"] == 1 and found["results"][0]["id"] == "deep:er:mixed.vcf"


def test_an_upload_refuses_a_folder_without_a_slash_a_missing_parent_and_a_second_copy(api):
    study = api.new_study("refusals")
    no_slash = api.upload("a.vcf", MIXED_VCF, study=study, folder="data")
    assert no_slash.status_code == 500 and "must end with '/'" in error_event(no_slash)["message"]
    no_parent = api.upload("a.vcf", MIXED_VCF, study=study, folder="missing/", parents="false")
    assert no_parent.status_code == 500 and "not found" in error_event(no_parent)["message"]
    assert api.upload("a.vcf", MIXED_VCF, study=study).status_code == 200
    again = api.upload("a.vcf", MIXED_VCF, study=study)
    assert again.status_code == 500 and "already exists" in error_event(again)["message"]


def test_searches_page_with_skip_and_limit_and_count_gives_num_matches(api):
    study = api.new_study("paging")
    api.upload("thirty.vcf", vcf_text(2, samples=30), study=study)
    page = api.result(api.get("samples/search", study=study, skip=20, limit=8, count="true"))
    assert page["numResults"] == 8 and page["numMatches"] == 30
    assert [s["id"] for s in page["results"]] == [f"S{n}" for n in range(21, 29)]
    assert api.result(api.get("samples/search", study=study))["numResults"] == 10  # default limit
    assert api.result(api.get("samples/search", study=study, skip=25))["numMatches"] == -1  # no count
    assert api.result(api.get("samples/search", study=study, id="S3,S7"))["numResults"] == 2
    bad = api.get("samples/search", study=study, limit="many")
    assert bad.status_code == 400


def test_individuals_are_created_linked_to_samples_and_searched(api):
    study = api.new_study("people")
    api.upload("pair.vcf", MIXED_VCF, study=study)
    api.result(api.post("individuals/create", {"id": "P1", "sex": {"id": "FEMALE"}, "samples": ["TUMOUR"]}, study=study))
    api.result(api.post("individuals/create", {"id": "P2"}, study=study))
    found = api.result(api.get("individuals/search", study=study, sex="FEMALE", count="true"))
    assert found["numMatches"] == 1 and found["results"][0]["samples"][0]["id"] == "TUMOUR"
    sample = api.result(api.get("samples/TUMOUR/info", study=study))["results"][0]
    assert sample["individualId"] == "P1"
    both = api.get("individuals/P1,P2/info", study=study).json()["responses"]
    assert [r["results"][0]["id"] for r in both] == ["P1", "P2"]  # one result per id


def test_an_index_job_moves_pending_queued_running_done_and_only_then_are_its_variants_queryable(api):
    study = api.new_study("progress")
    api.upload("mixed.vcf", MIXED_VCF, study=study)
    job = api.index(study, "data:mixed.vcf", "job-progress")
    assert job["id"] == "job-progress" and job["study"]["id"] == study
    assert job["internal"]["status"]["id"] == "PENDING"
    seen, file_states = ["PENDING"], []
    before = api.result(api.get("analysis/variant/query", study=study, count="true"))
    assert before["numMatches"] == 0
    deadline = time.monotonic() + 30
    while seen[-1] != "DONE":
        assert time.monotonic() < deadline
        status = api.result(api.get("jobs/job-progress/info", study=study))["results"][0]["internal"]["status"]
        if status["id"] != seen[-1]:
            seen.append(status["id"])
            if status["id"] == "RUNNING":
                running = api.result(api.get("files/data:mixed.vcf/info", study=study))["results"][0]
                file_states.append(running["internal"]["variant"]["index"]["status"]["id"])
        time.sleep(0.005)
    assert seen == ["PENDING", "QUEUED", "RUNNING", "DONE"]
    assert file_states == ["INDEXING"]
    after = api.result(api.get("analysis/variant/query", study=study, count="true"))
    assert after["numMatches"] == 6  # five lines, one of them with two ALT alleles
    record = api.result(api.get("files/data:mixed.vcf/info", study=study))["results"][0]
    assert record["internal"]["variant"]["index"]["status"]["id"] == "READY"
    listed = api.result(api.get("jobs/search", study=study, status="DONE", count="true"))
    assert listed["numMatches"] == 1 and listed["results"][0]["id"] == "job-progress"


def test_a_bad_vcf_ends_its_job_in_error_with_the_reason_and_a_log(api):
    study = api.new_study("broken")
    api.upload("bad.vcf", BAD_VCF, study=study)
    api.index(study, "data:bad.vcf", "job-bad")
    job = api.wait(study, "job-bad")
    status = job["internal"]["status"]
    assert status["id"] == "ERROR"
    assert "line 4" in status["description"] and "POS 'ten'" in status["description"]
    log = api.result(api.get("jobs/job-bad/log/tail", study=study, lines=5, type="stderr"))["results"][0]
    assert "POS 'ten'" in log["content"]
    assert api.result(api.get("analysis/variant/query", study=study, count="true"))["numMatches"] == 0


def test_the_index_error_fault_fails_a_good_job_with_its_message(opencga, api):
    study = api.new_study("faulted")
    api.upload("good.vcf", MIXED_VCF, study=study)
    opencga.add_faults({"path": "*/operation/variant/index", "kind": "index_error",
                        "message": "HBase region server gone", "count": 1})
    api.index(study, "data:good.vcf", "job-faulted")
    status = api.wait(study, "job-faulted")["internal"]["status"]
    assert (status["id"], status["description"]) == ("ERROR", "HBase region server gone")


def test_a_bgzipped_vcf_uploads_indexes_and_queries_like_a_plain_one(api, tmp_path):
    pysam = pytest.importorskip("pysam")
    plain = tmp_path / "mixed.vcf"
    plain.write_text(MIXED_VCF)
    pysam.tabix_compress(str(plain), str(tmp_path / "mixed.vcf.gz"))
    study = api.new_study("bgzip")
    record = api.result(api.upload("mixed.vcf.gz", (tmp_path / "mixed.vcf.gz").read_bytes(), study=study))["results"][0]
    assert (record["format"], record["sampleIds"]) == ("VCF", ["NORMAL", "TUMOUR"])
    api.index(study, "data:mixed.vcf.gz", "job-bgzip")
    assert api.wait(study, "job-bgzip")["internal"]["status"]["id"] == "DONE"
    assert api.result(api.get("analysis/variant/query", study=study, count="true"))["numMatches"] == 6


def test_a_body_that_is_not_a_json_object_is_400(api):
    answer = requests.post(api.base + "operation/variant/index", params={"study": "demo"}, json=["x"],
                           headers=api.headers(), timeout=10)
    assert answer.status_code == 400 and "JSON object" in error_event(answer)["message"]


def test_a_killed_job_is_aborted_and_its_file_stays_unindexed(api):
    study = api.new_study("killed")
    api.upload("k.vcf", MIXED_VCF, study=study)
    api.index(study, "data:k.vcf", "job-killed")
    killed = api.result(api.post("jobs/job-killed/kill", study=study))["results"][0]
    assert killed["internal"]["status"]["id"] == "ABORTED" and killed["internal"]["killJobRequested"]
    assert api.wait(study, "job-killed")["internal"]["status"]["id"] == "ABORTED"
    again = api.post("jobs/job-killed/kill", study=study)
    assert again.status_code == 500 and "already ABORTED" in error_event(again)["message"]
    record = api.result(api.get("files/data:k.vcf/info", study=study))["results"][0]
    assert record["internal"]["variant"]["index"]["status"]["id"] == "NONE"
    assert api.result(api.get("analysis/variant/query", study=study, count="true"))["numMatches"] == 0


def test_indexing_a_file_again_fails_unless_asked_to_reload_and_never_loads_it_twice(api):
    study = api.new_study("reindex")
    api.upload("r.vcf", MIXED_VCF, study=study)
    api.index(study, "data:r.vcf", "job-first")
    assert api.wait(study, "job-first")["internal"]["status"]["id"] == "DONE"
    api.index(study, "data:r.vcf", "job-again")
    failed = api.wait(study, "job-again")["internal"]["status"]
    assert failed["id"] == "ERROR" and "already indexed" in failed["description"]
    api.result(api.post("operation/variant/index", {"file": "data:r.vcf", "forceReload": True},
                        study=study, jobId="job-reload"))
    assert api.wait(study, "job-reload")["internal"]["status"]["id"] == "DONE"
    found = api.result(api.get("analysis/variant/query", study=study, count="true", limit=50))
    assert found["numMatches"] == 6
    assert all(len(v["studies"][0]["files"]) == 1 for v in found["results"])


def test_indexing_an_unknown_file_or_a_job_id_twice_is_refused(api):
    study = api.new_study("twice")
    api.upload("once.vcf", MIXED_VCF, study=study)
    missing = api.post("operation/variant/index", {"file": "data:none.vcf"}, study=study)
    assert missing.status_code == 500 and "not found" in error_event(missing)["message"]
    api.index(study, "data:once.vcf", "job-once")
    again = api.post("operation/variant/index", {"file": "data:once.vcf"}, study=study, jobId="job-once")
    assert again.status_code == 500 and "already exists" in error_event(again)["message"]
    unknown = api.get("jobs/job-none/info", study=study)
    assert unknown.status_code == 500 and "not found" in error_event(unknown)["message"]


@pytest.fixture(scope="module")
def indexed(api):
    """A study with MIXED_VCF indexed."""
    study = api.new_study("filters")
    api.upload("mixed.vcf", MIXED_VCF, study=study)
    api.index(study, "data:mixed.vcf", "job-filters")
    assert api.wait(study, "job-filters")["internal"]["status"]["id"] == "DONE"
    return study


def ids(api, study, **params) -> list[str]:
    return [v["id"] for v in api.result(api.get("analysis/variant/query", study=study, **params))["results"]]


def test_variants_are_split_normalised_and_typed_as_opencga_stores_them(api, indexed):
    variants = api.result(api.get("analysis/variant/query", study=indexed, limit=50))["results"]
    assert [v["id"] for v in variants] == [
        "1:11785743:T:C", "1:11785743:T:G", "17:7668030:T:-", "17:7675088:TC:AG",
        "22:19950001:-:GGG", "chrX:154900000:C:T"]
    assert [v["type"] for v in variants] == ["SNV", "SNV", "INDEL", "MNV", "INDEL", "SNV"]
    first = variants[0]
    assert first["names"] == ["rs1"]
    study = first["studies"][0]
    assert study["studyId"] == indexed and study["files"][0]["fileId"] == "data:mixed.vcf"
    assert study["secondaryAlternates"][0]["alternate"] == "G"
    assert {s["sampleId"]: s["data"][0] for s in study["samples"]} == {"NORMAL": "1/2", "TUMOUR": "0/0"}
    genes = [v["annotation"]["consequenceTypes"][0].get("geneName") for v in variants]
    assert genes == ["MTHFR", "MTHFR", "TP53", "TP53", "COMT", "F8"]  # the shared gene model


def test_the_variant_query_filters_by_region_gene_type_sample_and_annotation(api, indexed):
    assert ids(api, indexed, region="17:7668000-7670000") == ["17:7668030:T:-"]
    assert ids(api, indexed, region="chr17:7675088,X:154899999-154900001") == [
        "17:7675088:TC:AG", "chrX:154900000:C:T"]  # chr prefix or not
    assert ids(api, indexed, gene="TP53,COMT") == ["17:7668030:T:-", "17:7675088:TC:AG", "22:19950001:-:GGG"]
    assert ids(api, indexed, type="INDEL") == ["17:7668030:T:-", "22:19950001:-:GGG"]
    assert ids(api, indexed, sample="TUMOUR") == ["17:7668030:T:-", "17:7675088:TC:AG", "chrX:154900000:C:T"]
    assert ids(api, indexed, sample="NORMAL;TUMOUR") == ["17:7675088:TC:AG"]  # ; is AND
    assert ids(api, indexed, ct="frameshift_variant") == ["17:7668030:T:-"]
    assert ids(api, indexed, biotype="protein_coding", region="22") == ["22:19950001:-:GGG"]
    everything = api.result(api.get("analysis/variant/query", study=indexed, limit=50))["results"]
    gnomad = {v["id"]: next(p["altAlleleFreq"] for p in v["annotation"]["populationFrequencies"]
                            if p["study"] == "GNOMAD_GENOMES") for v in everything}
    rare = ids(api, indexed, populationFrequencyAlt="GNOMAD_GENOMES:ALL<0.1", limit=50)
    assert rare == [key for key, freq in gnomad.items() if freq < 0.1]
    assert ids(api, indexed, id="rs1") == ["1:11785743:T:C", "1:11785743:T:G"]


def test_the_genotype_filter_takes_genotypes_per_sample_and_ands_the_samples(api, indexed):
    assert ids(api, indexed, genotype="TUMOUR:1/1") == ["chrX:154900000:C:T"]
    assert ids(api, indexed, genotype="NORMAL:0/1,1/2") == [
        "1:11785743:T:C", "17:7675088:TC:AG", "22:19950001:-:GGG"]
    assert ids(api, indexed, genotype="NORMAL:0/1;TUMOUR:0/1") == ["17:7675088:TC:AG"]


def test_include_exclude_and_summary_shape_the_results(api, indexed):
    (only,) = api.result(api.get("analysis/variant/query", study=indexed, limit=1,
                                 include="chromosome,annotation.id"))["results"]
    assert only == {"id": "1:11785743:T:C", "chromosome": "1", "annotation": {"id": "1:11785743:T:C"}}
    (lean,) = api.result(api.get("analysis/variant/query", study=indexed, limit=1,
                                 exclude="annotation,studies.files"))["results"]
    assert "annotation" not in lean and "files" not in lean["studies"][0] and lean["studies"][0]["samples"]
    (summary,) = api.result(api.get("analysis/variant/query", study=indexed, limit=1, summary="true"))["results"]
    assert "samples" not in summary["studies"][0] and summary["annotation"]
    (sample,) = api.result(api.get("samples/search", study=indexed, id="NORMAL", include="fileIds"))["results"]
    assert sample == {"id": "NORMAL", "fileIds": ["data:mixed.vcf"]}


def test_bad_variant_filters_are_refused_in_the_error_envelope(api, indexed):
    for params in ({"region": "17:200-100"}, {"type": "WOBBLE"}, {"sample": "NOBODY"},
                   {"genotype": "NORMAL"}, {"genotype": "NOBODY:0/1"},
                   {"populationFrequencyAlt": "GNOMAD<0.1"}):
        answer = api.get("analysis/variant/query", study=indexed, **params)
        assert answer.status_code == 500, params
        assert error_event(answer)["name"] == "VariantQueryException"


def test_the_variant_query_pages_to_the_total_and_cuts_a_limit_above_max_limit(api):
    study = api.new_study("many")
    api.upload("many.vcf", vcf_text(MAX_LIMIT + 300), study=study)
    api.index(study, "data:many.vcf", "job-many")
    assert api.wait(study, "job-many")["internal"]["status"]["id"] == "DONE"
    cut = api.result(api.get("analysis/variant/query", study=study, limit=MAX_LIMIT + 1000, count="true"))
    assert cut["numResults"] == MAX_LIMIT and cut["numMatches"] == MAX_LIMIT + 300
    pages, skip = [], 0
    while True:
        page = api.result(api.get("analysis/variant/query", study=study, skip=skip, limit=1000, count="true"))
        pages += [v["id"] for v in page["results"]]
        if page["numResults"] < 1000:
            break
        skip += 1000
    assert len(pages) == len(set(pages)) == page["numMatches"] == MAX_LIMIT + 300


def test_status_drop_and_truncate_faults_hit_the_opencga_paths(opencga, api):
    opencga.add_faults([{"path": "*/analysis/variant/query", "kind": "status", "status": 504, "count": 1},
                        {"path": "*/projects/search", "kind": "drop", "count": 1},
                        {"path": "*/meta/about", "kind": "truncate", "count": 1}])
    assert api.get("analysis/variant/query", study="demo").status_code == 504
    with pytest.raises(requests.ConnectionError):
        api.get("projects/search")
    with pytest.raises(requests.RequestException):
        requests.get(api.base + "meta/about", timeout=10).json()
    assert api.get("analysis/variant/query", study="demo").status_code == 200
    assert api.get("projects/search").status_code == 200
    assert opencga.stats()["by_status"]["504"] >= 1


def test_unknown_paths_and_methods_answer_the_error_envelope(api):
    missing = api.get("nothing/here")
    assert missing.status_code == 404 and error_event(missing)
    wrong = requests.delete(api.base + "meta/about", timeout=10)
    assert wrong.status_code == 405 and error_event(wrong)


def test_gensvc_emulate_opencga_serves_until_sigterm():
    process = subprocess.Popen([sys.executable, "-m", "gensvc.emulators", "opencga", "--port", "0",
                                "--tokens", "cli:cli-pass"], stdout=subprocess.PIPE, text=True)
    try:
        line = json.loads(process.stdout.readline())
        assert line["service"] == "opencga" and line["url"].endswith("/opencga/")
        login = requests.post(line["url"] + REST + "users/login", json={"user": "cli", "password": "cli-pass"},
                              timeout=10)
        assert login.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
