"""The OpenCRAVAT and CGI emulators tell one story: both read gensvc/emulators/data/gene_model.tsv
(each in its own code), so for the demo's samples they name the same gene, agree on the
consequence and, for SNVs, on the protein change. Real HTTP on loopback with requests."""

from __future__ import annotations

import ast
import csv
import io
import json
import time
import zipfile
from pathlib import Path

import pytest
import requests

from gensvc.emulators import bravo_data, start_emulator

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / ".test" / "data").glob("*.vcf"))
GENE_MODEL = REPO / "gensvc" / "emulators" / "data" / "gene_model.tsv"
CGI_AUTH = {"Authorization": "model@example.org cgi-model-token"}


def agreed_consequences() -> dict[str, str]:
    """OpenCRAVAT's Sequence Ontology term -> CGI's consequence name, as the gene model's
    header agrees them ('#   a -> b, c -> d' lines after 'Consequence names')."""
    header = [line.lstrip("# ").strip() for line in GENE_MODEL.read_text().splitlines() if line.startswith("#")]
    listed = " ".join(header[header.index(next(h for h in header if h.startswith("Consequence names"))) + 1:])
    return dict(pair.strip().split(" -> ") for pair in listed.split(","))


SAME_CONSEQUENCE = agreed_consequences()


