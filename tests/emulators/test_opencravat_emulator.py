"""The OpenCRAVAT emulator over real HTTP: the seed's own example flow, the job life cycle
with the real server's status strings and quirks (tests/peers/README.md), report layouts,
allele conversion, server-mode sessions and the delay-after fault on submission."""

from __future__ import annotations

import base64
import csv
import io
import json
import time

import pytest
import requests

from gensvc.emulators import EMULATORS, start_emulator

SEED_LINE = "chr10 8055656 + A T s3 var001\n"
TSV_BASE_COLUMNS = ["uid", "chrom", "pos", "ref_base", "alt_base", "note_variant", "coding", "hugo",
                    "transcript", "so", "exonno", "cchange", "achange", "all_mappings", "gposend",
                    "numsample", "samples", "tags"]
SCALE = 0.05  # a 4.5 s job takes 0.225 s
QUEUED_FOR = 0.7 * 4.5 * SCALE  # the first 70 % of it is spent queued


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register the emulator for this module only (the lead adds it to the registry)."""
    added = "opencravat" not in EMULATORS
    EMULATORS.setdefault("opencravat", "gensvc.emulators.opencravat")
    yield
    if added:
        EMULATORS.pop("opencravat", None)


@pytest.fixture(scope="module")
def oc(registered):
    with start_emulator("opencravat", time_scale=SCALE) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def oc_server(registered):
    with start_emulator("opencravat", time_scale=SCALE, multiuser=True) as emulator:
        yield emulator


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


_last_second = [0]


def submit(session, url, options, name="input.vcf", content="", fresh_second=True, **kwargs):
    """POST /submit/submit; by default in a new clock second (job ids have 1 s resolution)."""
    if fresh_second:
        while int(time.time()) <= _last_second[0]:
            time.sleep(0.02)
    _last_second[0] = int(time.time())
    data = {} if options is None else {"options": json.dumps(options)}
    kwargs.setdefault("timeout", 30)
    return session.post(url + "submit/submit", files={"file_0": (name, content)}, data=data,
                        **kwargs)


def wait_done(session, url, job_id, timeout=10.0):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = session.get(f"{url}submit/jobs/{job_id}/status", timeout=10)
        if r.status_code == 200 and r.json() is not None:
            status = r.json()["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status in ("Finished", "Error"):
                return r.json(), seen
        time.sleep(0.005)
    raise AssertionError(f"job {job_id} not done; saw {seen}")


def getjob(session, url, job_id):
    r = session.get(url + "submit/getjobs", params={"ids": json.dumps([job_id])}, timeout=10)
    assert r.status_code == 200, r.text
    (job,) = r.json()
    return job


def opts(**extra):
    base = {"annotators": ["gensvcdemo"], "reports": ["tsv", "vcf"], "assembly": "hg38",
            "note": "emulator test"}
    base.update(extra)
    return base


def tsv_rows(text):
    body = [line for line in text.splitlines() if not line.startswith("#")]
    rows = list(csv.reader(io.StringIO("\n".join(body)), delimiter="\t"))
    return [dict(zip(rows[0], row)) for row in rows[1:]], rows[0]


def error_body(response):
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    return json.loads(response.text)


# ---------------------------------------------------------------- the seed, verbatim

def test_seed_example_flow(oc_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = oc_server.url  # stands for https://run.opencravat.org/
    f = open("test_input.txt", "w")
    f.write("chr10 8055656 + A T s3 var001\n")
    f.close()

    session = requests.Session()
    reply = session.get(base + "server/login",
                        headers={"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()})
    assert reply.status_code == 200 and reply.json() == "success"

    r = session.post(base + "submit/submit", files={"file_0": open("test_input.txt")},
                     data={"options": '{"annotators": ["clinvar"], "reports": ["text"], "assembly": "hg38", "note": "test run"}'})
    job_id = r.json()["id"]
    assert r.json()["status"]["status"] == "Submitted"

    r = session.get(base + "submit/jobs/" + job_id + "/status")
    assert r.json()["status"] == "Submitted"
    status, _ = wait_done(session, base, job_id)
    assert status["status"] == "Finished"

    r = session.post(base + "submit/jobs/" + job_id + "/reports/vcf")
    assert r.json() == "done"

    r = session.get(base + "submit/jobs/" + job_id + "/reports")
    assert r.json() == ["vcf"]  # the job's own "text" report exists, but is never listed

    r = session.get(base + "submit/jobs/" + job_id + "/reports/vcf")
    assert r.headers["Content-Type"] == "text/x-vcard"
    assert r.headers["Content-Disposition"] == "attachment; filename=test_input.txt.vcf"
    wf = open("output.vcf", "w")
    wf.write(r.text)
    wf.close()
    lines = (tmp_path / "output.vcf").read_text().splitlines()
    assert lines[0] == "##fileformat=VCFv4.2"
    assert lines[-2].startswith("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts3")
    assert lines[-1].split("\t")[:5] == ["10", "8055656", "1", "A", "T"]

    r = session.get(base + "submit/annotate", params={
        "chrom": "chr7", "pos": 140753336, "ref_base": "A", "alt_base": "T",
        "annotators": "clinvar,dbsnp"})
    body = r.json()
    assert set(body) == {"clinvar", "dbsnp", "crx"}
    assert {"uid", "chrom", "pos", "ref_base", "alt_base", "note", "coding", "hugo", "transcript",
            "so", "achange", "all_mappings"} <= set(body["crx"])
    assert body["crx"]["pos"] == 140753336 and body["crx"]["uid"] == ""
    assert body["clinvar"] is None or set(body["clinvar"]) == {
        "sig", "disease_refs", "disease_names", "rev_stat", "id"}
    assert body["dbsnp"] is None or set(body["dbsnp"]) == {"snp"}


# ---------------------------------------------------------------- job life cycle

def test_status_progression_to_finished(oc):
    s = requests.Session()
    sent = time.monotonic()
    r = submit(s, oc.url, opts(), content="##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                                          "chr1\t1000\trs1\tA\tG\t50\tPASS\t.\n")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json; charset=utf-8"
    body = r.json()
    assert body["status"] == {"status": "Submitted"} and body["run_name"] == "input.vcf"
    assert body["annotators"] == ["gensvcdemo"] and body["note"] == "emulator test"
    assert len(body["id"]) == 13 and body["id"][6] == "-"
    queued = s.get(f"{oc.url}submit/jobs/{body['id']}/status").json()
    if time.monotonic() - sent < QUEUED_FOR:
        assert queued["status"] == "Submitted" and queued["reports"] == []
    assert queued["cc_cohorts_path"] == ""
    status, seen = wait_done(s, oc.url, body["id"])
    order = ["Submitted", "Starting", "Started cravat", "Running Converter (converter)",
             "Started Deterministic gene mapper (hg38)", "Running Aggregator (variant)",
             "Running Aggregator (gene)", "Running Aggregator (sample)",
             "Running Aggregator (mapping)", "Finished Aggregator (mapping)",
             "Running Tag Sampler (tagsampler)", "Running VCF Info (vcfinfo)",
             "Running TSV Reporter (tsvreporter)", "Running VCF Reporter (vcfreporter)", "Finished"]
    assert seen[0] == "Submitted" and seen[-1] == "Finished"
    assert [order.index(x) for x in seen] == sorted(order.index(x) for x in seen), seen
    assert status["num_input_var"] == 1 and status["num_unique_var"] == 1
    assert status["num_error_input"] == 0 and status["reports"] == ["tsv", "vcf"]
    assert status["db_path"].endswith("/input.vcf.sqlite")
    job = getjob(s, oc.url, body["id"])
    assert job["status"] == "Finished" and job["viewable"] is True and job["username"] == "default"
    assert job["reports"] == ["tsv", "vcf"] and job["result_available"] is True
    assert body["id"] in s.get(oc.url + "submit/jobs").json()
    log = s.get(f"{oc.url}submit/jobs/{body['id']}/log")
    assert log.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "/oc run " in log.text and "-a gensvcdemo" in log.text and "runtime:" in log.text
    assert s.get(f"{oc.url}submit/jobs/{body['id']}/err").text == "No errors"


def test_missing_note_is_500_but_the_job_runs(oc):
    s = requests.Session()
    options = opts()
    del options["note"]
    r = submit(s, oc.url, options, content=SEED_LINE, name="x.txt")
    assert error_body(r) == {"status": "error", "msg": "cannot access local variable 'note' "
                                                       "where it is not associated with a value"}
    ghost = max(s.get(oc.url + "submit/jobs").json())
    early = s.get(f"{oc.url}submit/jobs/{ghost}/status")
    if early.status_code == 500:  # no status file before `oc run` starts
        assert getjob(s, oc.url, ghost)["status"] == "Error"
    status, _ = wait_done(s, oc.url, ghost)
    assert status["status"] == "Finished" and status["note"] == ""
    assert "cc_cohorts_path" not in status  # `oc run` wrote a fresh status file


@pytest.mark.parametrize("bad", [{"annotators": ["nosuchannotator"]}, {"assembly": "hg99"},
                                 {"reports": ["pdf"]}, {"forcedinputformat": "maf"}],
                         ids=["annotator", "assembly", "reporter", "format"])
def test_invalid_options_stay_submitted_and_abort(oc, bad):
    s = requests.Session()
    sent = time.monotonic()
    r = submit(s, oc.url, opts(**bad), content=SEED_LINE, name="x.txt")
    assert r.status_code == 200 and r.json()["status"] == {"status": "Submitted"}
    jid = r.json()["id"]
    early = getjob(s, oc.url, jid)["status"]
    if time.monotonic() - sent < QUEUED_FOR:
        assert early == "Submitted"  # `oc run` has not been started yet
    time.sleep(4.5 * SCALE + 0.1)  # longer than a whole run
    assert s.get(f"{oc.url}submit/jobs/{jid}/status").json()["status"] == "Submitted"
    assert getjob(s, oc.url, jid)["status"] == "Aborted"
    assert s.get(f"{oc.url}submit/jobs/{jid}/log").text == "log file does not exist."
    assert s.get(f"{oc.url}submit/jobs/{jid}/reports").json() == []
    assert s.post(f"{oc.url}submit/jobs/{jid}/reports/tsv").json() == "fail"


def test_unreadable_input_ends_in_error_with_reason_in_log(oc):
    s = requests.Session()
    r = submit(s, oc.url, opts(), name="notes.txt", content="hello world\n")
    status, _ = wait_done(s, oc.url, r.json()["id"])
    assert status["status"] == "Error"
    assert getjob(s, oc.url, r.json()["id"])["status"] == "Error"
    log = s.get(f"{oc.url}submit/jobs/{r.json()['id']}/log").text
    assert "Input format could not be determined for file notes.txt." in log
    assert "finished with an exception" in log


def test_job_faults_error_and_abort(oc):
    s = requests.Session()
    requests.post(oc.root + "/_emulator/faults", json=[
        {"kind": "job_error", "path": "/submit/submit", "count": 1}]).raise_for_status()
    r = submit(s, oc.url, opts(), content=SEED_LINE, name="x.txt")
    status, _ = wait_done(s, oc.url, r.json()["id"])
    assert status["status"] == "Error"
    requests.post(oc.root + "/_emulator/faults", json=[
        {"kind": "job_abort", "path": "/submit/submit", "count": 1}]).raise_for_status()
    jid = submit(s, oc.url, opts(), content=SEED_LINE, name="x.txt").json()["id"]
    time.sleep(4.5 * SCALE + 0.1)
    frozen = s.get(f"{oc.url}submit/jobs/{jid}/status").json()["status"]
    assert frozen not in ("Finished", "Error", "Submitted")
    assert getjob(s, oc.url, jid)["status"] == "Aborted"
    requests.post(oc.root + "/_emulator/faults", json=[
        {"kind": "status_null", "count": 1}]).raise_for_status()
    null = s.get(f"{oc.url}submit/jobs/{jid}/status")
    assert null.status_code == 200 and null.json() is None


def test_same_second_submissions_share_an_id(oc):
    s = requests.Session()
    while time.time() % 1 > 0.3:  # both within one clock second
        time.sleep(0.01)
    first = submit(s, oc.url, opts(), name="a.txt", content=SEED_LINE, fresh_second=False)
    second = submit(s, oc.url, opts(), name="b.txt", content=SEED_LINE, fresh_second=False)
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["run_name"] == "b.txt"
    assert s.get(oc.url + "submit/jobs").json().count(first.json()["id"]) == 1


def test_unknown_job_and_bad_requests(oc):
    s = requests.Session()
    url = oc.url
    assert error_body(s.get(url + "submit/jobs/999999-999999/status"))["msg"] == \
        "unsupported operand type(s) for +: 'NoneType' and 'str'"
    assert s.get(url + "submit/jobs/999999-999999/log").text == "log file does not exist."
    assert s.get(url + "submit/jobs/999999-999999/reports").json() == []
    assert error_body(s.get(url + "submit/jobs/999999-999999/reports/tsv"))["msg"] == \
        "'NoneType' object is not iterable"
    assert error_body(s.post(url + "submit/jobs/999999-999999/reports/tsv"))["msg"] == \
        "unsupported operand type(s) for +: 'NoneType' and 'str'"
    d = s.delete(url + "submit/jobs/999999-999999")
    assert d.status_code == 200 and d.content == b"" and "Content-Type" not in d.headers
    assert getjob(s, url, "999999-999999") == {
        "orig_input_fname": "", "assembly": "", "note": "", "db_path": "", "viewable": False,
        "reports": [], "annotators": "", "annotator_version": "", "open_cravat_version": "",
        "num_input_var": "", "submission_time": "", "reports_being_generated": [],
        "id": "999999-999999", "status": "Error"}
    assert error_body(s.get(url + "submit/getjobs")) == {"status": "error", "msg": "'ids'"}
    assert error_body(s.get(url + "server/login"))["msg"] == "Not Found"  # personal mode
    assert error_body(s.get(url + "nosuch"))["msg"] == "Not Found"
    assert error_body(s.put(url + "submit/submit"))["msg"] == "Method Not Allowed"
    static = s.get(url + "submit/nosuch.html")
    assert static.status_code == 404 and static.content == b""
    assert error_body(s.get(url + "submit/annotate", params={"chrom": "chr7", "pos": "1"}))[
        "msg"] == "'ref_base'"
    assert s.get(url + "submit/servermode").json() == {"servermode": False}
    assert s.get(url + "submit/reports").json() == {"valid": ["csv", "tsv", "vcf"]}
    assert error_body(s.post(url + "submit/submit", data={"options": "{}"}))["msg"] == \
        "multipart/* content type expected"


def test_delete_job(oc):
    s = requests.Session()
    jid = submit(s, oc.url, opts(), content=SEED_LINE, name="x.txt").json()["id"]
    wait_done(s, oc.url, jid)
    d = s.delete(f"{oc.url}submit/jobs/{jid}")
    assert d.status_code == 200 and d.content == b""
    assert s.get(f"{oc.url}submit/jobs/{jid}/status").status_code == 500
    assert getjob(s, oc.url, jid)["status"] == "Error"
    assert jid not in s.get(oc.url + "submit/jobs").json()


# ---------------------------------------------------------------- reports

@pytest.fixture(scope="module")
def finished_vcf_job(oc):
    vcf = ("##fileformat=VCFv4.2\n"
           '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
           '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">\n'
           "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
           "chr1\t1000\trs1\tA\tG,T\t50\tPASS\tDP=10;AF=0.25,0.5\n"   # multiallelic SNV
           "1\t2000\t.\tC\tCAT\t.\t.\t.\n"                           # insertion, bare name
           "chr2\t3000\tdel1\tGTA\tG\t30\tq10\tDP=5\n"               # deletion
           "chr3\t4003\t.\tAC\tGT\t.\t.\t.\n"                        # MNP
           "MT\t100\t.\tA\tG\t.\t.\t.\n"                             # mitochondrion
           "chr4\t500\t.\tCAAG\tCTTG\t.\t.\t.\n"                     # MNP with shared ends
           "chr5\t600\t.\tA\tAC,*\t.\t.\t.\n"                        # star allele
           "chr6\t700\t.\tAT\tAT\t.\t.\t.\n")                        # no variant: error line
    s = requests.Session()
    jid = submit(s, oc.url, opts(annotators=["gensvcdemo", "clinvar"], reports=["tsv", "vcf", "text"]),
                 content=vcf).json()["id"]
    status, _ = wait_done(s, oc.url, jid)
    assert status["status"] == "Finished"
    return {"id": jid, "status": status, "vcf": vcf}


# VCF line -> (chrom, pos, ref_base, alt_base) as OpenCRAVAT reports them, in uid order
EXPECTED_FROM_VCF = [
    ("chr1", 1000, "A", "G"), ("chr1", 1000, "A", "T"),   # one row per ALT
    ("chr1", 2001, "-", "AT"),                            # leading base dropped, POS + 1
    ("chr2", 3001, "TA", "-"),
    ("chr3", 4003, "AC", "GT"),
    ("chrM", 100, "A", "G"),                              # MT -> chrM
    ("chr4", 501, "AA", "TT"),                            # shared first and last base trimmed
    ("chr5", 601, "-", "C"),                              # '*' skipped
]


def test_allele_conversion_from_vcf(oc, finished_vcf_job):
    s = requests.Session()
    jid = finished_vcf_job["id"]
    assert finished_vcf_job["status"]["num_input_var"] == 8
    assert finished_vcf_job["status"]["num_unique_var"] == 8
    assert finished_vcf_job["status"]["num_error_input"] == 1
    rows, header = tsv_rows(s.get(f"{oc.url}submit/jobs/{jid}/reports/tsv").text)
    assert [(r["chrom"], int(r["pos"]), r["ref_base"], r["alt_base"]) for r in rows] == EXPECTED_FROM_VCF
    # the uid of the no-variant line was taken before it was rejected: numbering has no gap
    # here because it is the last line
    assert [r["uid"] for r in rows] == [str(i) for i in range(1, 9)]
    assert [r["tags"] for r in rows[:4]] == ["rs1", "rs1", "", "del1"]
    assert rows[2]["original_input.pos"] == "2001" and rows[2]["original_input.chrom"] == "chr1"
    assert rows[0]["extra_vcf_info.AF"] == "0.25" and rows[1]["extra_vcf_info.AF"] == "0.5"
    assert rows[0]["vcfinfo.phred"] == "50.0" and rows[0]["vcfinfo.filter"] == "PASS"
    assert rows[5]["hugo"] == "" and rows[5]["all_mappings"] == ""  # chrM: intergenic
    assert rows[0]["all_mappings"] == "ENSTGS1_0.1:GS1_0:PGS1_0:missense_variant:p.Ala1Val:c.1001A>G"
    err = s.get(f"{oc.url}submit/jobs/{jid}/err").text
    assert "LINE:12" in err and "ERROR:Reference and alternate alleles are the same." in err


def test_vcf_sample_genotypes(oc):
    vcf = ("##fileformat=VCFv4.2\n"
           "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n"
           "chr1\t100\t.\tA\tG,T\t.\tPASS\t.\tGT:AD:DP\t0/1:5,5,0:10\t0/0:10,0,0:10\n"
           "chr1\t200\t.\tC\tA\t.\t.\t.\tGT\t0/0\t0/0\n"
           "chr1\t300\t.\tG\tC\t.\t.\t.\tGT\t1/1\t0|1\n"
           "\n"  # PyVCF's reader stops at a blank line: the store converter ignores the rest
           "chr1\t400\t.\tG\tT\t.\t.\t.\tGT\t1/1\t1/1\n")
    s = requests.Session()
    jid = submit(s, oc.url, opts(), content=vcf).json()["id"]
    status, _ = wait_done(s, oc.url, jid)
    assert (status["num_input_var"], status["num_unique_var"], status["num_error_input"]) == (2, 2, 1)
    rows, _ = tsv_rows(s.get(f"{oc.url}submit/jobs/{jid}/reports/tsv").text)
    # only the ALT some sample carries; an all-reference line is an error
    assert [(r["pos"], r["alt_base"], r["numsample"], r["samples"]) for r in rows] == [
        ("100", "G", "1", "S1"), ("300", "C", "2", "S1;S2")]
    assert rows[0]["vcfinfo.zygosity"] == "het" and rows[1]["vcfinfo.zygosity"] == "hom;het"
    assert (rows[0]["vcfinfo.alt_reads"], rows[0]["vcfinfo.tot_reads"], rows[0]["vcfinfo.af"]) == \
        ("5", "10", "0.5")
    assert "All samples have the reference genotype." in s.get(f"{oc.url}submit/jobs/{jid}/err").text
    # vcfreporter writes a line once all its ALTs are annotated: the first line never is
    vcf_out = s.get(f"{oc.url}submit/jobs/{jid}/reports/vcf").text.splitlines()
    assert vcf_out[-2].endswith("INFO\tFORMAT\tS1\tS2")
    assert [line.split("\t")[1] for line in vcf_out if not line.startswith("#")] == ["300"]


CRAVAT_FORMAT = [  # OpenCRAVAT's own text format -> chrom, pos, ref, alt, samples, tags
    ("chr10 8055656 + A T s3 var001", ("chr10", 8055656, "A", "T", "s3", "var001")),
    ("chr10\t121593817\t-\tA\tT\ts0", ("chr10", 121593817, "T", "A", "s0", "")),  # minus strand
    # trailing base trimmed first: POS kept; unnamed samples become "no-sample" once any
    # sample in the job is named (tagsampler)
    ("10 100 AA A", ("chr10", 100, "A", "-", "no-sample", "")),
    ("chr1 200 + A AA s1", ("chr1", 200, "-", "A", "s1", "")),
    ("chrX 300 + AC GT", ("chrX", 300, "AC", "GT", "no-sample", "")),
    ("chr2 400 + ACGN A", None),  # N is no base: the line is an error
]


def test_allele_conversion_from_cravat_format(oc):
    s = requests.Session()
    content = "".join(line + "\n" for line, _ in CRAVAT_FORMAT)
    jid = submit(s, oc.url, opts(reports=["tsv"]), name="in.txt", content=content).json()["id"]
    status, _ = wait_done(s, oc.url, jid)
    assert status["num_error_input"] == 1
    rows, _ = tsv_rows(s.get(f"{oc.url}submit/jobs/{jid}/reports/tsv").text)
    assert [(r["chrom"], int(r["pos"]), r["ref_base"], r["alt_base"], r["samples"], r["tags"])
            for r in rows] == [expected for _, expected in CRAVAT_FORMAT if expected]
    assert "ERROR:Invalid reference base" in s.get(f"{oc.url}submit/jobs/{jid}/err").text


def test_tsv_layout_and_annotations_match_live_annotate(oc, finished_vcf_job):
    s = requests.Session()
    jid = finished_vcf_job["id"]
    r = s.get(f"{oc.url}submit/jobs/{jid}/reports/tsv")
    assert r.headers["Content-Type"] == "text/tab-separated-values"
    assert r.headers["Content-Disposition"] == "attachment; filename=input.vcf.variant.tsv"
    lines = r.text.splitlines()
    assert lines[0] == '#title="OpenCRAVAT Report"'
    assert lines[1].startswith("#created=") and lines[2] == "#level=variant"
    assert lines[3] == f"#datasource=/opt/open-cravat/jobs/default/{jid}/input.vcf.sqlite"
    assert lines[4] == "#Column description. Column 0 uid=UID"
    rows, header = tsv_rows(r.text)
    assert header[: len(TSV_BASE_COLUMNS)] == TSV_BASE_COLUMNS
    # other groups ordered by their display names
    groups = list(dict.fromkeys(h.split(".")[0] for h in header[len(TSV_BASE_COLUMNS):]))
    assert groups == ["clinvar", "extra_vcf_info", "original_input", "vcfinfo", "gensvcdemo"]
    assert header[-3:] == ["gensvcdemo.score", "gensvcdemo.allele", "gensvcdemo.gc"]
    for row in rows:
        live = s.get(oc.url + "submit/annotate", params={
            "chrom": row["chrom"], "pos": row["pos"], "ref_base": row["ref_base"],
            "alt_base": row["alt_base"], "annotators": "gensvcdemo,clinvar"}).json()
        assert live["crx"]["hugo"] == row["hugo"] and live["crx"]["so"] == row["so"]
        if row["chrom"] == "chrM":  # jobs' annotators skip non-canonical chromosomes,
            assert row["gensvcdemo.score"] == "" and live["gensvcdemo"] is not None  # live ones don't
            continue
        assert float(row["gensvcdemo.score"]) == live["gensvcdemo"]["score"]
        assert row["gensvcdemo.allele"] == live["gensvcdemo"]["allele"]
        assert row["clinvar.sig"] == ((live["clinvar"] or {}).get("sig") or "")
    csv_r = s.post(f"{oc.url}submit/jobs/{jid}/reports/csv")
    assert csv_r.json() == "done"
    c = s.get(f"{oc.url}submit/jobs/{jid}/reports/csv")
    assert c.headers["Content-Type"] == "text/csv"
    assert [line for line in csv.reader(io.StringIO(c.text)) if not line[0].startswith("#")] == \
        [header] + [[row[h] for h in header] for row in rows]


def test_report_list_never_has_text(oc, finished_vcf_job):
    s = requests.Session()
    jid = finished_vcf_job["id"]
    listed = s.get(f"{oc.url}submit/jobs/{jid}/reports").json()
    assert "text" not in listed and {"tsv", "vcf"} <= set(listed)
    assert s.post(f"{oc.url}submit/jobs/{jid}/reports/text").json() == "done"
    assert "text" not in s.get(f"{oc.url}submit/jobs/{jid}/reports").json()
    text = s.get(f"{oc.url}submit/jobs/{jid}/reports/text")
    assert text.headers["Content-Disposition"] == "attachment; filename=input.vcf.tsv"
    assert text.text.startswith("#CRAVAT Report\n")
    assert s.post(f"{oc.url}submit/jobs/{jid}/reports/nonsense").json() == "done"
    assert error_body(s.get(f"{oc.url}submit/jobs/{jid}/reports/nonsense"))["msg"] == \
        "'NoneType' object is not iterable"
    assert error_body(s.get(f"{oc.url}submit/jobs/{jid}/reports/excel"))["msg"] == "Not Found"


def test_vcf_report_download(oc, finished_vcf_job):
    s = requests.Session()
    url = f"{oc.url}submit/jobs/{finished_vcf_job['id']}/reports/vcf"
    r = s.get(url)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/x-vcard"
    assert r.headers["Content-Disposition"] == "attachment; filename=input.vcf.vcf"
    assert r.headers["Accept-Ranges"] == "bytes" and r.headers["ETag"].startswith('"')
    lines = r.text.splitlines()
    assert lines[:2] == ["##fileformat=VCFv4.2", lines[1]] and lines[1].startswith("##OpenCRAVATFileDate=")
    assert lines[2] == '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">'
    assert '##INFO=<ID=OC_gensvcdemo__score,Number=A,Type=Float,Description="' in r.text
    assert "OC_base__uid" not in r.text and "OC_vcfinfo__" not in r.text
    body = [line.split("\t") for line in lines if not line.startswith("#")]
    # each input line once (the no-variant line never), INFO extended per ALT
    assert [b[:5] for b in body] == [line.split("\t")[:5] for line in
                                     finished_vcf_job["vcf"].splitlines()[4:-1]]
    assert body[0][7].startswith("DP=10;AF=0.25,0.5;OC_base__coding=Yes,Yes;")
    assert "OC_gensvcdemo__allele=chr1%3A1000%3AA>G,chr1%3A1000%3AA>T" in body[0][7]
    assert "OC_gensvcdemo__gc=1,.;" not in body[6][7] and body[6][4] == "AC,*"
    assert "OC_gensvcdemo__allele=chr5%3A601%3A->C,." in body[6][7]
    # Range, as aiohttp's FileResponse
    part = s.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == r.content[:10]
    assert part.headers["Content-Range"] == f"bytes 0-9/{len(r.content)}"
    tail = s.get(url, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == r.content[-5:]
    beyond = s.get(url, headers={"Range": f"bytes={len(r.content)}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(r.content)}"
    cached = s.get(url, headers={"If-None-Match": r.headers["ETag"]})
    assert cached.status_code == 304 and cached.content == b""


def test_report_header_lines_can_follow_tsvreporter_2_2(registered):
    with start_emulator("opencravat", time_scale=SCALE, report_header_lines=False) as em:
        s = requests.Session()
        jid = submit(s, em.url, opts(reports=["tsv"]), name="in.txt", content=SEED_LINE).json()["id"]
        wait_done(s, em.url, jid)
        text = s.get(f"{em.url}submit/jobs/{jid}/reports/tsv").text
        assert text.startswith("uid\tchrom\tpos\t")


# ---------------------------------------------------------------- server mode

def test_login_success_and_failure(oc_server):
    url = oc_server.url
    bad = requests.get(url + "server/login", headers=basic("admin", "wrong"))
    assert bad.status_code == 200 and bad.json() == "fail" and "Set-Cookie" not in bad.headers
    assert requests.get(url + "server/login").json() == "fail"
    assert requests.get(url + "server/login", headers={"Authorization": "Bearer x"}).json() == "fail"
    s = requests.Session()
    good = s.get(url + "server/login", headers=basic("admin", "admin"))
    assert good.json() == "success" and "AIOHTTP_SESSION" in s.cookies
    assert s.get(url + "server/checklogged").json() == {
        "logged": True, "email": "admin", "days_rem": -1, "admin": True}
    assert requests.get(url + "server/checklogged").json() == {
        "logged": False, "email": "", "days_rem": -1, "admin": False}
    assert s.get(url + "server/logout").json() == "success"
    assert s.get(url + "submit/jobs").json() == {"status": "notloggedin"}
    assert requests.get(url + "submit/servermode").json() == {"servermode": True}


def test_tokens_set_the_credentials(registered):
    with start_emulator("opencravat", time_scale=SCALE, tokens=["alice:s3cret"]) as em:
        assert requests.get(em.url + "submit/servermode").json() == {"servermode": True}
        assert requests.get(em.url + "server/login", headers=basic("admin", "admin")).json() == "fail"
        alice = requests.Session()
        assert alice.get(em.url + "server/login", headers=basic("alice", "s3cret")).json() == "success"
        jid = submit(alice, em.url, opts(reports=["tsv"]), name="in.txt", content=SEED_LINE).json()["id"]
        wait_done(alice, em.url, jid)
        assert getjob(alice, em.url, jid)["username"] == "alice"


def test_server_mode_needs_a_session_except_annotate(oc_server):
    url = oc_server.url
    s = requests.Session()
    s.get(url + "server/login", headers=basic("admin", "admin"))
    jid = submit(s, url, opts(), name="in.txt", content=SEED_LINE).json()["id"]
    wait_done(s, url, jid)
    anon = requests.Session()
    assert submit(anon, url, opts(), content=SEED_LINE).json() == {"status": "notloggedin"}
    assert anon.get(url + "submit/jobs").json() == {"status": "notloggedin"}
    assert error_body(anon.get(f"{url}submit/jobs/{jid}/status"))["msg"] == \
        "unsupported operand type(s) for +: 'NoneType' and 'str'"
    assert anon.get(f"{url}submit/jobs/{jid}/reports").json() == []
    assert anon.get(f"{url}submit/jobs/{jid}/log").text == "log file does not exist."
    assert error_body(anon.get(f"{url}submit/jobs/{jid}/reports/tsv"))["msg"] == \
        "'NoneType' object is not iterable"
    assert error_body(anon.get(url + "submit/getjobs", params={"ids": json.dumps([jid])}))["msg"] == \
        "list index out of range"
    assert error_body(anon.delete(f"{url}submit/jobs/{jid}"))["msg"].startswith("stat: path should be")
    live = anon.get(url + "submit/annotate", params={
        "chrom": "chr1", "pos": "1000", "ref_base": "A", "alt_base": "G", "annotators": "gensvcdemo"})
    assert live.json()["gensvcdemo"] == {"score": 0.02, "allele": "chr1:1000:A>G", "gc": 1}
    # the owner still has it
    assert s.get(f"{url}submit/jobs/{jid}/status").json()["status"] == "Finished"


# ---------------------------------------------------------------- exactly-once submission

def test_delay_after_fault_on_submit(oc):
    """The server acts on the POST, then holds the answer: a client that gives up never
    learns the id, but the job exists (and a blind retry would make a second one)."""
    before = set(requests.get(oc.url + "submit/jobs").json())
    requests.post(oc.root + "/_emulator/faults", json={
        "path": "/submit/submit", "method": "POST", "kind": "delay", "seconds": 1.0,
        "after": True, "count": 1}).raise_for_status()
    with pytest.raises(requests.exceptions.ReadTimeout):
        submit(requests.Session(), oc.url, opts(note="idem-key-123"), name="x.txt",
               content=SEED_LINE, timeout=0.3)
    (new,) = set(requests.get(oc.url + "submit/jobs").json()) - before
    job = getjob(requests.Session(), oc.url, new)
    assert job["note"] == "idem-key-123"  # findable by the note that carried the key
    time.sleep(0.8)
