"""merge annotations: sources made by the emulators through our own CLI, the merge run through
the CLI and the Snakemake wrapper, values checked against the emulators' ground truth."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pysam
import pytest

from helpers import BRAVO_TOKEN, REPO, isolated_env, read_json, run_gensvc
from gensvc.emulators.bravo_data import variants_in
from gensvc.emulators.cgi_results import Alteration, interpret, normalise
from gensvc.emulators.opencravat_converter import standardize_pos_ref_alt, trim_vcf_alleles
from gensvc.emulators.opencravat_mapper import map_variant
from gensvc.emulators.server import start_emulator

CGI_EMAIL, CGI_TOKEN = "merge@example.org", "merge-test-cgi-token"
HEADER = (
    "##fileformat=VCFv4.2\n"
    "##source=gensvc merge test\n"
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">\n'
    '##INFO=<ID=END,Number=1,Type=Integer,Description="End position">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tTUMOUR\n"
)
# (chrom, pos, ref, alts, genotype, info): Bravo knows most of these (see bravo_data)
RECORDS = [
    ("1", 11785002, "T", "G", "0/1", "DP=12"),  # SNV, no chr
    ("1", 11785045, "A", "G,C", "0/1", "DP=20"),  # multiallelic; only G is called, OpenCRAVAT skips C
    ("chr22", 30000146, "C", "G,T", "1/2", "."),  # multiallelic, both known to Bravo, chr
    ("chr22", 30000235, "G", "GT", "0/1", "DP=7"),  # insertion
    ("chr22", 30000300, "A", "<DEL>", "0/1", "SVTYPE=DEL;END=30000400"),  # no source has a value
    ("chr22", 30000623, "TAT", "T", "0/1", "DP=9"),  # deletion
    ("chr22", 30000623, "TATG", "TG", "0/1", "DP=9"),  # the same deletion, longer shared suffix
    ("chr22", 30000700, "AC", "GT", "0/1", "."),  # MNP
    ("chr22", 30000884, "AGCCC", "A", "0/1", "DP=3"),  # deletion
    ("chr22", 30000886, "C", "T,*", "1/2", "."),  # a spanning deletion allele
]


def vcf_text(records=RECORDS) -> str:
    return HEADER + "".join(
        f"{c}\t{p}\t.\t{r}\t{a}\t50\tPASS\t{info}\tGT\t{gt}\n" for c, p, r, a, gt, info in records)


def alts_of(records=RECORDS):
    return [(c, p, r, alt) for c, p, r, alts, _, _ in records for alt in alts.split(",")]


# ---- ground truth, from the emulators ---------------------------------------------------------


def bravo_truth(chrom, pos, ref, alt) -> dict | None:
    """Bravo's record for an ALT, found the way Bravo spells variants (shared suffix trimmed)."""
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    found = [v for v in variants_in(chrom.removeprefix("chr"), pos, pos) if (v["ref"], v["alt"]) == (ref, alt)]
    return found[0] if found else None


def oc_truth(chrom, pos, ref, alt, genotype="0/1", index=1) -> dict | None:
    """The gene mapper's values for an ALT, normalised as OpenCRAVAT's converter does; None for
    the ALTs it drops (symbolic, '*', not in the sample's genotype)."""
    if alt.startswith("<") or alt == "*" or str(index) not in genotype.split("/"):
        return None
    pos, ref, alt = trim_vcf_alleles(pos, ref, alt)
    pos, ref, alt = standardize_pos_ref_alt(pos, ref, alt)
    return map_variant(chrom if chrom.startswith("chr") else f"chr{chrom}", pos, ref, alt)


def cgi_truth(chrom, pos, ref, alt):
    if alt.startswith("<") or alt == "*":
        return None
    npos, nref, nalt = normalise(pos, ref, alt)
    return interpret(Alteration("input01_1", "input01", "mutation", {}, chrom.removeprefix("chr"), npos, nref, nalt))


# ---- the sources, made once by the emulators through our CLI -----------------------------------


