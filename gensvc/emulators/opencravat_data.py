"""What the OpenCRAVAT emulator computes: input conversion, gene mapping, annotation and
the report files, each modelled on the module OpenCRAVAT 3.2.4 would run.

Conversion follows the package's `MasterCravatConverter` (cravat/cravat_convert.py) around
the store's `vcf-converter` and `cravat-converter`:

- VCF (read the way PyVCF3 reads a line: fields split on a tab or a run of spaces,
  '.'/''/'NA' ALT -> the REF itself, '*' kept then skipped, symbolic and breakend ALTs fail
  the line; a blank line ends the records: every later one is silently ignored). Per ALT the store converter trims the shared *leading* bases first
  (each moves POS right by one), then the shared *trailing* bases, case-sensitively; an
  emptied allele becomes '-'. Without sample columns: one record per ALT. With samples: one
  record per sample and distinct non-'0' GT allele (so an ALT no sample carries is dropped;
  a line whose samples are all reference is an error); without GT, the first ALT only.
- OpenCRAVAT's own text format `chrom pos [strand] ref alt [sample [tags]]`, tab or
  whitespace separated; '-' strand: POS moves to the other end and alleles are
  reverse-complemented.
- Then for every record: 'chr' is prefixed to bare names, chrMT/chrmt -> chrM (hg38),
  chrx/chry/chr23/chr24 -> chrX/chrY; alleles must be all ACGT (any case) or all '-';
  `standardize_pos_ref_alt` upper-cases, trims shared *trailing* bases first, then shared
  leading ones (POS +1 each); identical variants share one UID (the UID is taken before the
  ref == alt check, so such a line leaves a gap in the numbering).
  No liftover data is shipped: hg19/hg18 coordinates are kept as given.

The gene mapper is deterministic and follows the emulators' shared synthetic gene model,
`data/gene_model.tsv` (the CGI emulator reads the same file, so both name the same gene and
a consequence of the same class; the test peer's stand-in mapper,
tests/peers/opencravat_modules/mappers/hg38, follows it too): a variant inside a modelled gene
gets that gene, transcript and a class, protein and cDNA change by the file's rules; elsewhere
on chr1-22/X/Y it lies in a filler gene `GS<chrom>_<POS // 1e6>` (class, protein and cDNA
changes from POS and the alleles); other contigs are intergenic. Annotators are a fixed catalogue (`ANNOTATORS`), each value a
hash of (module, chrom, pos, ref, alt) -- or of the gene for gene-level modules -- so a job's
report and `/submit/annotate` agree for the same variant. `gensvcdemo` repeats the test
peer's deterministic annotator exactly.

Reports follow the store reporters, after the package's own processing (column groups:
base, mapper and tagsampler columns first, the other modules ordered by display name;
all_mappings flattened to sorted 'transcript:hugo:protein:so:achange:cchange' entries):
tsvreporter/csvreporter 2.1.0 (`#` preface lines, one `Column description.` line per
column -- both dropped by 2.2.0 -- then a header row of `name` or `module.name`, one row per
variant, variant level only), textreporter (every level, group line + title line),
vcfreporter 3.x `separate` mode (OC_<module>__<column> INFO keys; for VCF input the input's
own lines come back once all their ALTs are annotated; for other input the reporter's own
misalignment of values and keys is reproduced).
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import csv
import json
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

OPEN_CRAVAT_VERSION = "3.2.4"
CONVERTER_FORMATS = ("cravat", "vcf")  # installed converters, in module-list order
ASSEMBLIES = ("hg38", "hg19", "hg18")  # constants.assembly_choices
MAPPER_NAME = "hg38"
MAPPER_TITLE = "Deterministic gene mapper"
MAPPER_VERSION = "1.0.0"


# ---------------------------------------------------------------- module catalogue

@dataclass(frozen=True)
class Column:
    name: str
    title: str
    type: str = "string"  # string | int | float
    desc: str = ""


@dataclass(frozen=True)
class Module:
    name: str
    title: str
    version: str
    kind: str  # annotator | reporter | postaggregator | converter | mapper
    level: str = "variant"
    columns: tuple[Column, ...] = ()
    description: str = ""
    output_filename_schema: tuple[str, ...] = ()


def _h(*parts: Any) -> bytes:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()


def _unit(digest: bytes, offset: int) -> float:
    """A number in [0, 1) from four bytes of a digest."""
    return int.from_bytes(digest[offset:offset + 4], "big") / 2**32


CLINVAR_SIG = ("Pathogenic", "Likely pathogenic", "Uncertain significance", "Likely benign",
               "Benign", "Conflicting interpretations of pathogenicity")
CLINVAR_REV = ("criteria provided, single submitter",
               "criteria provided, multiple submitters, no conflicts",
               "reviewed by expert panel", "no assertion criteria provided")
CLINVAR_DISEASE = ("Hereditary cancer-predisposing syndrome", "not provided", "not specified",
                   "Inborn genetic diseases", "Cardiovascular phenotype")


def _annotate_clinvar(v: dict) -> dict | None:
    d = _h("clinvar", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    if d[0] % 10 >= 3:
        return None
    return {
        "sig": CLINVAR_SIG[d[1] % len(CLINVAR_SIG)],
        "disease_refs": "MedGen:C%07d" % (int.from_bytes(d[2:6], "big") % 10**7),
        "disease_names": CLINVAR_DISEASE[d[6] % len(CLINVAR_DISEASE)],
        "rev_stat": CLINVAR_REV[d[7] % len(CLINVAR_REV)],
        "id": str(int.from_bytes(d[8:12], "big") % 2_000_000 + 10_000),
    }


def _annotate_dbsnp(v: dict) -> dict | None:
    d = _h("dbsnp", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    if d[0] % 10 >= 7:
        return None
    return {"snp": "rs%d" % (int.from_bytes(d[1:5], "big") % 1_500_000_000 + 1000)}


def _annotate_gnomad3(v: dict) -> dict | None:
    d = _h("gnomad3", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    if d[0] % 10 >= 8:
        return None
    return {"af": round(_unit(d, 1) ** 3, 6), "af_afr": round(_unit(d, 5) ** 3, 6),
            "af_nfe": round(_unit(d, 9) ** 3, 6)}


def _annotate_thousandgenomes(v: dict) -> dict | None:
    d = _h("thousandgenomes", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    if d[0] % 10 >= 5:
        return None
    return {"af": round(_unit(d, 1) ** 2, 4)}


def _annotate_sift(v: dict) -> dict | None:
    if v.get("so") != "missense_variant":
        return None
    d = _h("sift", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    score = round(_unit(d, 1), 3)
    return {"prediction": "Damaging" if score < 0.05 else "Tolerated", "score": score}


def _annotate_vest(v: dict) -> dict | None:
    if v.get("so") != "missense_variant":
        return None
    d = _h("vest", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    score = round(_unit(d, 1), 3)
    return {"transcript": v.get("transcript") or None, "score": score,
            "pval": round((1 - score) ** 2 / 2, 5)}


def _annotate_cosmic(v: dict) -> dict | None:
    d = _h("cosmic", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    if d[0] % 10 != 0:
        return None
    return {"cosmic_id": "COSV%08d" % (int.from_bytes(d[1:5], "big") % 10**8),
            "variant_count": d[5] % 200 + 1}


def _annotate_cgl(v: dict) -> dict | None:
    hugo = v.get("hugo")
    if not hugo:
        return None
    d = _h("cgl", hugo)
    if d[0] % 5 == 0:
        return {"class": "Oncogene"}
    if d[0] % 5 == 1:
        return {"class": "TSG"}
    return None


def _annotate_gensvcdemo(v: dict) -> dict | None:
    ref, alt = v["ref_base"], v["alt_base"]
    return {
        "score": ((int(v["pos"]) * 31 + len(ref) * 7 + len(alt) * 13) % 1000) / 1000,
        "allele": "%s:%s:%s>%s" % (v["chrom"], v["pos"], ref, alt),
        "gc": sum(ref.count(b) + alt.count(b) for b in "GC"),
    }


ANNOTATORS: "OrderedDict[str, Module]" = OrderedDict((m.name, m) for m in [
    Module("cgl", "Cancer Gene Landscape", "1.0.4", "annotator", "gene",
           (Column("class", "Class"),), "Oncogene / tumour suppressor class of the gene"),
    Module("clinvar", "ClinVar", "2024.05.01", "annotator", "variant",
           (Column("sig", "Clinical Significance"), Column("disease_refs", "Disease Ref Nums"),
            Column("disease_names", "Disease Names"), Column("rev_stat", "Review Status"),
            Column("id", "ClinVar ID")), "Clinical significance of variants"),
    Module("cosmic", "COSMIC", "92.0.0", "annotator", "variant",
           (Column("cosmic_id", "ID"), Column("variant_count", "Variant Count", "int")),
           "Somatic mutations in cancer"),
    Module("dbsnp", "dbSNP", "1.0.2", "annotator", "variant", (Column("snp", "rsID"),),
           "dbSNP identifiers"),
    Module("gensvcdemo", "gensvc demo annotator", "1.0.0", "annotator", "variant",
           (Column("score", "Demo score", "float",
                   "((pos*31 + len(ref)*7 + len(alt)*13) % 1000) / 1000"),
            Column("allele", "Allele key", "string", "chrom:pos:ref>alt as OpenCRAVAT normalised it"),
            Column("gc", "GC count", "int", "G and C letters in ref and alt")),
           "Deterministic annotator (same formulas as the test peer's)"),
    Module("gnomad3", "gnomAD3", "3.1.2", "annotator", "variant",
           (Column("af", "Global AF", "float"), Column("af_afr", "African AF", "float"),
            Column("af_nfe", "Non-Fin Eur AF", "float")), "gnomAD v3 allele frequencies"),
    Module("sift", "SIFT", "1.1.4", "annotator", "variant",
           (Column("prediction", "Prediction"), Column("score", "Score", "float")),
           "SIFT missense predictions"),
    Module("thousandgenomes", "1000 Genomes", "3.0.5", "annotator", "variant",
           (Column("af", "AF", "float"),), "1000 Genomes allele frequency"),
    Module("vest", "VEST4", "4.4.3", "annotator", "variant",
           (Column("transcript", "Score Transcript"), Column("score", "Score", "float"),
            Column("pval", "P-value", "float")), "VEST missense scores"),
])

_ANNOTATE: dict[str, Callable[[dict], dict | None]] = {
    "cgl": _annotate_cgl, "clinvar": _annotate_clinvar, "cosmic": _annotate_cosmic,
    "dbsnp": _annotate_dbsnp, "gensvcdemo": _annotate_gensvcdemo, "gnomad3": _annotate_gnomad3,
    "sift": _annotate_sift, "thousandgenomes": _annotate_thousandgenomes, "vest": _annotate_vest,
}

REPORTERS: "OrderedDict[str, Module]" = OrderedDict((m.name, m) for m in [
    Module("csvreporter", "CSV Reporter", "2.1.0", "reporter",
           description="CSV format text file reporter",
           output_filename_schema=("{run_name}.variant.csv",)),
    Module("textreporter", "Text Reporter", "2.1.0", "reporter",
           description="Text format reporter", output_filename_schema=("{run_name}.tsv",)),
    Module("tsvreporter", "TSV Reporter", "2.1.0", "reporter",
           description="Tab-delimited format text file reporter",
           output_filename_schema=("{run_name}.variant.tsv",)),
    Module("vcfreporter", "VCF Reporter", "3.3.0", "reporter",
           description="VCF format text file reporter",
           output_filename_schema=("{run_name}.vcf",)),
])

# websubmit's FileRouter.report_extensions: these types are found by extension alone.
REPORT_EXTENSIONS = {"text": ".tsv", "excel": ".xlsx", "vcf": ".vcf"}
# websubmit.get_valid_report_types() leaves these out of every list it serves.
UNLISTED_REPORT_TYPES = ("text", "pandas", "stdout", "example")


def valid_report_types() -> list[str]:
    return [name[: -len("reporter")] for name in REPORTERS
            if name[: -len("reporter")] not in UNLISTED_REPORT_TYPES]


def report_filename(report_type: str, run_name: str) -> str | None:
    """FileRouter.job_report: the file a report type is served from, None if unknown."""
    if report_type in REPORT_EXTENSIONS:
        return run_name + REPORT_EXTENSIONS[report_type]
    module = REPORTERS.get(report_type + "reporter")
    if module is None:
        return None
    return module.output_filename_schema[0].replace("{run_name}", run_name)


def annotate(module_name: str, variant: dict) -> dict | None:
    """One module's values for a variant (normalised chrom/pos/ref_base/alt_base + mapping)."""
    return _ANNOTATE[module_name](variant)


