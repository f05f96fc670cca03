"""The CGI emulator against the REST API v1 contract: the rest_api page's own example calls,
auth and submission errors, the quota, job progress under a time scale, failed jobs, the
result zip compared with a real CGI result, determinism and the hostile_zip fault.
Real HTTP on loopback with requests."""

from __future__ import annotations

import csv
import io
import re
import stat
import time
import zipfile
from pathlib import Path

import pytest
import requests

from gensvc.emulators import EMULATORS, start_emulator
from gensvc.emulators.cgi import DEFAULT_TOKENS, QUOTA_MESSAGE

TOKEN = "test-cgi-token"
EMAIL = "tester@example.org"
AUTH = {"Authorization": f"{EMAIL} {TOKEN}"}
TIME_SCALE = 0.005  # a 60 s job takes 0.3 s
JOB_SECONDS = 60 * TIME_SCALE
JOB_ID = re.compile(r"[0-9a-f]{20}")

REAL_ZIP = Path(__file__).resolve().parents[1] / "data" / "cgi_results_example.zip"  # a real CGI result

VCF = (
    "##fileformat=VCFv4.2\n"
    "##reference=GRCh37\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "chr1\t115258747\trs121913237\tC\tT\t50\tPASS\tDP=100\n"
    "7\t55221821\t.\tGC\tAA\t.\t.\t.\n"
    "10\t43609077\t.\tCTTCCCTGAGGAGGAGAAGTGCTTCTGC\tC\t.\t.\t.\n"
    "11\t32417908\t.\tC\tCACCGTACA\t.\t.\t.\n"
    "17\t7577022\t.\tG\tA\t.\t.\tSOMATIC\n"
    "17\t7577022\t.\tG\tA\t.\t.\tSOMATIC;LAST\n"
)
CNAS = "gene\tcna\nERBB2\tAMP\nCDKN2A\tdel\n"
FUSIONS = "fus\nBCR__ABL1\nEML4__ALK\n"


@pytest.fixture(scope="module", autouse=True)
def registered():
    """The emulator in the registry while this module runs, if gensvc/emulators/__init__.py
    does not list it yet (other modules count the registry's entries)."""
    added = "cgi" not in EMULATORS
    if added:
        EMULATORS["cgi"] = "gensvc.emulators.cgi"
    yield
    if added:
        EMULATORS.pop("cgi", None)


@pytest.fixture(scope="module")
def cgi(registered):
    with start_emulator("cgi", tokens=[TOKEN, "your_token"], time_scale=TIME_SCALE,
                        quota=1000) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def no_faults(cgi):
    cgi.clear_faults()
    yield
    cgi.clear_faults()


def submit(cgi, files, auth=AUTH, **data):
    data.setdefault("cancer_type", "BRCA")
    response = requests.post(cgi.url, headers=auth, files=files, data=data, timeout=30)
    assert response.status_code == 200, response.text
    job_id = response.json()
    assert JOB_ID.fullmatch(job_id)
    return job_id


def info(cgi, job_id, auth=AUTH, **params):
    return requests.get(f"{cgi.url}/{job_id}", headers=auth, params=params, timeout=30)


def wait(cgi, job_id, auth=AUTH, limit=10.0):
    deadline = time.monotonic() + limit
    while True:
        status = info(cgi, job_id, auth).json()["status"]
        if status != "Running" or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def download(cgi, job_id, auth=AUTH) -> zipfile.ZipFile:
    response = info(cgi, job_id, auth, action="download")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


def table(archive: zipfile.ZipFile, name: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(archive.read(name).decode()), delimiter="\t"))


def summary_values(archive: zipfile.ZipFile) -> dict[str, str]:
    lines = archive.read("summary.txt").decode().splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def assert_error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == status and isinstance(body["message"], str) and body["message"]


# --- the rest_api page's examples, as written there ---------------------------------------