@pytest.fixture(scope="module")
def made(tmp_path_factory, bravo_server):
    """vcf, bravo, opencravat (+ status) and cgi files for RECORDS, as the other steps write them."""
    root = tmp_path_factory.mktemp("merge-sources")
    vcf = root / "sample.vcf"
    vcf.write_text(vcf_text())
    with start_emulator("opencravat", time_scale=0.2) as oc, \
            start_emulator("cgi", tokens=[CGI_TOKEN], time_scale=0.02) as cgi:
        env = _env(root, {"GENSVC_BRAVO_URL": bravo_server.url, "GENSVC_BRAVO_TOKEN": BRAVO_TOKEN,
                          "GENSVC_OPENCRAVAT_URL": oc.url, "GENSVC_CGI_URL": cgi.url,
                          "GENSVC_CGI_EMAIL": CGI_EMAIL, "GENSVC_CGI_TOKEN": CGI_TOKEN})
        steps = [
            ["bravo", "frequencies", "--input", f"vcf={vcf}", "--output", f"table={root / 'sample.bravo.tsv'}"],
            ["opencravat", "submit", "--input", f"files={vcf}", "--annotators", "clinvar,gnomad3", "--reports", "tsv",
             "--output", f"receipt={root / 'oc.receipt.json'}"],
            ["opencravat", "poll", "--input", f"receipt={root / 'oc.receipt.json'}", "--first-wait", "0.3",
             "--max-wait", "1", "--timeout", "120", "--output", f"status={root / 'oc.status.json'}"],
            ["opencravat", "report", "--input", f"receipt={root / 'oc.receipt.json'}",
             "--output", f"tsv={root / 'sample.opencravat.tsv'}"],
            ["cgi", "submit", "--input", f"mutations={vcf}", "--cancer-type", "BRCA", "--reference", "GRCh38",
             "--output", f"receipt={root / 'cgi.receipt.json'}"],
            ["cgi", "poll", "--input", f"receipt={root / 'cgi.receipt.json'}", "--first-wait", "0.2",
             "--max-wait", "0.5", "--timeout", "60", "--output", f"status={root / 'cgi.status.json'}"],
            ["cgi", "download", "--input", f"receipt={root / 'cgi.receipt.json'}",
             "--output", f"alterations={root / 'sample.alterations.tsv'}",
             "--output", f"summary={root / 'cgi.summary.txt'}"],  # the summary names CGI's version
        ]
        for args in steps:
            done = run_gensvc(args, env)
            assert done.returncode == 0, f"{args[:2]}: {done.stderr}"
    return {"root": root, "vcf": vcf, "bravo": root / "sample.bravo.tsv", "opencravat": root / "sample.opencravat.tsv",
            "opencravat_status": root / "oc.status.json", "cgi": root / "sample.alterations.tsv",
            "oc_job": read_json(root / "oc.receipt.json")["job_id"], "cgi_job": read_json(root / "cgi.receipt.json")["job_id"]}


def _env(root: Path, extra: dict) -> dict:
    return isolated_env(root, GENSVC_BRAVO_BACKOFF="0.05", GENSVC_OPENCRAVAT_BACKOFF="0.05",
                        GENSVC_CGI_BACKOFF="0.05", **extra)


def merge(out: Path, inputs: dict, *extra, tbi=True, tsv=True):
    """`gensvc merge annotations` in a fresh process; outputs out/merged.vcf.gz (+ .tbi) and out/merged.tsv."""
    out.mkdir(parents=True, exist_ok=True)
    args = ["merge", "annotations"]
    for name, path in inputs.items():
        args += ["--input", f"{name}={path}"]
    args += ["--output", f"vcf={out / 'merged.vcf.gz'}"]
    if tbi:
        args += ["--output", f"tbi={out / 'merged.vcf.gz.tbi'}"]
    if tsv:
        args += ["--output", f"tsv={out / 'merged.tsv'}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENSVC_")}
    return run_gensvc([*args, *extra], env)


def all_inputs(made) -> dict:
    return {name: made[name] for name in ("vcf", "opencravat", "opencravat_status", "bravo", "cgi")}


@pytest.fixture(scope="module")
def merged(made, tmp_path_factory):
    out = tmp_path_factory.mktemp("merged")
    done = merge(out, all_inputs(made))
    assert done.returncode == 0, done.stderr
    return out


def records_of(path: Path) -> list[pysam.VariantRecord]:
    with pysam.VariantFile(str(path)) as vcf:
        return [record for record in vcf]


def body_lines(path: Path) -> list[str]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        return [line.rstrip("\n") for line in handle if not line.startswith("#")]


def header_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as handle:
        return [line.rstrip("\n") for line in handle if line.startswith("##")]


def info_value(record, name: str, index: int):
    """One ALT's value of an INFO field, percent-decoded; None when missing."""
    if name not in record.info:
        return None
    value = record.info[name]
    value = value[index] if isinstance(value, tuple) else value
    if value in (None, "."):
        return None
    return unquote(value) if isinstance(value, str) else value


# ---- the tests -------------------------------------------------------------------------------------