# ---------------------------------------------------------------- gene mapper

CANONICAL_CHROMS = frozenset("chr%s" % c for c in list(range(1, 23)) + ["X", "Y"])
MAPPER_COLUMNS = ("coding", "hugo", "transcript", "so", "exonno", "cchange", "achange",
                  "all_mappings", "gposend")


def _classify(pos: int, ref: str, alt: str) -> tuple[str, str, str]:
    aa = pos % 1000 + 1
    cpos = pos % 3000 + 1
    if ref == "-":
        cchange = "c.%d_%dins%s" % (cpos, cpos + 1, alt)
        if len(alt) % 3 == 0:
            return ("inframe_insertion",
                    "p.Ala%d_Gly%dins%s" % (aa, aa + 1, "Xaa" * (len(alt) // 3)), cchange)
        return "frameshift_elongation", "p.Ala%dfs" % aa, cchange
    if alt == "-":
        cchange = ("c.%ddel" % cpos if len(ref) == 1
                   else "c.%d_%ddel" % (cpos, cpos + len(ref) - 1))
        if len(ref) % 3 == 0:
            return "inframe_deletion", "p.Ala%ddel" % aa, cchange
        return "frameshift_truncation", "p.Ala%dfs" % aa, cchange
    if len(ref) == 1 and len(alt) == 1:
        cchange = "c.%d%s>%s" % (cpos, ref, alt)
        if pos % 3 == 0:
            return "synonymous_variant", "p.Ala%d=" % aa, cchange
        return "missense_variant", "p.Ala%dVal" % aa, cchange
    cchange = "c.%d_%ddelins%s" % (cpos, cpos + len(ref) - 1, alt)
    return ("complex_substitution",
            "p.Ala%ddelins%s" % (aa, "Val" * max(1, len(alt) // 3)), cchange)


@dataclass(frozen=True)
class ModelGene:
    """One gene of the emulators' shared gene model (data/gene_model.tsv)."""
    symbol: str
    chrom: str  # with 'chr', as OpenCRAVAT names it
    start: int
    end: int
    strand: str
    transcript: str
    protein: str
    protein_length: int


GENE_MODEL_PATH = Path(__file__).with_name("data") / "gene_model.tsv"
AMINO = "ACDEFGHIKLMNPQRSTVWY"
THREE_LETTER = dict(zip(AMINO + "*", (
    "Ala Cys Asp Glu Phe Gly His Ile Lys Leu Met Asn Pro Gln Arg Ser Thr Val Trp Tyr Ter").split()))
_GENES: list[ModelGene] = []


def model_genes() -> list[ModelGene]:
    """The shared gene model, read once (the CGI emulator reads the same file itself)."""
    if not _GENES:
        lines = [line for line in GENE_MODEL_PATH.read_text().splitlines()
                 if line and not line.startswith("#")]
        for row in csv.DictReader(lines, delimiter="\t"):
            _GENES.append(ModelGene(row["symbol"], "chr" + row["chrom"], int(row["start"]),
                                    int(row["end"]), row["strand"], row["transcript"],
                                    row["protein"], int(row["protein_length"])))
    return _GENES


def model_gene_at(chrom: str, pos: int) -> ModelGene | None:
    return next((g for g in model_genes() if g.chrom == chrom and g.start <= pos <= g.end), None)


def _strand_bases(bases: str, strand: str) -> str:
    if strand == "+" or bases == "-":
        return bases
    return "".join(COMPLEMENT[b] for b in reversed(bases))


def _classify_in_gene(gene: ModelGene, pos: int, ref: str, alt: str) -> tuple[str, str, str]:
    """The gene model's rules (its header): SO term, protein change and cDNA change."""
    offset = pos - gene.start if gene.strand == "+" else gene.end - pos
    cpos = offset % (3 * gene.protein_length) + 1
    aa = (cpos - 1) // 3 + 1
    codon_base = (cpos - 1) % 3 + 1
    ref_aa = AMINO[aa % 20]
    ref_s, alt_s = _strand_bases(ref, gene.strand), _strand_bases(alt, gene.strand)
    here = THREE_LETTER[ref_aa] + str(aa)
    if ref == "-":
        cchange = "c.%d_%dins%s" % (cpos, cpos + 1, alt_s)
        if len(alt) % 3 == 0:
            return ("inframe_insertion", "p.%s_%s%dins%s" % (
                here, THREE_LETTER[AMINO[(aa + 1) % 20]], aa + 1, "Xaa" * (len(alt) // 3)), cchange)
        return "frameshift_elongation", "p.%sfs" % here, cchange
    if alt == "-":
        cchange = ("c.%ddel" % cpos if len(ref) == 1
                   else "c.%d_%ddel" % (cpos, cpos + len(ref) - 1))
        if len(ref) % 3 == 0:
            return "inframe_deletion", "p.%sdel" % here, cchange
        return "frameshift_truncation", "p.%sfs" % here, cchange
    if len(ref) == 1 and len(alt) == 1:
        cchange = "c.%d%s>%s" % (cpos, ref_s, alt_s)
        if codon_base == 3:
            return "synonymous_variant", "p.%s=" % here, cchange
        if codon_base == 1 and alt_s == "T":
            return "stop_gained", "p.%sTer" % here, cchange
        alt_aa = AMINO[(aa % 20 + 1 + "ACGT".index(alt_s)) % 20]
        return "missense_variant", "p.%s%s" % (here, THREE_LETTER[alt_aa]), cchange
    cchange = "c.%d_%ddelins%s" % (cpos, cpos + len(ref) - 1, alt_s)
    return "complex_substitution", "p.%sdelins%s" % (here, "Val" * max(1, len(alt) // 3)), cchange


def map_variant(chrom: str, pos: int, ref: str, alt: str) -> dict:
    """The mapper's columns for one variant: a gene of the shared model, else a filler gene."""
    gposend = pos + 1 if ref == "-" else pos + len(ref) - 1
    if chrom not in CANONICAL_CHROMS:
        return {"coding": "", "hugo": "", "transcript": "", "so": "", "exonno": None,
                "cchange": "", "achange": "", "all_mappings": "{}", "gposend": gposend}
    gene = model_gene_at(chrom, pos)
    if gene is not None:
        so, achange, cchange = _classify_in_gene(gene, pos, ref, alt)
        hugo, transcript, protein = gene.symbol, gene.transcript, gene.protein
    else:
        so, achange, cchange = _classify(pos, ref, alt)
        block = pos // 1_000_000
        short = chrom[3:]
        hugo = "GS%s_%d" % (short, block)
        transcript = "ENSTGS%s_%d.1" % (short, block)
        protein = "PGS%s_%d" % (short, block)
    return {
        "coding": "Yes", "hugo": hugo, "transcript": transcript, "so": so,
        "exonno": pos % 20 + 1, "cchange": cchange, "achange": achange,
        "all_mappings": json.dumps({hugo: [[protein, achange, so, transcript, cchange]]}),
        "gposend": gposend,
    }


def live_annotation(chrom: str, pos: int, ref: str, alt: str, uid: str,
                    annotators: list[str] | None) -> dict:
    """`/submit/annotate`: {module: values or None, ..., "crx": mapping}, as live_annotate."""
    mapped = map_variant(chrom, pos, ref, alt)
    # The mapper's own output, unnormalised input: the seed's keys (note included) plus
    # the ones the 3.2.4 server's mapper adds (exonno, cchange, gposend).
    crx = {"uid": uid, "chrom": chrom, "pos": pos, "ref_base": ref, "alt_base": alt,
           "note": "", "coding": mapped["coding"], "hugo": mapped["hugo"],
           "transcript": mapped["transcript"], "so": mapped["so"], "exonno": mapped["exonno"],
           "cchange": mapped["cchange"], "achange": mapped["achange"],
           "all_mappings": mapped["all_mappings"], "gposend": mapped["gposend"]}
    variant = dict(crx)
    response: dict[str, Any] = {}
    for name in ANNOTATORS:
        if annotators is not None and name not in annotators:
            continue
        response[name] = _clean_annot_dict(annotate(name, variant))
    response["crx"] = crx
    return response


def _clean_annot_dict(d: dict | None) -> dict | None:
    # websubmit.clean_annot_dict: '' and {} become None; a dict of Nones becomes None.
    if d is None or d == {} or d == "":
        return None
    cleaned = {k: (None if v == "" or v == {} else v) for k, v in d.items()}
    return None if all(v is None for v in cleaned.values()) else cleaned


# ---------------------------------------------------------------- conversion

class ConversionError(Exception):
    """A converter ExpectedException: the job ends in Error with this message."""


class LineError(Exception):
    """One input line could not be used (written to the job's .err file)."""


COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C", "-": "-", "N": "N"}
BASE_RE = re.compile("^[ATGCatgc]+|[-]+$")
CHROM_FIXES = {"chrx": "chrX", "chry": "chrY", "chrMt": "chrMT", "chr23": "chrX",
               "chr24": "chrY"}
VCF_SAMPLE_COLUMNS = (
    Column("phred", "Phred"), Column("filter", "VCF filter"), Column("zygosity", "Zygosity"),
    Column("alt_reads", "Alternate reads", "int"), Column("tot_reads", "Total reads", "int"),
    Column("af", "Variant allele frequency", "float"),
    Column("hap_block", "Haplotype block ID", "int"),
    Column("hap_strand", "Haplotype strand ID", "int"),
)


@dataclass
class InfoField:
    id: str
    number: int | None  # None: '.', -1: A, -2: G, -3: R
    type: str
    desc: str


@dataclass
class InputFile:
    name: str
    lines: list[str]  # with their line ends, as read


@dataclass
class SampleRow:
    sample_id: str | None
    values: dict = field(default_factory=dict)  # phred, filter, zygosity, ... (VCF only)


@dataclass
class Variant:
    uid: int
    chrom: str
    pos: int
    ref: str
    alt: str
    original: tuple  # original_input: chrom, pos, ref_base, alt_base before standardising
    samples: list[SampleRow] = field(default_factory=list)
    mappings: list[tuple[int, int, str | None]] = field(default_factory=list)  # fileno, line, tag
    extra_info: dict | None = None
    mapped: dict = field(default_factory=dict)

    def as_input(self) -> dict:
        return {"chrom": self.chrom, "pos": self.pos, "ref_base": self.ref,
                "alt_base": self.alt, **self.mapped}


@dataclass
class Conversion:
    format: str
    files: list[InputFile]
    variants: list[Variant] = field(default_factory=list)
    num_input: int = 0
    error_lines: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    info_fields: list[InfoField] = field(default_factory=list)
    sample_rows: list[tuple[int, SampleRow]] = field(default_factory=list)  # .crs, in order
    mapping_rows: list[tuple[int, int, str | None, int]] = field(default_factory=list)  # .crm

    @property
    def num_unique(self) -> int:
        return len(self.variants)


def decode_input(name: str, data: bytes) -> str:
    if name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            pass
    for encoding in ("utf-8", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")


def _vcf_check(name: str, text: str) -> bool:
    if name.endswith(".vcf") or name.endswith(".vcf.gz"):
        return True
    return text.split("\n", 1)[0].startswith("##fileformat=VCF")


def _cravat_tokens(line: str) -> list[str]:
    toks = line.strip("\r\n").split("\t")
    if len(toks) == 1:
        toks = toks[0].split()
    return toks


def _strand_present(toks: list[str]) -> bool:
    return toks[2] in ("+", "-")


def _cravat_check_line(line: str) -> tuple[bool, str]:
    toks = _cravat_tokens(line)
    if len(toks) == 7:
        _, pos, strand, ref, alt, _, _ = toks
    elif len(toks) == 6:
        if _strand_present(toks):
            _, pos, strand, ref, alt, _ = toks
        else:
            strand = "+"
            _, pos, ref, alt, _, _ = toks
    elif len(toks) == 5:
        if _strand_present(toks):
            _, pos, strand, ref, alt = toks
        else:
            strand = "+"
            _, pos, ref, alt, _ = toks
    elif len(toks) == 4:
        if _strand_present(toks):
            return False, "Wrong number of columns"
        strand = "+"
        _, pos, ref, alt = toks
    else:
        return False, "Wrong number of columns"
    try:
        int(pos)
    except ValueError:
        return False, "2nd column must be integer"
    if strand not in ("-", "+"):
        return False, "4th column must be + or -"
    for char in ref.upper():
        if char not in COMPLEMENT:
            return False, "Bad ref base"
    for char in alt.upper():
        if char not in COMPLEMENT:
            return False, "Bad alt base"
    return True, ""


def _cravat_check(text: str) -> bool:
    for line in io.StringIO(text):
        if not line.startswith("#"):
            ok, _ = _cravat_check_line(line)
            if ok:
                return True
    return False


def detect_format(files: list[InputFile], forced: str | None) -> str:
    """MasterCravatConverter._select_primary_converter; raises ConversionError."""
    if forced:
        if forced not in CONVERTER_FORMATS:
            raise ConversionError("Invalid input format. Please select from [%s]"
                                  % ", ".join(CONVERTER_FORMATS))
        fmt = forced
    else:
        first = files[0]
        text = "".join(first.lines)
        valid = [f for f in CONVERTER_FORMATS
                 if (_vcf_check(first.name, text) if f == "vcf" else _cravat_check(text))]
        if not valid:
            raise ConversionError(
                "Input format could not be determined for file %s. Additional input format "
                "converters are available. View available converters in the store or with "
                '"oc module ls -a -t converter"' % first.name.rsplit("/", 1)[-1])
        if len(valid) > 1:
            raise ConversionError("Input format ambiguous in [%s]. " % ", ".join(valid)
                                  + "Please specify an input format.")
        fmt = valid[0]
    for other in files[1:]:
        text = "".join(other.lines)
        if not (_vcf_check(other.name, text) if fmt == "vcf" else _cravat_check(text)):
            raise ConversionError("Inconsistent file types")
    return fmt


def trim_vcf_alleles(pos: int, ref: str, alt: str | None) -> tuple[int, str, str | None]:
    """vcf-converter's trim_variant: shared leading bases, then shared trailing bases."""
    if alt is None:
        return pos, ref, alt
    if len(ref) == 1 and len(alt) == 1:
        return pos, ref, alt
    r, a = list(ref), list(alt)
    adj = 0
    while r and a and r[0] == a[0]:
        adj += 1
        r.pop(0)
        a.pop(0)
    while r and a and r[-1] == a[-1]:
        r.pop()
        a.pop()
    return pos + adj, "".join(r) if r else "-", "".join(a) if a else "-"


def standardize_pos_ref_alt(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """MasterCravatConverter.standardize_pos_ref_alt on the + strand."""
    ref, alt = ref.upper(), alt.upper()
    if len(ref) == 1 and len(alt) == 1 and ref == alt:
        return pos, ref, alt
    new_ref, new_alt = ref, alt
    for i in range(min(len(ref), len(alt))):
        if ref[len(ref) - i - 1] == alt[len(alt) - i - 1]:
            new_ref, new_alt = ref[: len(ref) - i - 1], alt[: len(alt) - i - 1]
        else:
            break
    new_ref2, new_alt2 = new_ref, new_alt
    for i in range(min(len(new_ref), len(new_alt))):
        if new_ref[i] == new_alt[i]:
            pos += 1
            new_ref2, new_alt2 = new_ref[i + 1:], new_alt[i + 1:]
        else:
            new_ref2, new_alt2 = new_ref[i:], new_alt[i:]
            break
    if new_ref2 in ("", "."):
        new_ref2 = "-"
    if new_alt2 in ("", "."):
        new_alt2 = "-"
    return pos, new_ref2, new_alt2


_INFO_RE = re.compile(r'^##INFO=<ID=([^,>]+),Number=([^,>]+),Type=([^,>]+)(?:,Description="(.*)")?')
_VCF_SPLIT = re.compile("\t| +")


def _parse_info_header(line: str) -> InfoField | None:
    m = _INFO_RE.match(line.rstrip("\r\n"))
    if not m:
        return None
    number_text = m.group(2)
    number = {"A": -1, "G": -2, "R": -3, ".": None}.get(number_text)
    if number_text not in ("A", "G", "R", "."):
        try:
            number = int(number_text)
        except ValueError:
            number = None
    return InfoField(m.group(1), number, m.group(3), m.group(4) or "")


def _vcf_number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def _parse_vcf_info(text: str, fields: dict[str, InfoField]) -> dict:
    if text == ".":
        return {}
    out: dict[str, Any] = {}
    for entry in text.split(";"):
        key, sep, raw = entry.partition("=")
        info = fields.get(key)
        kind = info.type if info else ("String" if sep else "Flag")
        if kind == "Flag" or not sep:
            value: Any = True
        else:
            vals = raw.split(",")
            if kind == "Integer":
                try:
                    value = [None if x in (".", "", "NA") else int(x) for x in vals]
                except ValueError:
                    value = [None if x in (".", "", "NA") else float(x) for x in vals]
            elif kind == "Float":
                value = [None if x in (".", "", "NA") else float(x) for x in vals]
            else:
                value = [None if x in (".", "", "NA") else x for x in vals]
            if info is not None and info.number == 1:
                value = value[0]
        out[key] = value
    return out


@dataclass
class _Call:
    sample: str
    data: dict  # FORMAT key -> raw string or None

    @property
    def gt_alleles(self) -> list[str | None] | None:
        gt = self.data.get("GT")
        if gt is None:
            return None
        return [None if a == "." else a for a in re.split(r"[|/]", gt)]

    @property
    def called(self) -> bool | None:
        alleles = self.gt_alleles
        return None if alleles is None else any(a is not None for a in alleles)

    @property
    def is_het(self) -> bool | None:
        if not self.called:
            return None
        alleles = self.gt_alleles
        return not all(a == alleles[0] for a in alleles[1:])


def _read_counts(call: _Call, gt: int) -> tuple[Any, Any, Any]:
    """vcf-converter's extract_read_info (AD per allele, DP total)."""
    tot_reads = alt_reads = None
    if "AD" in call.data:
        ad = call.data["AD"]
        if ad is not None and "," in ad:
            values = [None if x in (".", "") else int(x) for x in ad.split(",")]
            tot_reads = sum(0 if x is None else x for x in values)
            try:
                alt_reads = values[gt]
            except IndexError:
                alt_reads = None
            else:
                if alt_reads is None:
                    raise LineError("int() argument must be a string, a bytes-like object or "
                                    "a real number, not 'NoneType'")
        elif ad is not None:
            tot_reads = int(ad)
    if "DP" in call.data:
        dp = call.data["DP"]
        if dp is not None:
            tot_reads = int(dp.split(",")[0])
    af = None
    if tot_reads is not None and alt_reads is not None:
        try:
            af = alt_reads / tot_reads
        except ZeroDivisionError:
            af = None
    return tot_reads, alt_reads, af


class _VcfReader:
    """The store vcf-converter, line by line (header buffered until the first record)."""

    def __init__(self) -> None:
        self.header: list[str] = []
        self.in_header = True
        self.ready: bool | None = None  # None: no record yet; False: header unusable
        self.samples: list[str] = []
        self.info_fields: dict[str, InfoField] = {}
        self.info_order: list[InfoField] = []
        self.gt_occur: list[int] = []
        self.record: dict | None = None
        self.exhausted = False

    def read_header(self, lines: Iterable[str]) -> None:
        # Only to learn the INFO definitions for the extra_vcf_info columns up front.
        for line in lines:
            if not line.startswith("#"):
                break
            info = _parse_info_header(line)
            if info is not None and info.id not in self.info_fields:
                self.info_fields[info.id] = info
                self.info_order.append(info)

    def convert_line(self, line: str) -> list[dict] | None:
        if line.startswith("#"):
            if self.in_header:
                self.header.append(line)
            return None  # IGNORE
        if self.ready is None:
            self.in_header = False
            chrom_lines = [h for h in self.header if h.startswith("#CHROM")]
            if not chrom_lines:
                self.ready = False
                raise LineError("")  # PyVCF's Reader stops on a header without #CHROM
            self.samples = _VCF_SPLIT.split(chrom_lines[0][1:].rstrip())[9:]
            self.ready = True
        if not self.ready:
            raise LineError("'NoneType' object is not an iterator")
        if self.exhausted:
            return None
        if not line.strip():
            # PyVCF's line generator skips blank lines, meets the end of the one-line buffer
            # and is finished for good: every later record is ignored too (as the store
            # converter over PyVCF3 does).
            self.exhausted = True
            return None
        row = _VCF_SPLIT.split(line.rstrip())
        try:
            chrom = row[0]
            try:
                pos = int(row[1])
            except ValueError as error:
                raise LineError(str(error)) from None
            vid = None if row[2] == "." else row[2]
            ref = row[3]
            alts_raw = [None if x in (".", "", "NA") else x for x in row[4].split(",")]
            qual = _vcf_number(row[5])
            filt_text = row[6]
            info = _parse_vcf_info(row[7], self.info_fields)
        except IndexError:
            raise LineError("list index out of range") from None
        fmt = row[8] if len(row) > 8 and row[8] != "." else None
        filt = None if filt_text == "." else ("PASS" if filt_text == "PASS"
                                              else ";".join(filt_text.split(";")))
        blanks: dict[int, dict] = {}
        for index, alt in enumerate(alts_raw):
            if alt is None:
                alt_base: str | None = ref
            elif alt == "<NON_REF>":
                alt_base = None
            elif (re.search(r"[\[\]]", alt) or (alt[0] == "." and len(alt) > 1)
                  or (alt[-1] == "." and len(alt) > 1) or (alt[0] == "<" and alt[-1] == ">")):
                kind = ("_Breakend" if re.search(r"[\[\]]", alt) else
                        "_SV" if alt[0] == "<" else "_SingleBreakend")
                raise LineError("'%s' object has no attribute 'sequence'" % kind)
            else:
                alt_base = alt
            new_pos, new_ref, new_alt = trim_vcf_alleles(pos, ref, alt_base)
            blanks[index + 1] = {"chrom": chrom, "pos": new_pos, "ref_base": new_ref,
                                 "alt_base": new_alt, "tags": vid, "phred": qual,
                                 "filter": filt}
        records: list[dict] = []
        self.gt_occur = []
        calls: list[_Call] = []
        if fmt is not None:
            keys = fmt.split(":")
            for sample, raw in zip(self.samples, row[9:]):
                values = raw.split(":")
                data = {}
                for i, k in enumerate(keys):
                    value = values[i] if i < len(values) else None
                    # PyVCF keeps GT as written ('.' included); other '.' become None
                    if k != "GT" and value in (".", ""):
                        value = None
                    data[k] = value
                calls.append(_Call(sample, data))
        if calls:
            all_gt_zero = True
            for call in calls:
                alleles = call.gt_alleles
                if alleles is not None:
                    for gt_text in list(OrderedDict.fromkeys(alleles)):
                        if gt_text == "0" or gt_text is None:
                            continue
                        all_gt_zero = False
                        gt = int(gt_text)
                        if gt not in blanks:
                            raise LineError(str(gt))
                        rec = dict(blanks[gt])
                        if rec["alt_base"] == "*":
                            continue
                        rec["sample_id"] = call.sample
                        het = call.is_het
                        rec["zygosity"] = "het" if het is True else ("hom" if het is False else None)
                        rec["tot_reads"], rec["alt_reads"], rec["af"] = _read_counts(call, gt)
                        rec["hap_block"] = rec["hap_strand"] = None
                        records.append(rec)
                        self.gt_occur.append(gt)
                else:
                    all_gt_zero = False
                    rec = dict(blanks[1])
                    rec.update(sample_id=call.sample, zygosity=None, tot_reads=None,
                               hap_block=None, hap_strand=None)
                    records.append(rec)
                    self.gt_occur.append(1)
            if all_gt_zero:
                raise LineError("All samples have the reference genotype.")
        else:
            for gt, blank in blanks.items():
                if blank["alt_base"] == "*":
                    continue
                records.append(dict(blank))
                self.gt_occur.append(gt)
        self.record = {"pos": pos, "ref": ref, "alts": alts_raw, "info": info}
        return records

    def extra_info_row(self, uid: int, unique_no: int) -> dict | None:
        """addl_operation_for_unique_variant: the extra_vcf_info row of a new variant."""
        record = self.record
        if record is None or unique_no >= len(self.gt_occur):
            return None
        gt = self.gt_occur[unique_no]
        row: dict[str, Any] = {"uid": uid}
        for key, value in record["info"].items():
            info = self.info_fields.get(key)
            name = key.replace("-", "_")
            if info is None:
                continue
            if info.number == 0:
                oc_val = _info_value(info.type, value)
            elif info.number == -1:
                oc_val = _info_value(info.type, value[gt - 1] if gt - 1 < len(value) else None)
            elif info.number == -2:
                oc_val = None
            elif info.number == -3:
                oc_val = _info_value(info.type, value[gt] if gt < len(value) else None)
            elif info.number == 1:
                oc_val = _info_value(info.type, value)
            else:
                values = value if isinstance(value, list) else [value]
                oc_val = ",".join(_info_value(info.type, v, True) for v in values)
            row[name] = oc_val
        alt = record["alts"][gt - 1]
        row["pos"], row["ref"], row["alt"] = record["pos"], record["ref"], alt
        return row


def _info_value(kind: str, value: Any, force_str: bool = False) -> Any:
    if value is None or value == ".":
        out = None
    elif kind in ("Integer", "Float") and isinstance(value, float) and math.isnan(value):
        out = None
    else:
        out = value
    if force_str:
        return str(out) if out is not None else "."
    return out


def _cravat_convert_line(line: str) -> list[dict] | None:
    if line.startswith("#"):
        return None
    ok, message = _cravat_check_line(line)
    if not ok:
        raise LineError(message)
    toks = _cravat_tokens(line)
    if not _strand_present(toks):
        toks.insert(2, "+")
    if len(toks) == 5:
        toks.append("")
    if len(toks) == 6:
        toks.append("")
    chrom, pos, strand, ref, alt, sample, tags = toks
    if strand == "-":
        try:
            pos = int(pos) - len(ref.replace("-", "")) + 1
            alt = "".join(COMPLEMENT[b] for b in alt[::-1])
            ref = "".join(COMPLEMENT[b] for b in ref[::-1])
        except KeyError as error:
            raise LineError(str(error)) from None
    return [{"tags": tags, "chrom": chrom, "pos": pos, "ref_base": ref, "alt_base": alt,
             "sample_id": sample}]


def convert(files: list[InputFile], forced_format: str | None = None) -> Conversion:
    """Run the converter over the job's input files (raises ConversionError)."""
    fmt = detect_format(files, forced_format)
    conv = Conversion(format=fmt, files=files)
    uid_of: dict[tuple, int] = {}
    variant_of: dict[int, Variant] = {}
    uid_counter = 1
    multiple = len(files) > 1
    for fileno, input_file in enumerate(files):
        reader = _VcfReader() if fmt == "vcf" else None
        if reader is not None:
            reader.read_header(input_file.lines)
            for info in reader.info_order:
                if all(f.id != info.id for f in conv.info_fields):
                    conv.info_fields.append(info)
        for lineno, line in enumerate(input_file.lines, start=1):
            try:
                records = (reader.convert_line(line) if reader is not None
                           else _cravat_convert_line(line))
            except Exception as error:  # convert_file's exc_handler: an error line that
                conv.error_lines += 1       # is not counted as input
                conv.errors.append((lineno, line, str(error)))
                continue
            if records is None:
                continue
            conv.num_input += 1
            try:
                if not records:
                    raise LineError("No valid alternate allele was found in any samples.")
                line_uids: list[int] = []
                unique_no = 0
                for rec in records:
                    chrom = rec["chrom"]
                    if not chrom.startswith("chr"):
                        chrom = "chr" + chrom
                    if chrom.lower() == "chrmt":
                        chrom = "chrM"
                    chrom = CHROM_FIXES.get(chrom, chrom)
                    rec["chrom"] = chrom
                    if multiple:
                        rec["sample_id"] = ("__".join([input_file.name, rec["sample_id"]])
                                            if "sample_id" in rec and rec["sample_id"] is not None
                                            else input_file.name)
                    original = (chrom, rec["pos"], rec["ref_base"], rec["alt_base"])
                    if not isinstance(rec["ref_base"], str) or BASE_RE.fullmatch(rec["ref_base"]) is None:
                        raise LineError("Invalid reference base")
                    if not isinstance(rec["alt_base"], str):
                        raise LineError("expected string or bytes-like object, got 'NoneType'")
                    if BASE_RE.fullmatch(rec["alt_base"]) is None:
                        raise LineError("Invalid alternate base")
                    pos, ref, alt = standardize_pos_ref_alt(int(rec["pos"]), rec["ref_base"],
                                                            rec["alt_base"])
                    # VTracker: the UID is handed out before the ref == alt check
                    key = (chrom, pos, ref + ":" + alt)
                    unique = key not in uid_of
                    if unique:
                        uid_of[key] = uid_counter
                        uid_counter += 1
                    uid = uid_of[key]
                    if ref == alt:
                        raise LineError("Reference and alternate alleles are the same.")
                    variant = variant_of.get(uid)
                    if unique:
                        variant = Variant(uid, chrom, pos, ref, alt, original)
                        variant_of[uid] = variant
                        conv.variants.append(variant)
                        if reader is not None:
                            variant.extra_info = reader.extra_info_row(uid, unique_no)
                        unique_no += 1
                    if uid not in line_uids:
                        tag = rec.get("tags")
                        tag = tag if tag not in ("",) else None
                        variant.mappings.append((fileno, lineno, tag))
                        conv.mapping_rows.append((lineno, fileno, tag, uid))
                        line_uids.append(uid)
                    sample = rec.get("sample_id")
                    row = SampleRow(None if sample in ("", None) else sample,
                                    {c.name: rec.get(c.name) for c in VCF_SAMPLE_COLUMNS}
                                    if fmt == "vcf" else {})
                    variant.samples.append(row)
                    conv.sample_rows.append((uid, row))
            except Exception as error:
                conv.error_lines += 1
                conv.errors.append((lineno, line, str(error)))
                continue
    if any(s.sample_id is not None for v in conv.variants for s in v.samples):
        # tagsampler: once any sample is named, unnamed ones become "no-sample"
        for v in conv.variants:
            for sample in v.samples:
                if sample.sample_id is None:
                    sample.sample_id = "no-sample"
    for variant in conv.variants:
        variant.mapped = map_variant(variant.chrom, variant.pos, variant.ref, variant.alt)
    return conv


# ---------------------------------------------------------------- result tables

BASE_COLUMNS = (
    Column("uid", "UID", "int"), Column("chrom", "Chrom"), Column("pos", "Position", "int"),
    Column("ref_base", "Ref Base"), Column("alt_base", "Alt Base"),
    Column("note_variant", "Variant Note"), Column("coding", "Coding"), Column("hugo", "Gene"),
    Column("transcript", "Transcript"), Column("so", "Sequence Ontology"),
    Column("exonno", "Exon Number", "int"), Column("cchange", "cDNA change"),
    Column("achange", "Protein Change"), Column("all_mappings", "All Mappings"),
    Column("gposend", "End Position", "int"), Column("numsample", "Sample Count", "int"),
    Column("samples", "Samples"), Column("tags", "Tags"),
)
ORIGINAL_INPUT_COLUMNS = (Column("chrom", "Chrom"), Column("pos", "Pos", "int"),
                          Column("ref_base", "Reference allele"),
                          Column("alt_base", "Alternate allele"))
VCFINFO_COLUMNS = (
    Column("phred", "Phred"), Column("filter", "VCF filter"), Column("zygosity", "Zygosity"),
    Column("alt_reads", "Alternate reads"), Column("tot_reads", "Total reads"),
    Column("af", "Variant AF"), Column("hap_block", "Haplotype block ID", "int"),
    Column("hap_strand", "Haplotype strand ID", "int"),
)
VCFINFO_SINGLE_TYPES = {"phred": "float", "alt_reads": "int", "tot_reads": "int",
                        "af": "float", "hap_block": "int", "hap_strand": "int"}
GENE_SUMMARY_COLUMNS = (Column("num_variants", "Number of Variants", "int"),
                        Column("so", "Sequence Ontology"),
                        Column("all_so", "All Sequence Ontologies"))


@dataclass
class Group:
    name: str
    displayname: str
    columns: list[Column]


@dataclass
class Table:
    level: str
    groups: list[Group]
    rows: list[list[Any]]
    uids: list[int] = field(default_factory=list)

    def columns(self) -> list[tuple[str, Column]]:
        return [(g.name, c) for g in self.groups for c in g.columns]


def _sqlite_value(kind: str, value: Any) -> Any:
    """What a typed sqlite column gives back for a written value."""
    if value is None or value == "":
        return None
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            try:
                return float(value)
            except (TypeError, ValueError):
                return value
    if kind == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    return value if isinstance(value, str) else str(value)


def flatten_all_mappings(value: str | None) -> str:
    """cravat_report: the mapper's JSON becomes sorted 'transcript:hugo:protein:so:achange:
    cchange' entries joined by '; ' in every report."""
    entries = []
    for hugo, rows in json.loads(value or "{}").items():
        for protid, protchange, so, transcript, rnachange in rows:
            entries.append(":".join([transcript, hugo, protid if protid is not None else "(na)", so,
                                     protchange if protchange is not None else "(na)",
                                     rnachange if rnachange is not None else "(na)"]))
    return "; ".join(sorted(entries))


def _vcfinfo_values(variant: Variant, multi_sample: bool) -> dict:
    rows = [s.values for s in variant.samples]
    out: dict[str, Any] = {}
    for col in VCFINFO_COLUMNS:
        # crs columns: phred/filter/zygosity strings, reads int, af float, as loaded
        crs_kind = {"alt_reads": "int", "tot_reads": "int", "af": "float",
                    "hap_block": "int", "hap_strand": "int"}.get(col.name, "string")
        values = [_sqlite_value(crs_kind, r.get(col.name)) for r in rows]
        if multi_sample:
            joined = ";".join("" if v is None else str(v) for v in values)
            chars = set(joined)
            out[col.name] = None if not chars or chars == {";"} else joined
        else:
            value = values[0] if values else None
            out[col.name] = _sqlite_value(VCFINFO_SINGLE_TYPES.get(col.name, "string"), value)
    return out


def variant_table(conv: Conversion, annotators: list[str]) -> Table:
    """The variant level as the reporters see it, groups in cravat_report's order."""
    groups = [Group("base", "Variant Annotation", list(BASE_COLUMNS))]
    others: list[Group] = []
    for name in annotators:
        module = ANNOTATORS[name]
        others.append(Group(name, module.title, list(module.columns)))
    others.append(Group("original_input", "Original Input", list(ORIGINAL_INPUT_COLUMNS)))
    is_vcf = conv.format == "vcf"
    if is_vcf:
        extra = [Column("pos", "VCF Position", "int"), Column("ref", "VCF Ref Allele"),
                 Column("alt", "VCF Alt Allele")]
        typemap = {"Integer": "int", "Float": "float"}
        for info in conv.info_fields:
            extra.append(Column(info.id.replace("-", "_"), info.id,
                                typemap.get(info.type, "string"), info.desc))
        others.append(Group("extra_vcf_info", "Extra VCF INFO Annotations", extra))
        multi = len({s.sample_id for v in conv.variants for s in v.samples
                     if s.sample_id is not None}) > 1
        vcfinfo_cols = [Column(c.name, c.title, c.type if multi else
                               VCFINFO_SINGLE_TYPES.get(c.name, c.type), c.desc)
                        for c in VCFINFO_COLUMNS]
        others.append(Group("vcfinfo", "VCF Info", vcfinfo_cols))
    else:
        multi = False
    others.sort(key=lambda g: g.displayname)
    groups.extend(others)
    rows: list[list[Any]] = []
    for v in conv.variants:
        values: dict[str, Any] = {}
        sample_ids = list(OrderedDict.fromkeys(s.sample_id for s in v.samples
                                               if s.sample_id is not None))
        tags = sorted({t for _, _, t in v.mappings if t is not None})
        base = {"uid": v.uid, "chrom": v.chrom, "pos": v.pos, "ref_base": v.ref,
                "alt_base": v.alt, "note_variant": None, **v.mapped,
                "all_mappings": flatten_all_mappings(v.mapped.get("all_mappings")),
                "numsample": len(sample_ids), "samples": ";".join(sample_ids),
                "tags": ";".join(tags)}
        for key, value in base.items():
            values["base__" + key] = value
        input_values = v.as_input()
        for name in annotators:
            # BaseAnnotator skips '*' alleles and non-canonical chromosomes (chrM too) in
            # jobs; the live annotator does not
            skipped = ANNOTATORS[name].level == "variant" and (
                v.chrom not in CANONICAL_CHROMS or v.alt == "*")
            out = {} if skipped else (annotate(name, input_values) or {})
            for col in ANNOTATORS[name].columns:
                values["%s__%s" % (name, col.name)] = out.get(col.name)
        for col, value in zip(ORIGINAL_INPUT_COLUMNS, v.original):
            values["original_input__" + col.name] = value
        if is_vcf:
            for key, value in (v.extra_info or {}).items():
                if key != "uid":
                    values["extra_vcf_info__" + key.replace("-", "_")] = value
            for key, value in _vcfinfo_values(v, multi).items():
                values["vcfinfo__" + key] = value
        row = []
        for group in groups:
            for col in group.columns:
                row.append(_sqlite_value(col.type, values.get("%s__%s" % (group.name, col.name))))
        rows.append(row)
    return Table("variant", groups, rows, [v.uid for v in conv.variants])


def other_tables(conv: Conversion, annotators: list[str]) -> list[Table]:
    """Gene, sample and mapping levels (textreporter writes every level)."""
    genes: "OrderedDict[str, list[Variant]]" = OrderedDict()
    for v in conv.variants:
        hugo = v.mapped.get("hugo")
        if hugo:
            genes.setdefault(hugo, []).append(v)
    gene_groups = [Group("base", "Variant Annotation",
                         [Column("hugo", "Gene"), Column("note_gene", "Gene Note")]
                         + list(GENE_SUMMARY_COLUMNS))]
    gene_modules = [n for n in annotators if ANNOTATORS[n].level == "gene"]
    for name in gene_modules:
        gene_groups.append(Group(name, ANNOTATORS[name].title, list(ANNOTATORS[name].columns)))
    gene_rows = []
    for hugo in genes:  # the mapper's gene list, in order of first appearance
        counts: dict[str, int] = {}
        for v in genes[hugo]:
            so = v.mapped.get("so")
            if so:
                counts[so] = counts.get(so, 0) + 1
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        row = [hugo, None, len(genes[hugo]), ordered[0][0] if ordered else None,
               ",".join("%s(%d)" % kv for kv in ordered)]
        for name in gene_modules:
            out = annotate(name, {"hugo": hugo}) or {}
            row.extend(out.get(c.name) for c in ANNOTATORS[name].columns)
        gene_rows.append(row)
    sample_cols = [Column("uid", "UID", "int"), Column("sample_id", "Sample")]
    if conv.format == "vcf":
        sample_cols += list(VCF_SAMPLE_COLUMNS)
    sample_rows = []
    for uid, sample in conv.sample_rows:  # the sample table, in the order it was loaded
        row = [uid, sample.sample_id]
        if conv.format == "vcf":
            row += [_sqlite_value(c.type, sample.values.get(c.name)) for c in VCF_SAMPLE_COLUMNS]
        sample_rows.append(row)
    mapping_cols = [Column("original_line", "Original Line", "int"), Column("tags", "User Tags"),
                    Column("uid", "UID", "int"), Column("fileno", "Input File Number", "int")]
    mapping_rows = [[line, tag, uid, fileno] for line, fileno, tag, uid in conv.mapping_rows]
    return [Table("gene", gene_groups, gene_rows),
            Table("sample", [Group("base", "Variant Annotation", sample_cols)], sample_rows),
            Table("mapping", [Group("base", "Variant Annotation", mapping_cols)], mapping_rows)]


# ---------------------------------------------------------------- report files

def _report_time(now: datetime.datetime) -> str:
    return now.strftime("%A %m/%d/%Y %X")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _display_name(group: str, column: str) -> str:
    return column if group == "base" else "%s.%s" % (group, column)


def render_table_report(table: Table, dbpath: str, now: datetime.datetime,
                        delimiter: str, header_lines: bool = True) -> str:
    """tsvreporter / csvreporter 2.1.0: '#' preface, column descriptions, header row, rows
    (2.2.0, `header_lines=False`, keeps only the header row and the rows)."""
    out = io.StringIO()
    lines = ['title="OpenCRAVAT Report"', "created=" + _report_time(now),
             "level=" + table.level, "datasource=" + dbpath]
    if header_lines:
        for line in lines:
            out.write("#" + line + "\n")
    names = []
    for number, (group, col) in enumerate(table.columns()):
        name = _display_name(group, col.name)
        if header_lines:
            out.write("#Column description. Column %d %s=%s\n" % (number, name, col.title))
        names.append(name)
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(names)
    for row in table.rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def render_text_report(tables: list[Table], now: datetime.datetime) -> str:
    """textreporter: per level a '#' preface, a group line, a title line and the rows."""
    out = io.StringIO()
    for table in tables:
        for line in ("CRAVAT Report", "Created at " + _report_time(now),
                     "Report level: " + table.level, ""):
            out.write("#" + line + "\n")
        group_line = ""
        for group in table.groups:
            if group.columns:
                group_line += group.displayname + "\t" * len(group.columns)
        if group_line:
            if group_line.endswith("\t"):  # only the last tab goes, as textreporter does
                group_line = group_line[:-1]
            out.write(group_line + "\n")
            out.write("\t".join(c.title for _, c in table.columns()) + "\n")
        for row in table.rows:
            out.write("\t".join(_cell(v) for v in row) + "\n")
    return out.getvalue()


_PERCENT = [("%", "%25"), (":", "%3A"), (";", "%3B"), ("=", "%3D"), (",", "%2C"),
            ("\n", "%0A"), ("\t", "%09"), ("\r", "%0D")]
_VCF_SKIP = {"base__uid", "base__chrom", "base__pos", "base__ref_base", "base__alt_base",
             "base__numsample", "base__samples", "base__tags"}


def _vcf_encode(value: str) -> str:
    for plain, coded in _PERCENT:
        value = value.replace(plain, coded)
    return value


def _vcf_include(col_name: str) -> bool:
    if col_name in _VCF_SKIP:
        return False
    if col_name.startswith(("extra_vcf_info__", "vcfinfo__", "tagsampler__")):
        return False
    return not col_name.endswith("__original_line")


def _vcf_info_cell(col_name: str, cell: Any) -> str:
    if col_name == "base__all_mappings" and isinstance(cell, str):
        cell = cell.replace(" ", "-")
    if cell is None:
        return ""
    if isinstance(cell, str):
        try:
            parsed = json.loads(cell)
        except json.JSONDecodeError:
            return _vcf_encode(cell)
        if isinstance(parsed, (dict, list)):
            return _vcf_encode(json.dumps(parsed, separators=(",", ":")))
        return _vcf_encode(cell)
    return str(cell)


def render_vcf_report(conv: Conversion, table: Table, now: datetime.datetime) -> str:
    """vcfreporter 3.x, INFO type 'separate'."""
    if conv.format == "vcf" and len(conv.files) > 1:
        return "VCF reporter can handle jobs with only 1 VCF input file\n"
    out = io.StringIO()
    out.write("##fileformat=VCFv4.2\n")
    out.write("##OpenCRAVATFileDate=" + now.strftime("%Y%m%d") + "\n")
    columns = [("%s__%s" % (g, c.name), c) for g, c in table.columns()]
    vcf_lines: dict[int, str] = {}
    samples: list[str] = []
    if conv.format == "vcf":
        written: list[str] = []
        for lineno, line in enumerate(conv.files[0].lines, start=1):
            if line.startswith("##fileformat="):
                continue
            if line.startswith("##"):
                if line not in written:
                    out.write(line if line.endswith("\n") else line + "\n")
                    written.append(line)
            elif line.startswith("#CHROM"):
                toks = line[:-1].split("\t") if line.endswith("\n") else line.split("\t")
                if len(toks) >= 10:
                    samples.extend(toks[9:])
            elif not line.startswith("#"):
                vcf_lines[lineno] = line.rstrip("\n").rstrip("\r")
    else:
        # `select distinct(base__sample_id) from sample` walks the sample_id index: sorted
        distinct = {s.sample_id for v in conv.variants for s in v.samples}
        ordered = ([None] if None in distinct else []) + sorted(x for x in distinct if x is not None)
        samples = ["NOSAMPLEID" if s is None else s for s in ordered] or ["NOSAMPLEID"]
    col_names = []
    for col_name, col in columns:
        if not _vcf_include(col_name):
            continue
        kind = col.type.capitalize()
        kind = "Integer" if kind == "Int" else kind
        out.write('##INFO=<ID=OC_%s,Number=A,Type=%s,Description="%s">\n'
                  % (col_name, kind, col.desc or ""))
        col_names.append(col_name)
    header = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    if samples:
        header += "\tFORMAT\t" + "\t".join(samples)
    out.write(header + "\n")
    variants = {v.uid: v for v in conv.variants}
    candidates: dict[int, dict] = {}
    for uid, row in zip(table.uids, table.rows):
        info: list[str] = []
        chrom = pos = ref = alt = None
        sample_cols: list[str] = []
        lineno = None
        for (col_name, _), cell in zip(columns, row):
            if col_name == "base__uid":
                for _, line_no, _ in variants[uid].mappings:
                    lineno = line_no
                    if conv.format == "vcf" and line_no not in candidates and line_no in vcf_lines:
                        alts = vcf_lines[line_no].split("\t")[4].split(",")
                        candidates[line_no] = {
                            "alts": alts, "annots": [],
                            "starless": len([a for a in alts if a not in ("*", "<NON_REF>")])}
                continue
            if conv.format == "vcf" and not _vcf_include(col_name):
                continue
            info.append(_vcf_info_cell(col_name, cell))
            if conv.format != "vcf":
                if col_name == "base__chrom":
                    chrom = cell.lstrip("chr")
                elif col_name == "base__pos":
                    pos = cell
                elif col_name == "base__ref_base":
                    ref = cell
                elif col_name == "base__alt_base":
                    alt = cell
                elif col_name == "base__samples":
                    with_variant = (cell or "").split(",")
                    sample_cols = ["1|1" if s in with_variant else ".|." for s in samples]
        if conv.format == "vcf":
            if lineno not in candidates:
                continue
            candidate = candidates[lineno]
            alts, annots, starless = candidate["alts"], candidate["annots"], candidate["starless"]
        else:
            alts, annots, starless = [alt], [], 1
        annots.append(info)
        if len(annots) != starless:
            continue
        combined = [["." for _ in alts] for _ in range(len(annots[0]))]
        for fieldno in range(len(annots[0])):
            offset = 0
            for altno, alt_text in enumerate(alts):
                if alt_text in ("*", "<NON_REF>"):
                    offset += 1
                else:
                    combined[fieldno][altno] = annots[altno - offset][fieldno]
        parts = []
        for colno, name in enumerate(col_names):
            values = combined[colno]
            if any(v not in ("", '""') for v in values):
                parts.append("OC_%s=%s" % (name, ",".join(values)))
        info_text = ";".join(parts)
        if conv.format == "vcf":
            toks = vcf_lines[lineno].split("\t")
            if len(toks) > 7:
                toks[7] = info_text if toks[7] in (".", "") else toks[7] + ";" + info_text
            del candidates[lineno]
        else:
            toks = [str(chrom), str(pos), str(uid), str(ref), str(alt), ".", ".", info_text,
                    "GT"] + sample_cols
        out.write("\t".join(toks) + "\n")
    return out.getvalue()


def render_report(report_type: str, conv: Conversion, annotators: list[str], dbpath: str,
                  now: datetime.datetime, header_lines: bool = True) -> str | None:
    """The content of one report type, None for a type with no installed reporter."""
    if report_type + "reporter" not in REPORTERS:
        return None
    table = variant_table(conv, annotators)
    if report_type == "tsv":
        return render_table_report(table, dbpath, now, "\t", header_lines)
    if report_type == "csv":
        return render_table_report(table, dbpath, now, ",", header_lines)
    if report_type == "vcf":
        return render_vcf_report(conv, table, now)
    return render_text_report([table] + other_tables(conv, annotators), now)


def errors_text(conv: Conversion) -> str:
    """The job's .err file: one entry per rejected line."""
    return "".join("SOURCE:%-20s \nLINE:%d\nINPUT:%s\nERROR:%s\n#\n"
                   % ("error.converter", lineno, line[:-1], message)
                   for lineno, line, message in conv.errors)


__all__ = [
    "ANNOTATORS", "ASSEMBLIES", "CONVERTER_FORMATS", "Conversion", "ConversionError",
    "InputFile", "OPEN_CRAVAT_VERSION", "REPORTERS", "annotate", "convert", "decode_input",
    "live_annotation", "map_variant", "render_report", "report_filename",
    "standardize_pos_ref_alt", "trim_vcf_alleles", "valid_report_types", "errors_text",
]