def test_seed_examples_exactly_as_written(cgi, tmp_path, monkeypatch):
    base = cgi.url  # stands for https://www.cancergenomeinterpreter.org/api/v1
    (tmp_path / "mutations.ext").write_text(VCF)
    (tmp_path / "file.ext").write_text(CNAS)
    (tmp_path / "another_file.ext").write_text(FUSIONS)

    # Launching a job: the page's placeholder cancer type is not a code, and is refused.
    headers = {'Authorization': 'example@email.com your_token'}
    payload = {'cancer_type': 'CANCER TYPE', 'title': 'Title of the run'}
    r = requests.post(base, headers=headers, files={
        'mutations': open(tmp_path / 'mutations.ext', 'rb'),
        'cnas': open(tmp_path / 'file.ext', 'rb'),
        'translocations': open(tmp_path / 'another_file.ext', 'rb'),
    }, data=payload)
    assert_error(r, 400)

    payload = {'cancer_type': 'BRCA', 'title': 'Title of the run'}
    r = requests.post(base, headers=headers, files={
        'mutations': open(tmp_path / 'mutations.ext', 'rb'),
        'cnas': open(tmp_path / 'file.ext', 'rb'),
        'translocations': open(tmp_path / 'another_file.ext', 'rb'),
    }, data=payload)
    job_id = r.json()
    assert JOB_ID.fullmatch(job_id)

    # Getting the identifiers.
    r = requests.get(base, headers=headers)
    assert r.json() == [job_id]

    # Accessing a job information.
    r = requests.get(f'{base}/{job_id}', headers=headers)
    body = r.json()
    assert list(body) == ["status", "metadata"]
    assert body["status"] == "Running"
    metadata = body["metadata"]
    assert list(metadata) == ["id", "user", "title", "cancertype", "reference", "dataset", "date"]
    assert metadata["id"] == job_id and metadata["user"] == "example@email.com"
    assert metadata["title"] == "Title of the run" and metadata["cancertype"] == "BRCA"
    assert metadata["reference"] == "hg19" and metadata["dataset"] == "input.tsv"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", metadata["date"])

    # Actions on a job: logs, then download once done.
    payload = {'action': 'logs'}
    r = requests.get(f'{base}/{job_id}', headers=headers, params=payload)
    assert r.json()["logs"][0] == "# cgi analyze input.tsv -c BRCA -g hg19"
    assert wait(cgi, job_id, auth=headers) == "Done"
    payload = {'action': 'download'}
    r = requests.get(f'{base}/{job_id}', headers=headers, params=payload)
    monkeypatch.chdir(tmp_path)
    with open('file.zip', 'wb') as fd:
        fd.write(r._content)
    with zipfile.ZipFile(tmp_path / "file.zip") as archive:
        assert archive.namelist() == ["alterations.tsv", "biomarkers.tsv", "input01.tsv",
                                      "input02.tsv", "input03.tsv", "summary.txt"]

    # Deleting a job.
    r = requests.delete(f'{base}/{job_id}', headers=headers)
    assert r.json() == {"id": job_id, "status": "Deleted"}
    assert requests.get(base, headers=headers).json() == []


def test_curl_style_query_parameters_and_references(cgi):
    # CGIwrapper sends cancer_type and title in the URL, the files as multipart.
    response = requests.post(cgi.url, headers=AUTH, params={"cancer_type": "LUAD", "title": "wr"},
                             files={"mutations": ("m.vcf", VCF)}, timeout=30)
    metadata = info(cgi, response.json()).json()["metadata"]
    assert (metadata["cancertype"], metadata["title"], metadata["reference"]) == (
        "LUAD", "wr", "hg19")
    for given, stored in (("hg38", "hg38"), ("GRCh38", "hg38"), ("grch37", "hg19"),
                          ("hg19", "hg19")):
        job_id = submit(cgi, {"mutations": ("m.vcf", VCF)}, reference=given)
        assert info(cgi, job_id).json()["metadata"]["reference"] == stored


# --- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [
    None, "", TOKEN, f"Bearer {TOKEN}", f"{EMAIL} wrong-token", f"not-an-email {TOKEN}",
    f"{EMAIL} {TOKEN} extra",
])
def test_bad_credentials_are_refused_with_401(cgi, header):
    headers = {} if header is None else {"Authorization": header}
    assert_error(requests.get(cgi.url, headers=headers, timeout=30), 401)
    assert_error(requests.post(cgi.url, headers=headers, data={"cancer_type": "BRCA"},
                               files={"mutations": ("m.vcf", VCF)}, timeout=30), 401)
    assert_error(requests.get(f"{cgi.url}/0123456789abcdef0123", headers=headers, timeout=30), 401)