def test_every_alt_gets_the_emulators_values(made, merged):
    records = records_of(merged / "merged.vcf.gz")
    assert len(records) == len(RECORDS)
    checked = {"bravo": 0, "opencravat": 0, "cgi": 0}
    for record, (chrom, pos, ref, alts, gt, _) in zip(records, RECORDS):
        assert (record.chrom, record.pos, record.ref, ",".join(record.alts)) == (chrom, pos, ref, alts)
        for i, alt in enumerate(alts.split(",")):
            bravo = bravo_truth(chrom, pos, ref, alt)
            if bravo:
                checked["bravo"] += 1
                assert info_value(record, "BRAVO_ID", i) == bravo["variant_id"]
                assert info_value(record, "BRAVO_AF", i) == pytest.approx(bravo["allele_freq"], rel=1e-5)
                assert info_value(record, "BRAVO_AC", i) == bravo["allele_count"]
                assert info_value(record, "BRAVO_AN", i) == bravo["allele_num"]
                assert info_value(record, "BRAVO_FILTER", i) == bravo["filter"]
            else:
                assert info_value(record, "BRAVO_AF", i) is None
            mapped = oc_truth(chrom, pos, ref, alt, gt, i + 1)
            if mapped:
                checked["opencravat"] += 1
                assert info_value(record, "OC_base__hugo", i) == mapped["hugo"]
                assert info_value(record, "OC_base__so", i) == mapped["so"]
                assert info_value(record, "OC_base__achange", i) == mapped["achange"]
                assert info_value(record, "OC_base__gposend", i) == mapped["gposend"]
            else:
                assert info_value(record, "OC_base__hugo", i) is None
            reading = cgi_truth(chrom, pos, ref, alt)
            if reading:
                checked["cgi"] += 1
                assert info_value(record, "CGI_GENE", i) == reading.gene
                assert info_value(record, "CGI_PROTEIN_CHANGE", i) == (reading.protein_change or None)
                assert info_value(record, "CGI_ONCOGENIC_SUMMARY", i) == reading.summary
                assert info_value(record, "CGI_CONSEQUENCE", i) == reading.consequence
            else:
                assert info_value(record, "CGI_GENE", i) is None
    # the tricky ones were all there: both spellings of the deletion, the insertion, the MNP
    assert checked == {"bravo": 8, "opencravat": 10, "cgi": 11}


def test_records_keep_their_order_and_own_info_and_unmatched_ones_are_untouched(made, merged):
    before = [line for line in made["vcf"].read_text().splitlines() if not line.startswith("#")]
    after = body_lines(merged / "merged.vcf.gz")
    assert len(after) == len(before)
    for old, new in zip(before, after):
        old_fields, new_fields = old.split("\t"), new.split("\t")
        assert new_fields[:7] == old_fields[:7] and new_fields[8:] == old_fields[8:]
        if old_fields[7] != "." and new != old:
            assert new_fields[7].startswith(old_fields[7] + ";")
    symbolic = next(line for line in before if "<DEL>" in line)
    assert symbolic in after  # no source has anything for it: byte for byte as it was
    for line in after:
        assert ";;" not in line and "\t;" not in line


