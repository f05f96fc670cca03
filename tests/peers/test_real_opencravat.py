"""The seed's OpenCRAVAT web-API flow against the real server (open-cravat 3.2.4) on loopback.

These tests pin down what the real server does (see tests/peers/README.md), so that the
emulator and the client can be checked against it. They need the venv made by
tests/peers/setup_opencravat.sh (REPO/.venv-oc).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from pathlib import Path

import pytest
import requests

from peers.opencravat_server import start_opencravat

pytestmark = pytest.mark.slow

ANNOTATOR = "gensvcdemo"
# A multiallelic SNV site, an insertion, a deletion, an MNP, and both chr1 / 1 naming.
VCF = (
    "##fileformat=VCFv4.2\n"
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "chr1\t1000\trs1\tA\tG,T\t50\tPASS\tDP=10\n"
    "1\t2000\t.\tC\tCAT\t.\t.\t.\n"
    "chr2\t3000\tdel1\tGTA\tG\t30\tq10\tDP=5\n"
    "chr3\t4003\t.\tAC\tGT\t.\t.\t.\n"
)
# (chrom, pos, ref_base, alt_base) as OpenCRAVAT reports them, in uid order.
EXPECTED_VARIANTS = [
    ("chr1", 1000, "A", "G"),
    ("chr1", 1000, "A", "T"),
    ("chr1", 2001, "-", "AT"),
    ("chr2", 3001, "TA", "-"),
    ("chr3", 4003, "AC", "GT"),
]
KNOWN_STATUS_PREFIXES = ("Submitted", "Starting", "Started ", "Running ", "Finished")
TSV_BASE_COLUMNS = ["uid", "chrom", "pos", "ref_base", "alt_base", "note_variant", "coding", "hugo",
                    "transcript", "so", "exonno", "cchange", "achange", "all_mappings", "gposend",
                    "numsample", "samples", "tags"]


def demo_annotation(chrom, pos, ref, alt):
    """The formulas of tests/peers/opencravat_modules/annotators/gensvcdemo."""
    return {
        "score": ((int(pos) * 31 + len(ref) * 7 + len(alt) * 13) % 1000) / 1000,
        "allele": f"{chrom}:{pos}:{ref}>{alt}",
        "gc": sum(ref.count(b) + alt.count(b) for b in "GC"),
    }


_last_submit_second = [0]


def submit(session, url, options, name="input.vcf", content=VCF):
    """POST /submit/submit; waits for a new clock second first (job ids have 1 s resolution)."""
    while int(time.time()) <= _last_submit_second[0]:
        time.sleep(0.05)
    _last_submit_second[0] = int(time.time())
    return session.post(url + "submit/submit", files={"file_0": (name, content)},
                        data={"options": json.dumps(options)}, timeout=30)


def wait_finished(session, url, job_id, timeout=60.0, allow_500_first=False):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = session.get(f"{url}submit/jobs/{job_id}/status", timeout=10)
        if r.status_code == 500 and allow_500_first and not seen:
            time.sleep(0.1)          # no status file yet: only `oc run` writes one
            continue
        assert r.status_code == 200, r.text
        if r.json() is None:
            # Race in the real server: it re-reads the status file while `oc run` rewrites
            # it, gets an empty document and answers 200 with the JSON body `null`.
            time.sleep(0.05)
            continue
        status = r.json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("Finished", "Error"):
            return r.json(), seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not done after {timeout}s; statuses {seen}")


def options(**extra):
    opts = {"annotators": [ANNOTATOR], "reports": ["tsv", "vcf"], "assembly": "hg38", "note": "gensvc peer test"}
    opts.update(extra)
    return opts


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def oc(tmp_path_factory):
    with start_opencravat(tmp_path_factory.mktemp("oc-personal")) as server:
        yield server


@pytest.fixture(scope="module")
def finished_job(oc):
    s = requests.Session()
    r = submit(s, oc.url, options())
    assert r.status_code == 200, r.text
    body = r.json()
    status, seen = wait_finished(s, oc.url, body["id"])
    return {"submit": body, "status": status, "seen": seen, "id": body["id"]}


def test_submit_answer_and_status_sequence(finished_job):
    body = finished_job["submit"]
    assert body["status"] == {"status": "Submitted"}          # nested, unlike /status
    assert body["run_name"] == "input.vcf"
    assert body["orig_input_fname"] == ["input.vcf"]
    assert body["annotators"] == [ANNOTATOR] and body["reports"] == ["tsv", "vcf"]
    assert len(body["id"]) == 13 and body["id"][6] == "-" and body["id"].replace("-", "").isdigit()
    assert finished_job["status"]["status"] == "Finished"
    assert finished_job["seen"][0] == "Submitted" and finished_job["seen"][-1] == "Finished"
    assert all(s.startswith(KNOWN_STATUS_PREFIXES) for s in finished_job["seen"]), finished_job["seen"]
    st = finished_job["status"]
    assert st["num_input_var"] == 4 and st["num_unique_var"] == 5 and st["num_error_input"] == 0
    assert st["open_cravat_version"] == "3.2.4"


def test_reports_list_generate_and_download(oc, finished_job):
    url, jid = oc.url, finished_job["id"]
    r = requests.get(f"{url}submit/jobs/{jid}/reports", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert sorted(r.json()) == ["tsv", "vcf"]

    r = requests.post(f"{url}submit/jobs/{jid}/reports/csv", timeout=60)
    assert r.status_code == 200 and r.json() == "done"
    assert sorted(requests.get(f"{url}submit/jobs/{jid}/reports", timeout=10).json()) == ["csv", "tsv", "vcf"]

    tsv = requests.get(f"{url}submit/jobs/{jid}/reports/tsv", timeout=10)
    assert tsv.status_code == 200
    assert tsv.headers["Content-Type"] == "text/tab-separated-values"
    assert tsv.headers["Content-Disposition"] == "attachment; filename=input.vcf.variant.tsv"
    rows = list(csv.reader(io.StringIO(tsv.text), delimiter="\t"))
    header, data = rows[0], rows[1:]
    assert header[: len(TSV_BASE_COLUMNS)] == TSV_BASE_COLUMNS
    assert header[-3:] == [f"{ANNOTATOR}.score", f"{ANNOTATOR}.allele", f"{ANNOTATOR}.gc"]
    got = [dict(zip(header, row)) for row in data]
    assert [(g["chrom"], int(g["pos"]), g["ref_base"], g["alt_base"]) for g in got] == EXPECTED_VARIANTS
    assert [g["uid"] for g in got] == ["1", "2", "3", "4", "5"]
    for g in got:
        want = demo_annotation(g["chrom"], g["pos"], g["ref_base"], g["alt_base"])
        assert float(g[f"{ANNOTATOR}.score"]) == pytest.approx(want["score"])
        assert g[f"{ANNOTATOR}.allele"] == want["allele"]
        assert int(g[f"{ANNOTATOR}.gc"]) == want["gc"]
    assert [g["so"] for g in got] == ["missense_variant", "missense_variant", "frameshift_elongation",
                                      "frameshift_truncation", "complex_substitution"]
    assert [g["tags"] for g in got] == ["rs1", "rs1", "", "del1", ""]

    vcf = requests.get(f"{url}submit/jobs/{jid}/reports/vcf", timeout=10)
    assert vcf.status_code == 200
    assert vcf.headers["Content-Type"] == "text/x-vcard"
    assert vcf.headers["Content-Disposition"] == "attachment; filename=input.vcf.vcf"
    lines = vcf.text.splitlines()
    assert lines[0] == "##fileformat=VCFv4.2"
    assert f'##INFO=<ID=OC_{ANNOTATOR}__score,Number=A,Type=Float,Description="' in vcf.text
    body = [line for line in lines if not line.startswith("#")]
    assert len(body) == 4                                         # one line per input record
    assert body[0].split("\t")[4] == "G,T" and f"OC_{ANNOTATOR}__allele=chr1%3A1000%3AA>G,chr1%3A1000%3AA>T" in body[0]

    csv_r = requests.get(f"{url}submit/jobs/{jid}/reports/csv", timeout=10)
    assert csv_r.headers["Content-Type"] == "text/csv"
    assert csv_r.headers["Content-Disposition"] == "attachment; filename=input.vcf.variant.csv"
    assert list(csv.reader(io.StringIO(csv_r.text))) == rows


def test_range_request_on_report(oc, finished_job):
    r = requests.get(f"{oc.url}submit/jobs/{finished_job['id']}/reports/tsv",
                     headers={"Range": "bytes=0-9"}, timeout=10)
    assert r.status_code == 206
    assert r.headers["Content-Range"].startswith("bytes 0-9/")
    assert r.content == b"uid\tchrom\t"


def test_getjobs_jobs_and_log(oc, finished_job):
    jid = finished_job["id"]
    r = requests.get(oc.url + "submit/getjobs", params={"ids": json.dumps([jid])}, timeout=10)
    assert r.status_code == 200
    (job,) = r.json()
    assert job["status"] == "Finished" and job["username"] == "default" and job["viewable"] is True
    assert {"id", "status", "reports", "annotators", "note", "assembly", "db_path", "run_name",
            "submission_time", "num_input_var", "result_available", "reports_being_generated"} <= set(job)
    assert jid in requests.get(oc.url + "submit/jobs", timeout=10).json()
    log = requests.get(f"{oc.url}submit/jobs/{jid}/log", timeout=10)
    assert log.status_code == 200 and log.headers["Content-Type"].startswith("text/plain")
    assert "/oc run " in log.text and f"-a {ANNOTATOR}" in log.text


def test_live_annotate(oc):
    r = requests.get(oc.url + "submit/annotate", timeout=30, params={
        "chrom": "chr7", "pos": "140753336", "ref_base": "A", "alt_base": "T", "annotators": ANNOTATOR})
    assert r.status_code == 200
    body = r.json()
    assert body[ANNOTATOR] == demo_annotation("chr7", 140753336, "A", "T")
    assert body["crx"]["uid"] == "" and body["crx"]["pos"] == 140753336 and body["crx"]["hugo"] == "GS7_140"
    bad = requests.get(oc.url + "submit/annotate", params={"chrom": "chr7", "pos": "1"}, timeout=10)
    assert bad.status_code == 500 and json.loads(bad.text) == {"status": "error", "msg": "'ref_base'"}


# SNVs at each codon base on both strands, indels, an MNP, a filler gene and chrM
MAPPED = [("chr1", 11785743, "T", "C"), ("chr1", 11785744, "G", "A"), ("chr1", 11785745, "C", "A"),
          ("chr22", 19941740, "C", "T"), ("chr22", 19941741, "A", "G"), ("chr17", 7675088, "AC", "GT"),
          ("chr1", 11790002, "-", "GATTACA"), ("chrX", 154850002, "TAGCA", "-"),
          ("chr7", 140753336, "A", "T"), ("chrM", 100, "A", "G")]


def test_the_stand_in_mapper_follows_the_shared_gene_model_as_the_emulator_does(oc):
    from gensvc.emulators.opencravat_mapper import map_variant

    for chrom, pos, ref, alt in MAPPED:
        r = requests.get(oc.url + "submit/annotate", timeout=30, params={
            "chrom": chrom, "pos": str(pos), "ref_base": ref, "alt_base": alt, "annotators": ANNOTATOR})
        crx = r.json()["crx"]
        want = map_variant(chrom, pos, ref, alt)
        assert {k: crx.get(k) for k in want} == want, (chrom, pos, ref, alt)


def test_missing_note_is_500_but_the_job_still_runs(oc):
    s = requests.Session()
    before = set(s.get(oc.url + "submit/jobs", timeout=10).json())
    opts = options()
    del opts["note"]
    r = submit(s, oc.url, opts)
    assert r.status_code == 500
    assert r.headers["Content-Type"].startswith("text/plain")
    assert json.loads(r.text)["msg"] == "cannot access local variable 'note' where it is not associated with a value"
    (ghost,) = set(s.get(oc.url + "submit/jobs", timeout=10).json()) - before
    # The handler failed after queueing the job and before writing its status file:
    # /status answers 500 and getjobs says Error until `oc run` starts, then it runs normally.
    (early,) = s.get(oc.url + "submit/getjobs", params={"ids": json.dumps([ghost])}, timeout=10).json()
    assert early["status"] in ("Error", "Starting", "Finished") or early["status"].startswith(KNOWN_STATUS_PREFIXES)
    status, _ = wait_finished(s, oc.url, ghost, allow_500_first=True)
    assert status["status"] == "Finished" and status["note"] == ""


@pytest.mark.parametrize("bad", [{"annotators": ["nosuchannotator"]}, {"assembly": "hg99"},
                                 {"reports": ["pdf"]}, {"forcedinputformat": "maf"}],
                         ids=["annotator", "assembly", "reporter", "format"])
def test_invalid_options_stay_submitted_and_abort(oc, bad):
    s = requests.Session()
    r = submit(s, oc.url, options(**bad))
    assert r.status_code == 200 and r.json()["status"] == {"status": "Submitted"}
    jid = r.json()["id"]
    deadline = time.monotonic() + 30
    while True:
        (job,) = s.get(oc.url + "submit/getjobs", params={"ids": json.dumps([jid])}, timeout=10).json()
        if job["status"] == "Aborted" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert job["status"] == "Aborted"
    assert s.get(f"{oc.url}submit/jobs/{jid}/status", timeout=10).json()["status"] == "Submitted"
    assert s.get(f"{oc.url}submit/jobs/{jid}/log", timeout=10).text == "log file does not exist."
    assert s.get(f"{oc.url}submit/jobs/{jid}/reports", timeout=10).json() == []


def test_delete_job(oc):
    s = requests.Session()
    r = submit(s, oc.url, options(reports=["tsv"]))
    jid = r.json()["id"]
    wait_finished(s, oc.url, jid)
    d = s.delete(f"{oc.url}submit/jobs/{jid}", timeout=30)
    assert d.status_code == 200 and d.content == b""
    assert not oc.job_dir(jid).exists()
    st = s.get(f"{oc.url}submit/jobs/{jid}/status", timeout=10)
    assert st.status_code == 500 and "msg" in json.loads(st.text)
    (job,) = s.get(oc.url + "submit/getjobs", params={"ids": json.dumps([jid])}, timeout=10).json()
    assert job["status"] == "Error"
    assert s.get(f"{oc.url}submit/jobs/{jid}/reports", timeout=10).json() == []
    assert s.get(f"{oc.url}submit/jobs/{jid}/reports/tsv", timeout=10).status_code == 500


@pytest.fixture(scope="module")
def oc_multi(tmp_path_factory):
    with start_opencravat(tmp_path_factory.mktemp("oc-multi"), multiuser=True) as server:
        yield server


def test_multiuser_login(oc_multi):
    url = oc_multi.url
    assert requests.get(url + "submit/servermode", timeout=10).json() == {"servermode": True}
    bad = requests.Session().get(url + "server/login", headers=basic("admin", "wrong"), timeout=10)
    assert bad.status_code == 200 and bad.json() == "fail" and "Set-Cookie" not in bad.headers
    none = requests.get(url + "server/login", timeout=10)
    assert none.status_code == 200 and none.json() == "fail"
    s = requests.Session()
    good = s.get(url + "server/login", headers=basic("admin", "admin"), timeout=10)
    assert good.status_code == 200 and good.json() == "success"
    assert "AIOHTTP_SESSION" in s.cookies
    assert s.get(url + "server/checklogged", timeout=10).json() == {
        "logged": True, "email": "admin", "days_rem": -1, "admin": True}


def test_multiuser_needs_login_except_annotate(oc_multi):
    url = oc_multi.url
    anon = requests.Session()
    r = submit(anon, url, options())
    assert r.status_code == 200 and r.json() == {"status": "notloggedin"}
    assert anon.get(url + "submit/jobs", timeout=10).json() == {"status": "notloggedin"}
    a = anon.get(url + "submit/annotate", timeout=30, params={
        "chrom": "chr1", "pos": "1000", "ref_base": "A", "alt_base": "G", "annotators": ANNOTATOR})
    assert a.status_code == 200 and a.json()[ANNOTATOR] == demo_annotation("chr1", 1000, "A", "G")


def test_multiuser_admin_job_flow(oc_multi):
    url = oc_multi.url
    s = requests.Session()
    assert s.get(url + "server/login", headers=basic("admin", "admin"), timeout=10).json() == "success"
    r = submit(s, url, options())
    assert r.status_code == 200, r.text
    jid = r.json()["id"]
    status, _ = wait_finished(s, url, jid)
    assert status["status"] == "Finished"
    assert oc_multi.job_dir(jid, "admin").is_dir()
    assert sorted(s.get(f"{url}submit/jobs/{jid}/reports", timeout=10).json()) == ["tsv", "vcf"]
    tsv = s.get(f"{url}submit/jobs/{jid}/reports/tsv", timeout=10)
    assert tsv.status_code == 200 and tsv.text.startswith("uid\tchrom\tpos\t")
    # Without the session cookie the same job is not reachable (errors, not 401/403).
    anon = requests.Session()
    assert anon.get(f"{url}submit/jobs/{jid}/status", timeout=10).status_code == 500
    assert anon.get(f"{url}submit/jobs/{jid}/reports", timeout=10).json() == []
    assert s.delete(f"{url}submit/jobs/{jid}", timeout=30).status_code == 200