def test_default_token_is_accepted_for_any_email():
    with start_emulator("cgi") as emulator:
        for email in ("a@b.c", "someone.else@example.org"):
            headers = {"Authorization": f"{email} {DEFAULT_TOKENS[0]}"}
            assert requests.get(emulator.url, headers=headers, timeout=30).json() == []


def test_users_see_only_their_own_jobs(cgi):
    job_id = submit(cgi, {"mutations": ("m.vcf", VCF)})
    other = {"Authorization": f"other@example.org {TOKEN}"}
    assert job_id not in requests.get(cgi.url, headers=other, timeout=30).json()
    assert_error(info(cgi, job_id, other), 404)
    assert_error(info(cgi, job_id, other, action="logs"), 404)
    assert_error(requests.delete(f"{cgi.url}/{job_id}", headers=other, timeout=30), 404)
    assert job_id in requests.get(cgi.url, headers=AUTH, timeout=30).json()


@pytest.mark.parametrize("files, data", [
    ({}, {"cancer_type": "BRCA"}),  # no file
    ({"mutations": ("m.vcf", VCF)}, {}),  # no cancer type
    ({"mutations": ("m.vcf", VCF)}, {"cancer_type": "NOPE"}),  # not a code
    ({"mutations": ("m.vcf", VCF)}, {"cancer_type": "brca"}),  # codes are exact
    ({"mutations": ("m.vcf", VCF)}, {"cancer_type": "BRCA", "reference": "hg18"}),
    ({"other": ("m.vcf", VCF)}, {"cancer_type": "BRCA"}),  # not one of the three files
])
def test_bad_submissions_are_refused_with_400(cgi, files, data):
    before = requests.get(cgi.url, headers=AUTH, timeout=30).json()
    response = requests.post(cgi.url, headers=AUTH, files=files or None, data=data, timeout=30)
    assert_error(response, 400)
    assert requests.get(cgi.url, headers=AUTH, timeout=30).json() == before


def test_unknown_jobs_actions_and_paths(cgi):
    assert_error(info(cgi, "0123456789abcdef0123"), 404)
    assert_error(info(cgi, "not-a-job"), 404)
    assert_error(requests.delete(f"{cgi.url}/0123456789abcdef0123", headers=AUTH, timeout=30), 404)
    assert_error(requests.get(f"{cgi.url}/a/b", headers=AUTH, timeout=30), 404)
    assert_error(requests.put(cgi.url, headers=AUTH, timeout=30), 405)
    job_id = submit(cgi, {"mutations": ("m.vcf", VCF)})
    assert_error(info(cgi, job_id, action="explode"), 400)


def test_quota_default_ten_jobs_then_403_until_one_is_deleted():
    with start_emulator("cgi", tokens=[TOKEN], time_scale=TIME_SCALE) as emulator:
        ids = [submit(emulator, {"mutations": ("m.vcf", VCF)}) for _ in range(10)]
        response = requests.post(emulator.url, headers=AUTH, data={"cancer_type": "BRCA"},
                                 files={"mutations": ("m.vcf", VCF)}, timeout=30)
        assert response.status_code == 403
        assert response.json() == {"error_code": 403, "message": QUOTA_MESSAGE}
        # Another user has their own quota.
        submit(emulator, {"mutations": ("m.vcf", VCF)},
               auth={"Authorization": f"second@example.org {TOKEN}"})
        assert requests.delete(f"{emulator.url}/{ids[0]}", headers=AUTH, timeout=30).ok
        submit(emulator, {"mutations": ("m.vcf", VCF)})
        assert len(requests.get(emulator.url, headers=AUTH, timeout=30).json()) == 10


