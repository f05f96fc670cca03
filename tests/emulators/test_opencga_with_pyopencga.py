"""The official client, pyopencga 5.0.0, unchanged, drives the OpenCGA emulator over HTTP on
loopback: start-up (HEAD on the host, meta/about), login, projects and studies, a file
upload, a variant index job awaited with wait_for_job, a variant query with a limit over
1000 (several pages) and a samples search. Its quirks are the emulator's proof: it refreshes
its token after every call, each sub-client keeping its own copy of the old one; it accepts
only an exact `application/json`; it pages while a page holds exactly 1000 results."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pytest

pytest.importorskip("pyopencga")  # the test extra pins it; without it this proof cannot run

from pyopencga.opencga_client import OpencgaClient  # noqa: E402
from pyopencga.opencga_config import ClientConfiguration  # noqa: E402

from gensvc.emulators import start_emulator  # noqa: E402

USER, PASSWORD = "pyuser", "py-pass"
ROWS = 2500
SAMPLES = ("ALPHA", "BETA", "GAMMA")


def big_vcf(rows: int) -> str:
    lines = ["##fileformat=VCFv4.2", "##reference=GRCh38",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(SAMPLES)]
    for i in range(rows):  # inside TP53's span in the shared gene model
        calls = "\t".join("0/1" if (i + n) % 3 else "0/0" for n in range(len(SAMPLES)))
        lines.append(f"17\t{7661800 + 4 * i}\t.\tC\tT\t60\tPASS\tDP=30\tGT\t{calls}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def opencga():
    # An index job lasts 60 s x 0.02 = 1.2 s: wait_for_job sees it unfinished, sleeps its 10 s.
    with start_emulator("opencga", tokens=[f"{USER}:{PASSWORD}"], time_scale=0.02) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def client(opencga):
    config = ClientConfiguration({"rest": {"host": opencga.url.rstrip("/")}})
    printed = io.StringIO()
    with redirect_stdout(printed):  # pyopencga prints a warning when the versions differ
        oc = OpencgaClient(config)
    assert printed.getvalue() == ""  # the emulator says 5.0.0, the client's own version
    oc.login(USER, PASSWORD)
    return oc


@pytest.fixture(scope="module")
def indexed(client, tmp_path_factory):
    """big.vcf uploaded into a new study and indexed, waited for with wait_for_job."""
    client.studies.create(data={"id": "pystudy", "name": "pyopencga study"}, project="demo")
    path = tmp_path_factory.mktemp("pyopencga") / "local name with spaces.vcf"
    path.write_text(big_vcf(ROWS))
    uploaded = client.files.upload(file=str(path), study="pystudy", name="big.vcf",
                                   relative_file_path="data/", parents=True, format="VCF",
                                   bioformat="VARIANT")
    job = client.variant_operations.index_variant(data={"file": uploaded.get_result(0)["id"]},
                                                  study="pystudy", job_id="py-index")
    client.wait_for_job(job.get_response(0))
    return {"file": uploaded.get_result(0), "job": job.get_result(0)}


def test_pyopencga_starts_logs_in_and_lists_the_project_and_its_study(opencga, client):
    by_path = opencga.stats()["by_path"]
    assert by_path["/opencga"] == 1  # ClientConfiguration's HEAD on the host
    assert by_path["/opencga/webservices/rest/v2/meta/about"] >= 1
    projects = client.projects.search().get_results()
    assert [p["fqn"] for p in projects] == ["gensvc@demo"]
    studies = client.studies.search(project="demo").get_results()
    assert "gensvc@demo:demo" in [s["fqn"] for s in studies]


def test_every_sub_client_keeps_working_with_the_token_it_was_given(opencga, client):
    # After a call, projects refreshes and holds a newer token; files and jobs still
    # hold the one from login: both must work.
    client.projects.search()
    assert client.files.token != client.projects.token
    assert client.projects.info("demo").get_result(0)["id"] == "demo"
    assert client.jobs.search(study="demo").get_num_results() >= 0
    assert client.files.search(study="demo").get_num_results() >= 0


def test_pyopencga_uploads_a_file_under_its_name_and_folder(client, indexed):
    record = indexed["file"]
    assert (record["id"], record["path"], record["name"]) == ("data:big.vcf", "data/big.vcf", "big.vcf")
    assert record["sampleIds"] == list(SAMPLES)
    info = client.files.info("data:big.vcf", study="pystudy").get_result(0)
    assert info["size"] == len(big_vcf(ROWS))


def test_wait_for_job_polls_the_index_job_until_done(opencga, client, indexed):
    assert indexed["job"]["id"] == "py-index"
    assert indexed["job"]["internal"]["status"]["id"] == "PENDING"
    polls = opencga.stats()["by_path"]["/opencga/webservices/rest/v2/jobs/py-index/info"]
    assert polls >= 2  # it saw the job unfinished at least once
    job = client.jobs.info("py-index", study="pystudy").get_result(0)
    assert job["internal"]["status"]["id"] == "DONE"
    record = client.files.info("data:big.vcf", study="pystudy").get_result(0)
    assert record["internal"]["variant"]["index"]["status"]["id"] == "READY"


def test_a_variant_query_with_a_limit_over_1000_comes_back_whole_over_several_pages(opencga, client, indexed):
    before = opencga.stats()["by_path"].get("/opencga/webservices/rest/v2/analysis/variant/query", 0)
    answer = client.variants.query(study="pystudy", gene="TP53", limit=ROWS)
    variants = answer.get_results()
    assert len(variants) == ROWS
    assert len({v["id"] for v in variants}) == ROWS
    assert [v["start"] for v in variants] == sorted(v["start"] for v in variants)
    after = opencga.stats()["by_path"]["/opencga/webservices/rest/v2/analysis/variant/query"]
    assert after - before == 3  # 1000 + 1000 + 500


def test_a_filtered_variant_query_and_a_samples_search_through_pyopencga(client, indexed):
    gamma = client.variants.query(study="pystudy", sample="GAMMA", region="17:7661800-7661900",
                                  limit=100).get_results()
    expected = [7661800 + 4 * i for i in range(26) if (i + 2) % 3]
    assert [v["start"] for v in gamma] == expected
    samples = client.samples.search(study="pystudy").get_results()
    assert sorted(s["id"] for s in samples) == sorted(SAMPLES)
    assert all(s["fileIds"] == ["data:big.vcf"] for s in samples)


def test_a_bad_vcf_makes_wait_for_job_raise_with_the_jobs_error(client, tmp_path):
    path = tmp_path / "bad.vcf"
    path.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                    "1\t100\t.\tQ\tG\t.\t.\t.\n")
    client.files.upload(file=str(path), study="demo", name="bad.vcf", relative_file_path="data/",
                        parents=True)
    job = client.variant_operations.index_variant(data={"file": "data:bad.vcf"}, study="demo",
                                                  job_id="py-bad")
    with pytest.raises(ValueError, match=r"ERROR \(\d{14}\): .*REF 'Q'"):
        client.wait_for_job(job.get_response(0))
