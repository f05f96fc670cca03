"""VCF inputs in every operation that takes one: plain, bgzip or plain gzip read alike; a file
that is not a usable VCF refused in one line that says what it is, before anything is sent."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from helpers import REPO, read_tsv, run_gensvc, stats
from gensvc.emulators.server import start_emulator

CGI_EMAIL, CGI_TOKEN = "vcf-inputs@example.org", "vcf-inputs-cgi-token"
VCF = (
    "##fileformat=VCFv4.2\n"
    "##contig=<ID=22,length=50818468>\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "22\t30000146\t.\tC\tG,T\t50\tPASS\t.\n"
    "22\t30000235\t.\tG\tGT\t50\tPASS\t.\n"
    "22\t30000884\t.\tAGCCC\tA\t50\tPASS\t.\n"
)


@pytest.fixture(scope="module")
def oc_server():
    with start_emulator("opencravat", time_scale=0.2) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def cgi_server():
    with start_emulator("cgi", tokens=[CGI_TOKEN], time_scale=0.02, quota=100) as emulator:
        yield emulator


@pytest.fixture
def services(bravo, oc_server, cgi_server):
    for emulator in (oc_server, cgi_server):
        requests.delete(f"{emulator.root}/_emulator/faults", timeout=5)
        requests.delete(f"{emulator.root}/_emulator/stats", timeout=5)
    return [bravo, oc_server, cgi_server]


@pytest.fixture
def all_env(env, oc_server, cgi_server) -> dict:
    return env | {"GENSVC_OPENCRAVAT_URL": oc_server.url, "GENSVC_OPENCRAVAT_BACKOFF": "0.05",
                  "GENSVC_CGI_URL": cgi_server.url, "GENSVC_CGI_EMAIL": CGI_EMAIL, "GENSVC_CGI_TOKEN": CGI_TOKEN,
                  "GENSVC_CGI_BACKOFF": "0.05"}


def operation(name: str, vcf: Path, out: Path) -> list[str]:
    return {
        "bravo frequencies": ["bravo", "frequencies", "--input", f"vcf={vcf}", "--output", f"table={out / 't.tsv'}"],
        "opencravat annotate": ["opencravat", "annotate", "--input", f"vcf={vcf}", "--output", f"annotations={out / 'a.tsv'}"],
        "opencravat submit": ["opencravat", "submit", "--input", f"files={vcf}", "--output", f"receipt={out / 'r.json'}"],
        "cgi submit": ["cgi", "submit", "--input", f"mutations={vcf}", "--cancer-type", "BRCA",
                       "--output", f"receipt={out / 'c.json'}"],
        "merge annotations": ["merge", "annotations", "--input", f"vcf={vcf}", "--output", f"tsv={out / 'm.tsv'}"],
    }[name]


OPERATIONS = ["bravo frequencies", "opencravat annotate", "opencravat submit", "cgi submit", "merge annotations"]


def damaged_gzip() -> bytes:
    records = "".join(f"22\t{30000000 + i}\t.\tA\tG\t50\tPASS\tDP={i}\n" for i in range(20000))
    packed = gzip.compress((VCF + records).encode())
    return packed[: len(packed) // 2]


# name, content, what the one line must say
BAD = {
    "empty.vcf": (b"", "is empty"),
    "empty.vcf.gz": (gzip.compress(b""), "is empty"),
    "headerless.vcf": ("".join(VCF.splitlines(True)[3:]).encode(), "has no VCF header"),
    "headerless.vcf.gz": (gzip.compress("".join(VCF.splitlines(True)[3:]).encode()), "has no VCF header"),
    "notes.vcf": (b"sample\tdepth\nT1\t30\n", "is not a VCF"),
    "picture.vcf.gz": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "is not a VCF"),
    "nochrom.vcf": (b"##fileformat=VCFv4.2\n##source=x\n", "no #CHROM header line"),
    "damaged.vcf.gz": (damaged_gzip(), "damaged gzip"),
}


@pytest.mark.parametrize("name", OPERATIONS)
@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_file_that_is_not_a_usable_vcf_is_refused_in_one_line_saying_what_it_is(tmp_path, all_env, services, name, bad):
    content, says = BAD[bad]
    vcf = tmp_path / bad
    vcf.write_bytes(content)
    out = tmp_path / "out"
    done = run_gensvc(operation(name, vcf, out), all_env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert says in line and str(vcf) in line
    assert "pysam" not in line and "VCF/BCF format?" not in line  # pysam's own words say nothing useful
    assert sum(stats(emulator)["requests"] for emulator in services) == 0
    assert not out.exists() or not any(out.iterdir())


def write_plain_and_gzipped(tmp_path) -> tuple[Path, Path]:
    plain = tmp_path / "sample.vcf"
    plain.write_text(VCF)
    packed = tmp_path / "sample.vcf.gz"
    packed.write_bytes(gzip.compress(VCF.encode()))  # plain gzip, not bgzip: no BGZF blocks
    return plain, packed


def tables_from_plain_and_gzipped(tmp_path, env, command: str, table: str) -> list[list[dict]]:
    """``command``'s table from the same VCF, plain and gzipped (each must exit 0)."""
    tables = []
    for vcf in write_plain_and_gzipped(tmp_path):
        out = tmp_path / vcf.name.replace(".", "-")
        done = run_gensvc(operation(command, vcf, out), env)
        assert done.returncode == 0, done.stderr
        tables.append(read_tsv(out / table))
    return tables