def test_quota_is_configurable():
    with start_emulator("cgi", tokens=[TOKEN], quota=1) as emulator:
        submit(emulator, {"mutations": ("m.vcf", VCF)})
        response = requests.post(emulator.url, headers=AUTH, data={"cancer_type": "BRCA"},
                                 files={"cnas": ("c.tsv", CNAS)}, timeout=30)
        assert response.status_code == 403


# --- progress ------------------------------------------------------------------------------

STEPS = ["Parsing input01.tsv", "Running VEP", "Check cancer genes and consensus roles",
         "Annotate BoostDM mutations", "Annotate OncodriveMUT mutations",
         "Annotate validated oncogenic mutations", "Check oncogenic classification",
         "Matching biomarkers", "Prescription finished", "Aggregate metrics",
         "Compress output files", "Analysis done"]
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO |ERROR)    (.*)\n")


def test_running_then_done_with_time_scale_and_growing_logs():
    with start_emulator("cgi", tokens=[TOKEN], time_scale=0.01, job_seconds=50) as emulator:
        started = time.monotonic()
        job_id = submit(emulator, {"mutations": ("m.vcf", VCF)}, cancer_type="HEMATO",
                        reference="hg38")
        seen: list[int] = []
        while (status := info(emulator, job_id).json()["status"]) == "Running":
            logs = info(emulator, job_id, action="logs").json()
            assert logs["logs"][0] == "# cgi analyze input.tsv -c HEMATO -g hg38"
            steps = [LOG_LINE.fullmatch(line).group(2) for line in logs["logs"][1:]]
            assert steps == STEPS[:len(steps)]
            if logs["status"] == "Running":
                assert "Analysis done" not in steps
            seen.append(len(steps))
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        assert status == "Done" and 0.5 <= elapsed < 5
        assert seen == sorted(seen) and len(set(seen)) > 2  # the steps came one after another
        logs = info(emulator, job_id, action="logs").json()
        assert logs["status"] == "Done"
        assert all(line.endswith("\n") for line in logs["logs"][1:])
        assert [LOG_LINE.fullmatch(line).group(2) for line in logs["logs"][1:]] == STEPS
        assert "Analysis done" in "".join(logs["logs"])  # how querynator decides


def test_download_before_done_is_refused(cgi):
    job_id = submit(cgi, {"mutations": ("m.vcf", VCF)})
    assert_error(info(cgi, job_id, action="download"), 409)


@pytest.mark.parametrize("field, content, reason", [
    ("mutations", "a\tb\n1\t2\n", "neither a VCF nor"),
    ("mutations", "", "empty"),
    ("mutations", "CHR\tPOS\tREF\tALT\n1\tabc\tA\tC\n", "not a number"),
    ("mutations", "protein\nTP53-R248Q\n", "protein change"),
    ("cnas", "gene\tcopies\nERBB2\t8\n", "'gene' and 'cna'"),
    ("cnas", "gene\tcna\nERBB2\tgain\n", "neither amp nor del"),
    ("translocations", "gene\nBCR\n", "'fus'"),
    ("translocations", "fus\nBCR-ABL1\n", "GENE1__GENE2"),
])
def test_unreadable_input_fails_the_job_with_an_error_log(cgi, field, content, reason):
    job_id = submit(cgi, {field: ("input.txt", content)})
    assert wait(cgi, job_id) == "Error"
    logs = info(cgi, job_id, action="logs").json()
    assert logs["status"] == "Error"
    assert LOG_LINE.fullmatch(logs["logs"][1]).group(2) == "Parsing input01.tsv"
    match = LOG_LINE.fullmatch(logs["logs"][-1])
    assert match.group(1) == "ERROR" and reason in match.group(2)
    assert "Analysis done" not in "".join(logs["logs"])
    assert_error(info(cgi, job_id, action="download"), 409)


def test_job_error_fault_fails_an_accepted_job(cgi):
    cgi.add_faults({"kind": "job_error", "method": "POST", "count": 1, "message": "VEP crashed"})
    failed = submit(cgi, {"mutations": ("m.vcf", VCF)})
    fine = submit(cgi, {"mutations": ("m.vcf", VCF)})
    assert wait(cgi, failed) == "Error" and wait(cgi, fine) == "Done"
    lines = info(cgi, failed, action="logs").json()["logs"]
    assert [LOG_LINE.fullmatch(line).group(2) for line in lines[1:]] == [
        "Parsing input01.tsv", "Running VEP", "VEP crashed"]