def tsv(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def opencravat_rows(url: str, vcf: Path) -> list[dict]:
    """The variant TSV report of an OpenCRAVAT job over `vcf` (one job per clock second)."""
    second = int(time.time())
    while int(time.time()) == second:  # job ids have one-second resolution
        time.sleep(0.02)
    options = {"annotators": [], "reports": ["tsv"], "assembly": "hg38", "note": "gene model"}
    answer = requests.post(url + "submit/submit", files={"file_0": (vcf.name, vcf.read_bytes())},
                           data={"options": json.dumps(options)}, timeout=30)
    job = answer.json()["id"]
    deadline = time.monotonic() + 60
    while (requests.get(f"{url}submit/jobs/{job}/status", timeout=10).json() or {}).get("status") != "Finished":
        assert time.monotonic() < deadline, "the OpenCRAVAT job did not finish"
        time.sleep(0.05)
    return tsv(requests.get(f"{url}submit/jobs/{job}/reports/tsv", timeout=30).text)


def cgi_rows(url: str, vcf: Path) -> list[dict]:
    """alterations.tsv of a CGI job over `vcf`."""
    answer = requests.post(url, headers=CGI_AUTH, files={"mutations": (vcf.name, vcf.read_bytes())},
                           data={"cancer_type": "BRCA", "reference": "hg38"}, timeout=30)
    job = answer.json()
    deadline = time.monotonic() + 60
    while requests.get(f"{url}/{job}", headers=CGI_AUTH, timeout=10).json()["status"] != "Done":
        assert time.monotonic() < deadline, "the CGI job did not finish"
        time.sleep(0.05)
    archive = requests.get(f"{url}/{job}", headers=CGI_AUTH, params={"action": "download"}, timeout=30)
    with zipfile.ZipFile(io.BytesIO(archive.content)) as result:
        return tsv(result.read("alterations.tsv").decode())


def cgi_place(row: dict) -> tuple:
    """(chrom, first changed base, ref, alt): CGI keeps an insertion at its anchor base."""
    pos = int(row["POSITION"]) + (1 if row["REF"] == "-" else 0)
    return row["CHROMOSOME"], pos, row["REF"], row["ALT"]


@pytest.fixture(scope="module")
def both_reports():
    """Per demo sample, OpenCRAVAT's rows and CGI's rows by place."""
    with start_emulator("opencravat", time_scale=0.05) as oc, \
            start_emulator("cgi", tokens=["cgi-model-token"], time_scale=0.005) as cgi:
        reports = {}
        for vcf in SAMPLES:
            reports[vcf.stem] = (opencravat_rows(oc.url, vcf), {cgi_place(r): r for r in cgi_rows(cgi.url, vcf)})
        yield reports


def test_both_emulators_name_the_same_gene_and_agree_on_the_consequence_of_every_demo_variant(both_reports):
    assert set(both_reports) == {"normal", "tumour"}
    for sample, (oc_rows, cgi_by_place) in both_reports.items():
        assert len(oc_rows) > 50, sample
        modelled = 0
        for oc in oc_rows:
            place = (oc["chrom"].removeprefix("chr"), int(oc["pos"]), oc["ref_base"], oc["alt_base"])
            cgi = cgi_by_place[place]
            where = f"{sample} {place}"
            assert oc["hugo"] == cgi["CGI-Gene"] != "", where
            assert SAME_CONSEQUENCE[oc["so"]] == cgi["CGI-Consequence"], where
            # the same transcript, and for an SNV the same protein change
            assert cgi["CGI-HGVSc"].startswith(oc["transcript"] + ":"), where
            if cgi["CGI-Type"] == "SNV":
                assert cgi["CGI-HGVSp"].split(":", 1)[1] == oc["achange"], where
                assert cgi["CGI-HGVSc"].split(":", 1)[1] == oc["cchange"], where
            modelled += not oc["hugo"].startswith("GS")
        assert modelled > 40, sample  # most demo variants lie in the model's genes


def test_the_variant_that_once_contradicted_itself_is_one_synonymous_mthfr_change(both_reports):
    # chr1:11785743 T>C: OpenCRAVAT said GS1_11 synonymous while CGI said EPHA2 stop_gained
    oc_rows, cgi_by_place = both_reports["tumour"]
    (oc,) = [r for r in oc_rows if (r["chrom"], r["pos"], r["alt_base"]) == ("chr1", "11785743", "C")]
    cgi = cgi_by_place[("1", 11785743, "T", "C")]
    assert (oc["hugo"], cgi["CGI-Gene"]) == ("MTHFR", "MTHFR")
    assert SAME_CONSEQUENCE[oc["so"]] == cgi["CGI-Consequence"]
    # MTHFR is on the minus strand in the model: both read the change on it (T>C is A>G)
    assert oc["cchange"].endswith("A>G") and cgi["CGI-HGVSc"].endswith("A>G")


def test_every_consequence_class_of_the_model_occurs_in_the_demo(both_reports):
    seen = {oc["so"] for oc_rows, _ in both_reports.values() for oc in oc_rows}
    assert {"missense_variant", "synonymous_variant", "stop_gained", "frameshift_elongation",
            "frameshift_truncation", "complex_substitution"} <= seen


def test_the_agreed_consequence_names_cover_every_class_of_both_emulators():
    assert SAME_CONSEQUENCE == {
        "missense_variant": "missense_variant", "synonymous_variant": "synonymous_variant",
        "stop_gained": "stop_gained", "inframe_insertion": "inframe_insertion",
        "inframe_deletion": "inframe_deletion", "frameshift_elongation": "frameshift_variant",
        "frameshift_truncation": "frameshift_variant", "complex_substitution": "protein_altering_variant"}


def test_the_gene_model_places_genes_where_the_bravo_emulator_does():
    lines = [line for line in GENE_MODEL.read_text().splitlines() if not line.startswith("#")]
    model = list(csv.DictReader(lines, delimiter="\t"))
    bravo = {gene.name: gene for gene in bravo_data.GENES}
    shared = [gene for gene in model if gene["symbol"] in bravo]
    assert len(shared) >= 8
    for gene in shared:
        known = bravo[gene["symbol"]]
        assert (gene["chrom"], int(gene["start"]), int(gene["end"]), gene["strand"]) == \
            (known.chrom, known.start, known.stop, known.strand)


def test_the_emulators_share_data_but_no_code():
    emulators = REPO / "gensvc" / "emulators"
    for path in sorted(emulators.glob("opencravat*.py")) + sorted(emulators.glob("cgi*.py")):
        other = "cgi" if path.name.startswith("opencravat") else "opencravat"
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert other not in name and "services" not in name, f"{path.name} imports {name}"