def test_tsv_has_one_row_per_alt_with_the_values_as_written(made, merged):
    lines = (merged / "merged.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    assert header[:4] == ["chrom", "pos", "ref", "alt"]
    assert {"BRAVO_AF", "OC_base__hugo", "OC_clinvar__sig", "OC_gnomad3__af", "CGI_ONCOGENIC_SUMMARY"} <= set(header)
    rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
    assert [(r["chrom"], int(r["pos"]), r["ref"], r["alt"]) for r in rows] == alts_of()
    assert all(len(line.split("\t")) == len(header) for line in lines)
    for row in rows:
        reading = cgi_truth(row["chrom"], int(row["pos"]), row["ref"], row["alt"])
        assert row["CGI_ONCOGENIC_SUMMARY"] == (reading.summary if reading else "")
        mapped = oc_truth(row["chrom"], int(row["pos"]), row["ref"], row["alt"], "0/1/2", 1)
        if mapped and row["OC_base__achange"]:
            assert row["OC_base__achange"] == mapped["achange"]  # '=' and all, unescaped
    deletion = [r for r in rows if r["pos"] == "30000623"]
    assert len(deletion) == 2 and deletion[0]["OC_base__hugo"] == deletion[1]["OC_base__hugo"] != ""


def test_header_names_each_source_with_its_version_and_provenance(made, merged):
    header = header_lines(merged / "merged.vcf.gz")
    with pysam.VariantFile(str(merged / "merged.vcf.gz")) as vcf:
        info = vcf.header.info
        assert info["BRAVO_AF"].type == "Float" and info["BRAVO_AC"].type == "Integer"
        assert info["OC_base__gposend"].type == "Integer" and info["OC_gnomad3__af"].type == "Float"
        assert info["OC_base__hugo"].type == "String" and info["CGI_GENE"].type == "String"
        for name in ("BRAVO_AF", "OC_base__hugo", "OC_clinvar__sig", "CGI_ONCOGENIC_SUMMARY"):
            assert info[name].number == "A"
        assert "Bravo allele frequency (Bravo TOPMed freeze5/hg38 API v1 via gensvc" in info["BRAVO_AF"].description
        assert "http://127.0.0.1:" in info["BRAVO_AF"].description
        assert f"OpenCRAVAT 3.2.4 job {made['oc_job']}" in info["OC_base__hugo"].description
        assert "clinvar 2024.05.01" in info["OC_clinvar__sig"].description
        assert f"CGI v23.12.2 job {made['cgi_job']}" in info["CGI_GENE"].description
        # the input's own header lines are all still there
        assert "DP" in info and "SVTYPE" in info and "GT" in vcf.header.formats
    sources = {line.split("ID=")[1].split(",")[0]: line for line in header if line.startswith("##gensvcSource=")}
    assert set(sources) == {"opencravat", "bravo", "cgi"}
    assert f'JobID="{made["oc_job"]}"' in sources["opencravat"] and 'Operation="report"' in sources["opencravat"]
    assert f'JobID="{made["cgi_job"]}"' in sources["cgi"] and 'Versions="cgi=v23.12.2"' in sources["cgi"]
    assert 'Versions="api_version=v1;dataset=freeze5/hg38"' in sources["bravo"]
    for line in sources.values():
        assert 'URL="http://127.0.0.1:' in line and 'Started="' in line and 'Finished="' in line
    assert any(line.startswith("##gensvcCommand=<ID=merge_annotations,") for line in header)
    details = read_json(merged / "merged.vcf.gz.prov.json")["details"]
    assert details["sources"]["bravo"]["matched_alts"] == len(alts_of())
    assert details["sources"]["bravo"]["alts_with_values"] == 8
    assert details["sources"]["opencravat"]["matched_alts"] == 10
    assert details["sources"]["cgi"]["matched_alts"] == 11
    assert all(s["unused_rows"] == 0 and s["join"] == "stream" for s in details["sources"].values())


def test_index_works_for_a_region_fetch(merged):
    assert (merged / "merged.vcf.gz.tbi").stat().st_size > 0
    with pysam.VariantFile(str(merged / "merged.vcf.gz")) as vcf:
        found = [(r.chrom, r.pos, r.ref) for r in vcf.fetch("chr22", 30000600, 30000700)]
        assert found == [("chr22", 30000623, "TAT"), ("chr22", 30000623, "TATG"), ("chr22", 30000700, "AC")]
        assert [r.pos for r in vcf.fetch("1", 11785000, 11785010)] == [11785002]
    with pysam.TabixFile(str(merged / "merged.vcf.gz"), index=str(merged / "merged.vcf.gz.tbi")) as tabix:
        assert len(list(tabix.fetch("chr22", 30000880, 30000890))) == 2


@pytest.mark.parametrize("subset", [(), ("bravo",), ("opencravat",), ("cgi",), ("opencravat", "cgi"), ("bravo", "cgi")],
                         ids=lambda s: "+".join(s) or "none")
def test_any_subset_of_sources(made, merged, tmp_path, subset):
    inputs = {"vcf": made["vcf"], **{name: made[name] for name in subset}}
    done = merge(tmp_path, inputs)
    assert done.returncode == 0, done.stderr
    prefixes = {"bravo": "BRAVO_", "opencravat": "OC_", "cgi": "CGI_"}
    wanted = tuple(prefixes[name] for name in subset)
    full = records_of(merged / "merged.vcf.gz")
    for record, reference in zip(records_of(tmp_path / "merged.vcf.gz"), full):
        added = {k for k in record.info if k.startswith(("BRAVO_", "OC_", "CGI_"))}
        assert all(k.startswith(wanted) for k in added) if wanted else not added
        assert {k: record.info[k] for k in added} == {k: v for k, v in reference.info.items() if k.startswith(wanted or ("-",))}
    header = (tmp_path / "merged.tsv").read_text().splitlines()[0].split("\t")
    assert all(name.startswith(wanted) for name in header[4:])
    sources = [line for line in header_lines(tmp_path / "merged.vcf.gz") if line.startswith("##gensvcSource")]
    assert len(sources) == len(subset)


def test_bgzipped_input_and_columns_chosen(made, merged, tmp_path):
    packed = tmp_path / "sample.vcf.gz"
    pysam.tabix_compress(str(made["vcf"]), str(packed))
    done = merge(tmp_path / "out", {**all_inputs(made), "vcf": packed}, "--opencravat-columns", "hugo,clinvar.sig",
                 "--cgi-columns", "CGI-Gene")
    assert done.returncode == 0, done.stderr
    header = (tmp_path / "out" / "merged.tsv").read_text().splitlines()[0].split("\t")
    assert header[4:] == ["OC_base__hugo", "OC_clinvar__sig", "BRAVO_ID", "BRAVO_AF", "BRAVO_AC", "BRAVO_AN",
                          "BRAVO_FILTER", "CGI_GENE"]
    for record, reference in zip(records_of(tmp_path / "out" / "merged.vcf.gz"), records_of(merged / "merged.vcf.gz")):
        for name in ("OC_base__hugo", "BRAVO_AF", "CGI_GENE"):
            assert record.info.get(name) == reference.info.get(name)


def test_tsv_alone_and_bgzipped(made, merged, tmp_path):
    out = tmp_path / "merged.tsv.gz"
    args = ["merge", "annotations", *[a for name, path in all_inputs(made).items() for a in ("--input", f"{name}={path}")],
            "--output", f"tsv={out}"]
    done = run_gensvc(args, {k: v for k, v in os.environ.items() if not k.startswith("GENSVC_")})
    assert done.returncode == 0, done.stderr
    with gzip.open(out, "rt") as handle:
        assert handle.read() == (merged / "merged.tsv").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged.tsv.gz", "merged.tsv.gz.prov.json"]


def test_a_source_out_of_the_vcf_order_is_joined_through_an_index(made, merged, tmp_path):
    lines = made["opencravat"].read_text().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if not line.startswith("#")) + 1
    rows = lines[first:]
    random.Random(3).shuffle(rows)
    shuffled = tmp_path / "shuffled.tsv"
    shuffled.write_text("".join(lines[:first] + rows))
    done = merge(tmp_path / "out", {"vcf": made["vcf"], "opencravat": shuffled})
    assert done.returncode == 0, done.stderr
    for record, reference in zip(records_of(tmp_path / "out" / "merged.vcf.gz"), records_of(merged / "merged.vcf.gz")):
        assert {k: v for k, v in record.info.items() if k.startswith("OC_")} == \
               {k: v for k, v in reference.info.items() if k.startswith("OC_")}
    assert read_json(tmp_path / "out" / "merged.vcf.gz.prov.json")["details"]["sources"]["opencravat"]["join"] == "index"