# --- results -------------------------------------------------------------------------------

def test_result_zip_has_the_real_layout_for_a_vcf(cgi):
    real = zipfile.ZipFile(REAL_ZIP)
    job_id = submit(cgi, {"mutations": ("sample.vcf", VCF)})
    assert wait(cgi, job_id) == "Done"
    archive = download(cgi, job_id)
    assert archive.namelist() == real.namelist()
    assert table(archive, "alterations.tsv")[0] == table(real, "alterations.tsv")[0]
    assert table(archive, "biomarkers.tsv")[0] == table(real, "biomarkers.tsv")[0]
    assert archive.read("input01.tsv") == VCF.encode()
    section = re.compile(r"^(=== .* ===|[A-Za-z -]+:)", re.M)
    assert (section.findall(archive.read("summary.txt").decode())
            == section.findall(real.read("summary.txt").decode()))
    for member in archive.infolist():
        assert member.compress_type == zipfile.ZIP_DEFLATED and "/" not in member.filename
        assert stat.S_ISREG(member.external_attr >> 16)


def test_the_real_input_gives_the_real_rows_and_counts(cgi):
    """The columns CGI derives from the input alone (ids, normalised alleles, kept input
    columns, types, mutation strings) equal the real result's, value for value."""
    real = zipfile.ZipFile(REAL_ZIP)
    job_id = submit(cgi, {"mutations": ("input.vcf", real.read("input01.tsv"))},
                    title="CGI_query")
    assert wait(cgi, job_id) == "Done"
    archive = download(cgi, job_id)
    mine = table(archive, "alterations.tsv")
    theirs = table(real, "alterations.tsv")
    assert len(mine) == len(theirs) == 89
    header = theirs[0]
    from_input = ["Input ID", "CHROMOSOME", "POSITION", "REF", "ALT", "#CHROM", "POS", "ID",
                  "QUAL", "FILTER", "INFO", "ALT_TYPE", "STRAND", "CGI-INFO", "CGI-Mutation",
                  "CGI-Type", "CGI-STRAND"]
    columns = [header.index(name) for name in from_input]
    def derived(rows):
        return [[row[i] for i in columns] for row in rows]

    assert derived(mine) == derived(theirs)
    vocabulary = {row[header.index("CGI-Oncogenic Summary")] for row in theirs[1:]}
    assert {row[header.index("CGI-Oncogenic Summary")] for row in mine[1:]} <= vocabulary
    summary = summary_values(archive)
    real_summary = summary_values(real)
    for key in ("Analysis Code", "CGI version", "Analysed mutations", "Analysed cnas",
                "Analysed fusions", "Total samples", "Cancer type", "Reference genome"):
        assert summary[key] == real_summary[key], key
    assert summary["Analysis ID"] == job_id
    assert archive.read("input01.tsv") == real.read("input01.tsv")


