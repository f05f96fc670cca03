"""The genome build over real HTTP: refused before anything is sent, or sent as the VCF says."""

from __future__ import annotations


import pytest
import requests

from helpers import isolated_env, read_json, run_gensvc, stats
from gensvc.emulators.server import start_emulator

CGI_EMAIL, CGI_TOKEN = "someone@example.org", "cgi-build-token-31c"
GRCH37 = "##contig=<ID=chr17,length=81195210>\n##contig=<ID=chr1,length=249250621>\n"
GRCH38 = "##reference=GRCh38\n##contig=<ID=chr1,length=248956422>\n"
RECORDS = (
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "chr17\t7675088\t.\tC\tT\t.\tPASS\t.\n"
    "chr1\t11785743\t.\tT\tC\t.\tPASS\t.\n"
)


def write_vcf(tmp_path, meta: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(f"##fileformat=VCFv4.2\n##run={name}\n{meta}{RECORDS}")
    return str(path)


def clean_env(tmp_path) -> dict:
    return isolated_env(tmp_path, GENSVC_LOG_LEVEL="INFO")


@pytest.fixture(scope="module")
def oc_server():
    with start_emulator("opencravat", time_scale=0.05) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def cgi_server():
    with start_emulator("cgi", tokens=[CGI_TOKEN], time_scale=0.02) as emulator:
        yield emulator


@pytest.fixture
def oc(oc_server):
    requests.delete(f"{oc_server.root}/_emulator/stats", timeout=5)
    return oc_server


@pytest.fixture
def cgi(cgi_server):
    requests.delete(f"{cgi_server.root}/_emulator/stats", timeout=5)
    return cgi_server


# -- Bravo freeze5 serves hg38 only


def frequencies(tmp_path, env, vcf, *extra):
    return run_gensvc(["bravo", "frequencies", "--input", f"vcf={vcf}", "--output", f"table={tmp_path / 'f.tsv'}",
                       "--log", tmp_path / "f.log", *extra], env)


def test_bravo_refuses_a_grch37_vcf_and_sends_nothing(tmp_path, env, bravo):
    done = frequencies(tmp_path, env, write_vcf(tmp_path, GRCH37, "b37.vcf"))
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "GRCh37" in line and "params assembly hg38" in line
    assert stats(bravo)["requests"] == 0
    assert not (tmp_path / "f.tsv").exists()


def test_bravo_takes_a_vcf_whose_header_is_overridden(tmp_path, env, bravo):
    done = frequencies(tmp_path, env, write_vcf(tmp_path, GRCH37, "b37.vcf"), "--assembly", "hg38")
    assert done.returncode == 0, done.stderr
    assert stats(bravo)["requests"] > 0
    assert "overrides the header" in (tmp_path / "f.log").read_text()


def test_bravo_takes_a_vcf_without_build_information_and_logs_it(tmp_path, env, bravo):
    done = frequencies(tmp_path, env, write_vcf(tmp_path, "", "plain.vcf"))
    assert done.returncode == 0, done.stderr
    assert "INFO gensvc.genome_build: genome build: not found" in (tmp_path / "f.log").read_text()


# -- OpenCRAVAT: jobs lift over hg19/hg18; live annotation is hg38 only


def oc_submit(tmp_path, oc, vcf, *extra):
    env = clean_env(tmp_path) | {"GENSVC_OPENCRAVAT_URL": oc.url, "GENSVC_OPENCRAVAT_BACKOFF": "0.05"}
    return run_gensvc(["opencravat", "submit", "--input", f"files={vcf}", "--annotators", "clinvar",
                       "--output", f"receipt={tmp_path / 'receipt.json'}", *extra], env)


def oc_job_assembly(oc, job_id: str) -> str:
    return requests.get(f"{oc.url}submit/jobs/{job_id}/status", timeout=5).json()["assembly"]


def test_opencravat_submit_sends_the_assembly_of_a_grch37_vcf(tmp_path, oc):
    done = oc_submit(tmp_path, oc, write_vcf(tmp_path, GRCH37, "b37.vcf"))
    assert done.returncode == 0, done.stderr
    receipt = read_json(tmp_path / "receipt.json")
    assert receipt["request"]["assembly"] == "hg19"
    assert oc_job_assembly(oc, receipt["job_id"]) == "hg19"


def test_opencravat_submit_given_assembly_wins(tmp_path, oc):
    done = oc_submit(tmp_path, oc, write_vcf(tmp_path, GRCH37, "given.vcf"), "--assembly", "hg38")
    assert done.returncode == 0, done.stderr
    assert oc_job_assembly(oc, read_json(tmp_path / "receipt.json")["job_id"]) == "hg38"


def test_opencravat_annotate_refuses_a_grch37_vcf_and_sends_nothing(tmp_path, oc):
    env = clean_env(tmp_path) | {"GENSVC_OPENCRAVAT_URL": oc.url}
    done = run_gensvc(["opencravat", "annotate", "--input", f"vcf={write_vcf(tmp_path, GRCH37, 'b37.vcf')}",
                       "--output", f"annotations={tmp_path / 'a.jsonl'}"], env)
    assert done.returncode == 2, done.stderr
    assert "GRCh37" in done.stderr and "params assembly hg38" in done.stderr
    assert stats(oc)["requests"] == 0


# -- CGI: hg19 unless told otherwise, so the VCF's own build matters most here


def cgi_submit(tmp_path, cgi, vcf, *extra):
    env = clean_env(tmp_path) | {"GENSVC_CGI_URL": cgi.url, "GENSVC_CGI_EMAIL": CGI_EMAIL,
                                 "GENSVC_CGI_TOKEN": CGI_TOKEN, "GENSVC_CGI_BACKOFF": "0.05"}
    return run_gensvc(["cgi", "submit", "--input", f"mutations={vcf}", "--cancer-type", "BRCA",
                       "--output", f"receipt={tmp_path / 'receipt.json'}", "--log", tmp_path / "cgi.log", *extra], env)


def cgi_job_reference(cgi, job_id: str) -> str:
    answer = requests.get(f"{cgi.url}/{job_id}", headers={"Authorization": f"{CGI_EMAIL} {CGI_TOKEN}"}, timeout=5)
    return answer.json()["metadata"]["reference"]


def test_cgi_submit_sends_the_reference_of_a_grch38_vcf(tmp_path, cgi):
    done = cgi_submit(tmp_path, cgi, write_vcf(tmp_path, GRCH38, "hg38.vcf"))
    assert done.returncode == 0, done.stderr
    receipt = read_json(tmp_path / "receipt.json")
    assert receipt["request"]["reference"] == "hg38"
    assert cgi_job_reference(cgi, receipt["job_id"]) == "hg38"


def test_cgi_submit_without_build_information_uses_hg19_and_logs_it(tmp_path, cgi):
    done = cgi_submit(tmp_path, cgi, write_vcf(tmp_path, "", "plain.vcf"))
    assert done.returncode == 0, done.stderr
    assert cgi_job_reference(cgi, read_json(tmp_path / "receipt.json")["job_id"]) == "hg19"
    assert "genome build: not found" in (tmp_path / "cgi.log").read_text()


def test_cgi_submit_refuses_a_build_it_does_not_serve_and_sends_nothing(tmp_path, cgi):
    done = cgi_submit(tmp_path, cgi, write_vcf(tmp_path, "##reference=chm13v2.0.fa\n", "t2t.vcf"))
    assert done.returncode == 2, done.stderr
    assert "CHM13" in done.stderr and "params reference" in done.stderr
    assert stats(cgi)["requests"] == 0