# control characters a service may pass on (VCF 4.3 §1.2 disallows U+0000-U+0008, U+000B, U+000C and
# U+000E-U+001F in a VCF, so the VCF gets them percent-encoded; the TSV keeps the value as written)
CONTROL_VALUE = "unit\x1fsep\x1erecord\x1dgroup\x1cfile\x00nul\x07bell"
CONTROL_ESCAPED = "unit%1Fsep%1Erecord%1Dgroup%1Cfile%00nul%07bell"


def _cgi_with_summary(made, tmp_path, summary: str) -> Path:
    """CGI's alterations.tsv of ``made`` with every row's CGI-Oncogenic Summary set to ``summary``."""
    lines = made["cgi"].read_text().splitlines()
    at = lines[0].split("\t").index("CGI-Oncogenic Summary")
    rows = []
    for line in lines[1:]:
        fields = line.split("\t")
        fields[at] = summary
        rows.append("\t".join(fields))
    cgi = tmp_path / "alterations.tsv"
    cgi.write_text("\n".join([lines[0], *rows]) + "\n")
    return cgi


def _summaries(out: Path) -> tuple[str, str]:
    """The first record's CGI_ONCOGENIC_SUMMARY as written in the VCF, and the TSV's first value of it."""
    raw = body_lines(out / "merged.vcf.gz")[0]
    in_vcf = next(f for f in raw.split("\t")[7].split(";") if f.startswith("CGI_ONCOGENIC_SUMMARY="))
    table = (out / "merged.tsv").read_text().split("\n")
    in_tsv = table[1].split("\t")[table[0].split("\t").index("CGI_ONCOGENIC_SUMMARY")]
    return in_vcf.partition("=")[2], in_tsv


def test_values_are_escaped_for_vcf_and_kept_as_written_in_the_tsv(made, tmp_path):
    """Hand-made CGI rows whose values hold every character VCF reserves."""
    odd = "a;b=c,d e:f%g"
    cgi = _cgi_with_summary(made, tmp_path, odd)
    done = merge(tmp_path / "out", {"vcf": made["vcf"], "cgi": cgi})
    assert done.returncode == 0, done.stderr
    raw = body_lines(tmp_path / "out" / "merged.vcf.gz")[0]
    assert "CGI_ONCOGENIC_SUMMARY=a%3Bb%3Dc%2Cd%20e%3Af%25g" in raw
    record = records_of(tmp_path / "out" / "merged.vcf.gz")[0]
    assert unquote(record.info["CGI_ONCOGENIC_SUMMARY"][0]) == odd
    table = (tmp_path / "out" / "merged.tsv").read_text().splitlines()
    assert table[1].split("\t")[table[0].split("\t").index("CGI_ONCOGENIC_SUMMARY")] == odd