def test_summary_counts_match_the_tables(cgi):
    job_id = submit(cgi, {"mutations": ("m.vcf", VCF), "cnas": ("c.tsv", CNAS),
                          "translocations": ("f.tsv", FUSIONS)}, cancer_type="BRCA")
    assert wait(cgi, job_id) == "Done"
    archive = download(cgi, job_id)
    rows = table(archive, "alterations.tsv")
    header, body = rows[0], rows[1:]
    summary = summary_values(archive)
    types = [row[header.index("ALT_TYPE")] for row in body]
    # Six VCF lines, two identical: five mutations.
    mutations = sum(kind not in ("cna", "fusion") for kind in types)
    assert summary["Analysed mutations"] == "5" == str(mutations)
    assert summary["Analysed cnas"] == "2" == str(types.count("cna"))
    assert summary["Analysed fusions"] == "2" == str(types.count("fusion"))
    oncogenic = [row[header.index("CGI-Oncogenic Summary")] for row in body]
    assert summary["Driver mutations"] == str(sum(o.startswith("oncogenic") for o in oncogenic))
    assert summary["Predicted drivers"] == str(oncogenic.count("oncogenic (predicted)"))
    biomarkers = table(archive, "biomarkers.tsv")[1:]
    assert summary["Biomarkers in cancer type"] == str(sum(row[7] == "YES" for row in biomarkers))
    assert summary["Biomarkers in other cancer type"] == str(
        sum(row[7] == "NO" for row in biomarkers))
    assert summary["Biomarkers in cancer type - Level A"] == str(
        sum(row[7] == "YES" and row[6] == "A" for row in biomarkers))
    # ERBB2 amplification is a Level A biomarker in breast cancer.
    found = [[row[2], row[7], row[9]] for row in biomarkers]
    assert ["ERBB2 amplification", "YES", "complete"] in found
    ids = [row[0] for row in body]
    assert ids[:5] == ["input01_1", "input01_2", "input01_3", "input01_4", "input01_6"]
    assert ids[5:] == ["input02_1", "input02_2", "input03_1", "input03_2"]
    genes = [row[header.index("CGI-Gene")] for row in body]
    assert genes[5:] == ["ERBB2", "CDKN2A", "BCR__ABL1", "EML4__ALK"]
    assert archive.read("input02.tsv") == CNAS.encode()
    assert archive.read("input03.tsv") == FUSIONS.encode()
    # The normalised indels, as CGI writes them.
    mutations = {row[0]: row[header.index("CGI-Mutation")] for row in body}
    assert mutations["input01_3"] == "chr10:43609078-43609078 TTCCCTGAGGAGGAGAAGTGCTTCTGC>-"
    assert mutations["input01_4"] == "chr11:32417908-32417909 ->ACCGTACA"
    assert mutations["input01_1"] == "chr1:115258747 C>T"


def test_table_inputs_keep_their_own_columns(cgi):
    upper = "CHR\tPOS\tREF\tALT\nchr1\t114716123\tC\tT\nchr9\t5073770\tG\tT\n"
    job_id = submit(cgi, {"mutations": ("df.txt", upper)}, cancer_type="HEMATO", reference="hg38")
    lower = "chr\tpos\tref\talt\tsample\nchr17\t7669662\tT\tG\tS1\nchr19\t12943750\tAGCAG\tA\tS2\n"
    job_lower = submit(cgi, {"mutations": ("df.txt", lower)}, cancer_type="HEMATO")
    protein = "protein\tsample\nTP53:p.R248Q\tP1\nNM_005157:p.T315I\tP1\nAPC:p.I1557fs*30\tP2\n"
    job_protein = submit(cgi, {"mutations": ("p.tsv", protein)})
    gdna = "gdna\nchr3:g.178936091G>A\n"
    job_gdna = submit(cgi, {"mutations": ("g.tsv", gdna)})
    for job in (job_id, job_lower, job_protein, job_gdna):
        assert wait(cgi, job) == "Done"

    rows = table(download(cgi, job_id), "alterations.tsv")
    assert rows[0][:10] == ["Input ID", "CHROMOSOME", "POSITION", "REF", "ALT", "CHR", "POS",
                            "ALT_TYPE", "STRAND", "CGI-Sample ID"]
    assert rows[1][:10] == ["input01_1", "1", "114716123", "C", "T", "chr1", "114716123", "snp",
                            "+", "input01"]

    rows = table(download(cgi, job_lower), "alterations.tsv")
    assert rows[0][:12] == ["Input ID", "CHROMOSOME", "POSITION", "REF", "ALT", "chr", "pos",
                            "ref", "alt", "sample", "ALT_TYPE", "STRAND"]
    assert rows[2][:5] == ["input01_2", "19", "12943751", "GCAG", "-"]
    assert [row[rows[0].index("CGI-Sample ID")] for row in rows[1:]] == ["S1", "S2"]
    assert summary_values(download(cgi, job_lower))["Total samples"] == "2"

    archive = download(cgi, job_protein)
    rows = table(archive, "alterations.tsv")
    header = rows[0]
    assert header[5:7] == ["protein", "sample"]
    changes = [row[header.index("CGI-Protein Change")] for row in rows[1:]]
    assert changes == ["R248Q", "T315I", "I1557fs*30"]
    assert rows[1][header.index("CGI-Gene")] == "TP53"
    assert rows[1][header.index("CGI-HGVSp")].endswith(":p.Arg248Gln")

    rows = table(download(cgi, job_gdna), "alterations.tsv")
    assert rows[1][:5] == ["input01_1", "3", "178936091", "G", "A"]


