"""Reading a VCF's genome build from its header, and choosing what to send a service (in-process, fast)."""

import gzip
import logging

import pytest

from gensvc.errors import UsageError
from gensvc.genome_build import ConflictingBuilds, build_named, choose_build, read_build

BODY = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t100\t.\tA\tG\t.\t.\t.\n"
OPENCRAVAT = {"GRCh38": "hg38", "GRCh37": "hg19", "NCBI36": "hg18"}
BRAVO = {"GRCh38": "hg38"}


def vcf(tmp_path, *meta, name="in.vcf", gz=False):
    text = "##fileformat=VCFv4.2\n" + "".join(f"{line}\n" for line in meta) + BODY
    path = tmp_path / name
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, build", [
    ("GRCh38", "GRCh38"), ("hg38", "GRCh38"), ("file:///ref/Homo_sapiens_assembly38.fasta", "GRCh38"),
    ("GRCh38_full_analysis_set_plus_decoy_hla.fa", "GRCh38"), ("hs38DH.fa", "GRCh38"),
    ("Homo_sapiens.GRCh38.dna.primary_assembly.fa", "GRCh38"),
    ("hg19", "GRCh37"), ("GRCh37.p13", "GRCh37"), ("b37", "GRCh37"), ("file:///data/human_g1k_v37.fasta", "GRCh37"),
    ("hs37d5.fa.gz", "GRCh37"), ("ucsc.hg19.fasta", "GRCh37"), ("Homo_sapiens_assembly19.fasta", "GRCh37"),
    ("hg18", "NCBI36"), ("NCBI36", "NCBI36"), ("chm13v2.0.fa", "CHM13"), ("T2T-CHM13", "CHM13"),
    ("file:///data/ref.fa", None), ("gencode v37", None), ("", None),
])
def test_a_reference_name_means_its_build(text, build):
    assert build_named(text) == build


def test_contig_lengths_tell_grch38_from_grch37(tmp_path):
    assert read_build(vcf(tmp_path, "##contig=<ID=chr1,length=248956422>")).name == "GRCh38"
    found = read_build(vcf(tmp_path, "##contig=<ID=1,length=249250621>", name="b37.vcf"))
    assert found.name == "GRCh37" and found.evidence == "##contig 1 length 249,250,621"
    assert read_build(vcf(tmp_path, "##contig=<ID=22,length=51304566>", name="c22.vcf")).name == "GRCh37"


def test_the_reference_line_and_a_contig_assembly_field_are_read(tmp_path):
    assert read_build(vcf(tmp_path, "##reference=GRCh37")).name == "GRCh37"
    assert read_build(vcf(tmp_path, '##contig=<ID=chr2,assembly=hg19,species="Homo sapiens">', name="a.vcf")).name == "GRCh37"
    assert read_build(vcf(tmp_path, "##assembly=GRCh38", name="b.vcf")).name == "GRCh38"


def test_a_compressed_vcf_is_read_too(tmp_path):
    assert read_build(vcf(tmp_path, "##reference=hg19", name="in.vcf.gz", gz=True)).name == "GRCh37"


def test_a_header_without_evidence_gives_none(tmp_path):
    assert read_build(vcf(tmp_path, "##contig=<ID=chr1>", "##contig=<ID=scaffold9,length=1234>")) is None


def test_only_header_lines_are_read(tmp_path):
    path = vcf(tmp_path)
    with open(path, "a") as handle:
        handle.write("##reference=hg19\n")  # not a header line any more
    assert read_build(path) is None


def test_a_header_that_names_two_builds_is_a_conflict(tmp_path):
    with pytest.raises(ConflictingBuilds) as caught:
        read_build(vcf(tmp_path, "##reference=GRCh37", "##contig=<ID=chr1,length=248956422>"))
    assert {b.name for b in caught.value.builds} == {"GRCh37", "GRCh38"}


def choose(paths, given="auto", served=OPENCRAVAT, fallback="hg38"):
    return choose_build(paths, given, served=served, fallback=fallback, param="assembly", service="TheService")


def test_the_build_found_is_sent_in_the_services_own_spelling(tmp_path):
    assert choose([vcf(tmp_path, "##reference=GRCh37")]) == "hg19"
    assert choose([vcf(tmp_path, "##contig=<ID=chr1,length=248956422>", name="b.vcf")], fallback="hg19") == "hg38"


def test_a_build_the_service_does_not_serve_is_refused_naming_it_and_the_param(tmp_path):
    with pytest.raises(UsageError) as caught:
        choose([vcf(tmp_path, "##contig=<ID=chr1,length=249250621>")], served=BRAVO)
    message = str(caught.value)
    assert "GRCh37" in message and "249,250,621" in message and "params assembly hg38" in message
    assert "\n" not in message


def test_a_given_build_wins_over_the_header_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="gensvc.genome_build"):
        assert choose([vcf(tmp_path, "##reference=GRCh37")], given="hg38", served=BRAVO) == "hg38"
    assert "overrides the header" in caplog.text


def test_no_evidence_gives_the_default_and_says_so(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="gensvc.genome_build"):
        assert choose([vcf(tmp_path)], fallback="hg19") == "hg19"
    assert "not found" in caplog.text and "hg19" in caplog.text


def test_inputs_on_two_builds_are_refused(tmp_path):
    with pytest.raises(UsageError, match="different builds"):
        choose([vcf(tmp_path, "##reference=hg19", name="a.vcf"), vcf(tmp_path, "##reference=hg38", name="b.vcf")])


def test_a_conflicting_header_is_refused_unless_the_build_is_given(tmp_path):
    path = vcf(tmp_path, "##reference=GRCh37", "##contig=<ID=chr1,length=248956422>")
    with pytest.raises(UsageError, match="params assembly"):
        choose([path])
    assert choose([path], given="hg38") == "hg38"