def test_every_character_vcf_reserves_or_disallows_is_percent_encoded_and_decoded_back():
    from gensvc.merge import escape, unescape
    from gensvc.merge.escaping import holds_reserved  # the check of a whole batch of values

    disallowed = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))]
    value = "".join(disallowed) + "%:;=, \r" + "é\x7f"
    escaped = escape(value)
    assert not any(c in escaped for c in [*disallowed, ":", ";", "=", ",", " ", "\r"])
    assert escaped.startswith("%00%01%02") and escaped.endswith("%25%3A%3B%3D%2C%20%0Dé\x7f")
    assert unescape(escaped) == value
    assert escape("plain-value_1.5|x") == "plain-value_1.5|x"
    assert all(holds_reserved(f"a\tb{c}\nc") for c in [*disallowed, "%", ":", ";", "=", ",", " ", "\r"])
    assert not holds_reserved("2-10017-A-G\t0.001\t125\nPASS\té\x7f")


def test_control_characters_in_a_source_value_are_percent_encoded_in_the_vcf_and_kept_in_the_tsv(made, tmp_path):
    cgi = _cgi_with_summary(made, tmp_path, CONTROL_VALUE)
    done = merge(tmp_path / "out", {"vcf": made["vcf"], "cgi": cgi})
    assert done.returncode == 0, done.stderr
    in_vcf, in_tsv = _summaries(tmp_path / "out")
    assert in_vcf == CONTROL_ESCAPED and unquote(in_vcf) == CONTROL_VALUE
    assert in_tsv == CONTROL_VALUE
    assert unquote(records_of(tmp_path / "out" / "merged.vcf.gz")[0].info["CGI_ONCOGENIC_SUMMARY"][0]) == CONTROL_VALUE


def test_control_characters_in_a_source_value_pass_unchanged_between_processes(made, tmp_path, in_processes):
    cgi = _cgi_with_summary(made, tmp_path, CONTROL_VALUE)
    record = run_here(tmp_path / "out", {"vcf": made["vcf"], "bravo": made["bravo"], "cgi": cgi})
    assert record["details"]["processes"]["workers"] == [["bravo"], ["cgi"]]
    assert _summaries(tmp_path / "out") == (CONTROL_ESCAPED, CONTROL_VALUE)
    single = tmp_path / "single"
    done = merge(single, {"vcf": made["vcf"], "bravo": made["bravo"], "cgi": cgi})
    assert done.returncode == 0, done.stderr
    assert body_lines(tmp_path / "out" / "merged.vcf.gz") == body_lines(single / "merged.vcf.gz")
    assert (tmp_path / "out" / "merged.tsv").read_text() == (single / "merged.tsv").read_text()


@pytest.mark.parametrize("processes", [False, True], ids=["one-process", "processes"])
def test_control_characters_in_the_input_vcf_pass_through_byte_for_byte(made, tmp_path, request, processes):
    """merge does not rewrite the user's records: a control character in an input INFO value (which
    VCF disallows; it is the input's to fix) is written back as it came, with or without processes."""
    if processes:
        request.getfixturevalue("in_processes")
    records = [(c, p, r, a, gt, f"NOTE=x\x1ey\x1fz\x1d;{info}" if info != "." else "NOTE=\x1f")
               for c, p, r, a, gt, info in RECORDS]
    vcf = tmp_path / "odd.vcf"
    vcf.write_text(vcf_text(records).replace("##FORMAT", '##INFO=<ID=NOTE,Number=1,Type=String,Description="x">\n##FORMAT', 1))
    record = run_here(tmp_path / "out", {"vcf": vcf, "bravo": made["bravo"], "cgi": made["cgi"]})
    assert bool(record["details"]["processes"]["workers"]) == processes
    before = [line for line in vcf.read_text().split("\n") if line and not line.startswith("#")]
    after = body_lines(tmp_path / "out" / "merged.vcf.gz")
    assert len(after) == len(before)
    for old, new in zip(before, after):
        old_fields, new_fields = old.split("\t"), new.split("\t")
        assert new_fields[:7] == old_fields[:7] and new_fields[8:] == old_fields[8:]
        assert new_fields[7] == old_fields[7] or new_fields[7].startswith(old_fields[7] + ";")


def _copy_broken(made, tmp_path, kind):
    if kind == "bravo-given-opencravat":
        return {"bravo": made["opencravat"]}
    if kind == "opencravat-given-vcf":
        return {"opencravat": made["vcf"]}
    if kind == "cgi-given-bravo":
        return {"cgi": made["bravo"]}
    if kind == "bravo-cut-short":
        broken = tmp_path / "short.bravo.tsv"
        lines = made["bravo"].read_text().splitlines()
        broken.write_text("\n".join(lines[:4] + ["chr22\t30000235\tG"]) + "\n")
        return {"bravo": broken}
    if kind in ("cgi-cut-short", "opencravat-cut-short"):
        name = kind.split("-")[0]
        lines = made[name].read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if not line.startswith("#")) + 3
        lines[at] = "\t".join(lines[at].split("\t")[:9])  # a row cut short, in the columns merge skips
        broken = tmp_path / f"short.{name}.tsv"
        broken.write_text("\n".join(lines) + "\n")
        return {name: broken}
    if kind == "opencravat-of-another-vcf":
        lines = made["opencravat"].read_text().splitlines()
        other = [line.replace("\tchr22\t", "\tchr9\t").replace("\tchr1\t", "\tchr9\t") for line in lines]
        broken = tmp_path / "other.tsv"
        broken.write_text("\n".join(other) + "\n")
        return {"opencravat": broken}
    raise AssertionError(kind)