def test_same_input_gives_the_same_result(cgi):
    files = {"mutations": ("m.vcf", VCF), "cnas": ("c.tsv", CNAS)}
    first, second = submit(cgi, files), submit(cgi, files)
    assert wait(cgi, first) == "Done" and wait(cgi, second) == "Done"
    one, two = download(cgi, first), download(cgi, second)
    assert one.namelist() == two.namelist()
    for name in one.namelist():
        if name == "summary.txt":
            def strip(text: bytes) -> list[str]:
                return [line for line in text.decode().splitlines()
                        if not line.startswith(("Analysis ID:", "Date:"))]
            assert strip(one.read(name)) == strip(two.read(name))
        else:
            assert one.read(name) == two.read(name), name
    # And downloading a job twice gives the same bytes.
    assert (info(cgi, first, action="download").content
            == info(cgi, first, action="download").content)


# --- hostile archives ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def done_job(cgi):
    job_id = submit(cgi, {"mutations": ("m.vcf", VCF)})
    assert wait(cgi, job_id) == "Done"
    return job_id


def hostile(cgi, job_id, **fault) -> zipfile.ZipFile:
    cgi.add_faults({"kind": "hostile_zip", "method": "GET", "count": 1, **fault})
    archive = download(cgi, job_id)
    assert cgi.app.faults.active() == []  # used up
    return archive


def test_hostile_zip_slip(cgi, done_job):
    archive = hostile(cgi, done_job, variant="slip")
    assert "../../evil.txt" in archive.namelist() and "alterations.tsv" in archive.namelist()
    # The next download is the real zip again.
    assert all(".." not in name for name in download(cgi, done_job).namelist())


def test_hostile_zip_absolute(cgi, done_job):
    assert "/tmp/evil.txt" in hostile(cgi, done_job, variant="absolute").namelist()


def test_hostile_zip_bomb(cgi, done_job):
    response_size_limit = 2 * 1024 * 1024
    cgi.add_faults({"kind": "hostile_zip", "variant": "bomb", "count": 1})
    response = info(cgi, done_job, action="download")
    assert len(response.content) < response_size_limit
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    bomb = archive.getinfo("alterations.tsv")
    assert bomb.file_size >= 200 * 1024 * 1024 and bomb.compress_size < response_size_limit
    with archive.open(bomb) as member:
        assert member.read(4096) == bytes(4096)


def test_hostile_zip_link(cgi, done_job):
    archive = hostile(cgi, done_job, variant="link")
    link = archive.getinfo("evil_link")
    assert stat.S_ISLNK(link.external_attr >> 16) and link.create_system == 3
    assert archive.read(link) == b"/etc/passwd"


def test_hostile_zip_many(cgi, done_job):
    archive = hostile(cgi, done_job, variant="many")
    assert len(archive.namelist()) >= 20_000
    assert "summary.txt" in archive.namelist()


def test_hostile_zip_only_on_matching_paths(cgi, done_job):
    cgi.add_faults({"kind": "hostile_zip", "variant": "slip",
                    "path": "/api/v1/ffffffffffffffffffff"})
    assert "../../evil.txt" not in download(cgi, done_job).namelist()


def test_a_bad_second_file_fails_after_parsing_both(cgi):
    job_id = submit(cgi, {"mutations": ("m.vcf", VCF), "cnas": ("c.tsv", "gene\nERBB2\n")})
    assert wait(cgi, job_id) == "Error"
    lines = info(cgi, job_id, action="logs").json()["logs"]
    messages = [LOG_LINE.fullmatch(line).group(2) for line in lines[1:]]
    assert messages[:2] == ["Parsing input01.tsv", "Parsing input02.tsv"]
    assert messages[2].startswith("input02.tsv (cnas): ") and len(messages) == 3