def test_bravo_frequencies_reads_a_plain_gzip_vcf_as_its_plain_text(tmp_path, all_env, services):
    tables = tables_from_plain_and_gzipped(tmp_path, all_env, "bravo frequencies", "t.tsv")
    assert tables[0] == tables[1]
    assert len(tables[1]) == 4 and any(row["found"] == "true" for row in tables[1])


def test_opencravat_annotate_reads_a_plain_gzip_vcf_as_its_plain_text(tmp_path, all_env, services):
    tables = tables_from_plain_and_gzipped(tmp_path, all_env, "opencravat annotate", "a.tsv")
    assert tables[0] == tables[1] and len(tables[1]) == 4


def test_opencravat_submit_sends_a_plain_gzip_vcf_unpacked(tmp_path, all_env, services):
    _, packed = write_plain_and_gzipped(tmp_path)
    done = run_gensvc(operation("opencravat submit", packed, tmp_path / "out"), all_env)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "r.json").read_text())["job_id"]


@pytest.mark.parametrize("name", ["cgi submit", "merge annotations"])
def test_cgi_submit_and_merge_read_a_plain_gzip_vcf(tmp_path, all_env, services, name):
    _, packed = write_plain_and_gzipped(tmp_path)
    done = run_gensvc(operation(name, packed, tmp_path / "out"), all_env)
    assert done.returncode == 0, done.stderr


def test_a_record_pysam_cannot_parse_is_refused_with_its_place(tmp_path, all_env, services):
    vcf = tmp_path / "broken.vcf"
    vcf.write_text(VCF + "22\tnot-a-position\t.\tA\tG\t.\t.\t.\n")
    done = run_gensvc(operation("bravo frequencies", vcf, tmp_path / "out"), all_env)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert str(vcf) in line and "Traceback" not in done.stderr
    assert sum(stats(emulator)["requests"] for emulator in services) == 0


def test_cgi_submit_checks_a_vcf_without_importing_pysam(tmp_path, all_env, services):
    _, packed = write_plain_and_gzipped(tmp_path)
    script = (
        "import sys, runpy\n"
        f"sys.argv = ['wrapper.py', '--input', 'mutations={packed}', '--cancer-type', 'BRCA',"
        f" '--output', 'receipt={tmp_path / 'c.json'}']\n"
        "try:\n"
        f"    runpy.run_path('{REPO / 'wrappers' / 'cgi' / 'submit' / 'wrapper.py'}', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    print('exit', done.code, 'pysam' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=all_env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "exit 0 False", done.stderr