BROKEN = ["bravo-given-opencravat", "opencravat-given-vcf", "cgi-given-bravo", "bravo-cut-short", "cgi-cut-short",
          "opencravat-cut-short", "opencravat-of-another-vcf"]


@pytest.mark.parametrize("kind", BROKEN)
def test_a_malformed_source_is_refused_and_nothing_is_written(made, tmp_path, kind):
    inputs = {"vcf": made["vcf"], "bravo": made["bravo"], **_copy_broken(made, tmp_path, kind)}
    out = tmp_path / "out"
    done = merge(out, inputs)
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip()
    assert message.startswith("gensvc merge annotations:") and "\n" not in message
    assert "Traceback" not in done.stderr
    assert list(out.iterdir()) == []  # no output, no index, no staged or temporary leftovers


# ---- large inputs: every source joined by a process of its own ------------------------------


@pytest.fixture
def in_processes(monkeypatch):
    """As for a large input on a machine with cores to spare: a process per source, one compressing."""
    import gensvc.merge as merge_module

    monkeypatch.setattr(merge_module, "BIG_INPUT", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)


def run_here(out: Path, inputs: dict, **params):
    """The operation through the runner, in this process (so that the test can set it up as for a large input)."""
    from gensvc.runner import Call, run

    outputs = {"vcf": str(out / "merged.vcf.gz"), "tbi": str(out / "merged.vcf.gz.tbi"), "tsv": str(out / "merged.tsv")}
    return run(Call("merge", "annotations", input={k: str(v) for k, v in inputs.items()}, output=outputs, params=params))


def workers_left() -> list[int]:
    """Processes of ours still running a join or a compression."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and (b"join_worker" in command or b"bgzip_stream" in command):
            found.append(int(entry.name))
    return found


def test_processes_per_source_give_the_same_result(made, merged, tmp_path, in_processes):
    record = run_here(tmp_path, all_inputs(made))
    assert record["details"]["processes"] == {"here": [], "workers": [["opencravat"], ["bravo"], ["cgi"]]}
    assert body_lines(tmp_path / "merged.vcf.gz") == body_lines(merged / "merged.vcf.gz")
    assert (tmp_path / "merged.tsv").read_text() == (merged / "merged.tsv").read_text()
    ours = [line for line in header_lines(tmp_path / "merged.vcf.gz") if not line.startswith("##gensvcCommand")]
    theirs = [line for line in header_lines(merged / "merged.vcf.gz") if not line.startswith("##gensvcCommand")]
    assert ours == theirs  # the types OpenCRAVAT's columns were given in their process too
    with pysam.VariantFile(str(tmp_path / "merged.vcf.gz")) as vcf:
        assert len(list(vcf.fetch("chr22", 30000600, 30000700))) == 3
    assert workers_left() == []


def test_a_source_out_of_order_in_its_process(made, merged, tmp_path, in_processes):
    lines = made["opencravat"].read_text().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if not line.startswith("#")) + 1
    rows = lines[first:][::-1]
    shuffled = tmp_path / "reversed.tsv"
    shuffled.write_text("".join(lines[:first] + rows))
    record = run_here(tmp_path / "out", {"vcf": made["vcf"], "opencravat": shuffled})
    assert record["details"]["sources"]["opencravat"]["join"] == "index"
    for ours, reference in zip(records_of(tmp_path / "out" / "merged.vcf.gz"), records_of(merged / "merged.vcf.gz")):
        assert {k: v for k, v in ours.info.items() if k.startswith("OC_")} == \
               {k: v for k, v in reference.info.items() if k.startswith("OC_")}


@pytest.mark.parametrize("kind", ["cgi-cut-short", "opencravat-cut-short", "opencravat-of-another-vcf"])
def test_a_malformed_source_in_its_process_is_refused(made, tmp_path, in_processes, kind):
    from gensvc.errors import UsageError

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UsageError) as refused:
        run_here(out, {"vcf": made["vcf"], "bravo": made["bravo"], **_copy_broken(made, tmp_path, kind)})
    assert "input" in str(refused.value) and "\n" not in str(refused.value)
    assert list(out.iterdir()) == []
    assert workers_left() == []


def test_a_vcf_that_is_not_one_is_refused(made, tmp_path):
    done = merge(tmp_path / "out", {"vcf": made["bravo"], "bravo": made["bravo"]})
    assert done.returncode == 2 and "is not a VCF" in done.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_an_unsorted_vcf_cannot_be_indexed(made, tmp_path):
    records = [RECORDS[5], *RECORDS[:5], *RECORDS[6:]]
    vcf = tmp_path / "unsorted.vcf"
    vcf.write_text(vcf_text(records))
    done = merge(tmp_path / "a", {"vcf": vcf})
    assert done.returncode == 2 and "not sorted" in done.stderr
    assert list((tmp_path / "a").iterdir()) == []
    done = merge(tmp_path / "b", {"vcf": vcf}, tbi=False)
    assert done.returncode == 0, done.stderr
    assert len(body_lines(tmp_path / "b" / "merged.vcf.gz")) == len(records)


def test_without_a_tbi_output_the_index_is_written_beside_the_vcf(made, tmp_path):
    done = merge(tmp_path, {"vcf": made["vcf"], "bravo": made["bravo"]}, tbi=False, tsv=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "merged.vcf.gz.tbi").exists()
    with pysam.VariantFile(str(tmp_path / "merged.vcf.gz")) as vcf:
        assert len(list(vcf.fetch("chr22"))) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged.vcf.gz", "merged.vcf.gz.prov.json", "merged.vcf.gz.tbi"]


def test_a_large_input_streams_through_whole(tmp_path):
    """50,000 records with a Bravo table, every one carried (memory is measured by bench/merge.py)."""
    rng = random.Random(1)
    vcf, table = tmp_path / "big.vcf", tmp_path / "big.bravo.tsv"
    with open(vcf, "w") as v, open(table, "w") as t:
        v.write(HEADER)
        t.write("chrom\tpos\tref\talt\tbravo_variant_id\tallele_freq\tallele_count\tallele_num\tfilter\tfound\n")
        for n in range(50_000):
            pos, ref = 10_000 + 7 * n, rng.choice("ACGT")
            alt = rng.choice([b for b in "ACGT" if b != ref])
            v.write(f"chr2\t{pos}\t.\t{ref}\t{alt}\t50\tPASS\tDP=5\tGT\t0/1\n")
            t.write(f"chr2\t{pos}\t{ref}\t{alt}\t2-{pos}-{ref}-{alt}\t0.001\t125\t125568\tPASS\ttrue\n")
    done = subprocess.run(
        [sys.executable, "-m", "gensvc.cli", "merge", "annotations", "--input", f"vcf={vcf}", "--input", f"bravo={table}",
         "--output", f"vcf={tmp_path / 'out.vcf.gz'}", "--output", f"tsv={tmp_path / 'out.tsv'}"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = open(tmp_path / "out.tsv").read().splitlines()
    assert len(lines) == 50_001 and all(line.split("\t")[4] for line in lines[1:])


def test_wrapper_runs_in_snakemake(made, tmp_path):
    workdir = tmp_path / "work"
    (workdir / "results").mkdir(parents=True)
    shutil.copy(REPO / "wrappers" / "merge" / "annotations" / "test" / "Snakefile", workdir / "Snakefile")
    shutil.copy(made["vcf"], workdir / "sample.vcf")
    for name, target in (("opencravat", "sample.opencravat.tsv"), ("bravo", "sample.bravo.tsv"),
                         ("cgi", "sample.alterations.tsv")):
        shutil.copy(made[name], workdir / "results" / target)
        shutil.copy(f"{made[name]}.prov.json", workdir / "results" / f"{target}.prov.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENSVC_")}
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--wrapper-prefix", f"{(REPO / 'wrappers').as_uri()}/"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = workdir / "results" / "sample.annotated.vcf.gz"
    records = records_of(out)
    assert len(records) == len(RECORDS) and "BRAVO_AF" in records[0].info and "CGI_GENE" in records[0].info
    assert (workdir / "results" / "sample.annotated.vcf.gz.tbi").exists()
    assert len((workdir / "results" / "sample.annotated.tsv").read_text().splitlines()) == len(alts_of()) + 1
    prov = read_json(f"{out}.prov.json")
    assert prov["service"] == "merge" and prov["operation"] == "annotations"
    assert (workdir / "logs" / "merge_annotations.log").exists()


def test_merge_takes_no_service_settings(made, tmp_path):
    """merge sends nothing anywhere: a service setting is a mistake, refused before anything is read."""
    done = merge(tmp_path, {"vcf": made["vcf"], "bravo": made["bravo"]}, "--url", "https://example.org/")
    assert done.returncode == 2 and "--url" in done.stderr
    assert list(tmp_path.iterdir()) == []
