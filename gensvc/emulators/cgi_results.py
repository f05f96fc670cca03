"""What the CGI emulator computes: reading the uploaded inputs, and the result zip.

The layout copies a real CGI result (v23.12.2, BRCA on hg19; `shared/data/cgi_results_example.zip`)
and two published API runs (a `CHR POS REF ALT` table and a `chr pos ref alt` table on hg38):

- the zip is flat: `alterations.tsv`, `biomarkers.tsv`, `input01.tsv` (`input02.tsv`, ... one per
  uploaded file, in the order mutations, cnas, translocations; each the file as received,
  gunzipped if it was gzip) and `summary.txt`; deflated, Unix modes, member times in CGI's
  local time (Europe/Madrid);
- `alterations.tsv`: `Input ID, CHROMOSOME, POSITION, REF, ALT`, then the input's own columns
  except those whose names CGI's own columns take (a VCF's `REF` and `ALT`, a table's `REF`
  and `ALT`), then `ALT_TYPE, STRAND, CGI-INFO` (for a VCF; `CGI-Sample ID` for a table),
  `CGI-Gene, CGI-Protein Change, CGI-Oncogenic Summary, CGI-Oncogenic Prediction,
  CGI-External oncogenic annotation, CGI-Mutation, CGI-Consequence, CGI-Transcript, CGI-STRAND,
  CGI-Type, CGI-HGVS, CGI-HGVSc, CGI-HGVSp`. `Input ID` is `input01_<n>`, n the row's place
  among the file's data lines. Identical alterations of one sample are kept once, the last
  one winning (the real result drops `input01_68` for the identical `input01_69`).
  Indels are left-trimmed: a deletion moves to POS+1 with ALT `-`, an insertion stays at POS
  with REF `-`; CHROMOSOME loses any `chr`, the input's own columns keep their values.
- `biomarkers.tsv`: `Sample ID, Alterations, Biomarker, Drugs, Diseases, Response, Evidence,
  Match, Source, BioM, Resist., Tumor type`, from a small catalogue below; BioM is `complete`,
  `only alteration type` or `only gene` as the alteration matches; Match is `YES` when the
  biomarker's tumour type is the analysed one, `CANCER`, or `SOLID` for a solid cancer type.
- `summary.txt`: the four sections with counts consistent with both tables.

What the real service derives from its databases is made up here, deterministically. A
genomic alteration's gene, transcript, consequence and position in the protein follow the
emulators' shared synthetic gene model, `data/gene_model.tsv` (the OpenCRAVAT emulator reads
the same file with its own code, so both tell one story; the file's header holds the rules);
the oncogenic class, other residues and biomarkers are a function of the alteration (a hash),
drawn from the real result's vocabulary, so the same input always gives the same bytes apart from
`summary.txt`'s Analysis ID and Date. CNAs and fusions (absent from the real example) become
rows of the same `alterations.tsv`: genomic columns empty, `ALT_TYPE` `cna`/`fusion`,
`CGI-Type` `AMP`/`DEL`/`FUSION`, `CGI-Gene` the gene or `GENE1__GENE2`.

Also here: the hostile archives served by the emulator's `hostile_zip` fault.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import stat
import threading
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

CGI_VERSION = "v23.12.2"
INPUT_FIELDS = ("mutations", "cnas", "translocations")
MAX_INPUT_BYTES = 256 * 1024 * 1024  # after gunzip

# CGI's cancer type codes (cancertypes 1.0-20171019), code and name: the package's data file,
# the one the client reads too (a code named twice keeps its last name).
CANCER_TYPES: dict[str, str] = dict(
    line.split("\t", 1) for line in
    (Path(__file__).parent.parent / "data" / "cgi_cancer_types.tsv").read_text().splitlines() if line)

# Codes whose biomarkers for "SOLID" do not apply (blood cancers).
HEMATOLOGIC_TYPES = frozenset({
    "ACML", "AEL", "ALCL", "ALL", "AML", "APML", "BCL", "BLY", "CLL", "CML", "CMP", "CNL",
    "CNSLY", "CTCL", "DLBCL", "ECL", "FL", "HCL", "HEMATO", "HISEC", "HISLC", "LBCL", "LGLK",
    "LK", "LL", "LPL", "LY", "MALT", "MAS", "MCL", "MCLK", "MDPS", "MDS", "MKB", "MM", "MML",
    "MUCLY", "MY", "MYMA", "NHLY", "NKTL", "PTCL", "SLL", "SM", "TCALL", "TCPL", "WM",
})


# --- columns -------------------------------------------------------------------------------

LEAD_COLUMNS = ["Input ID", "CHROMOSOME", "POSITION", "REF", "ALT"]
SAMPLE_COLUMN_VCF = "CGI-INFO"
SAMPLE_COLUMN_TABLE = "CGI-Sample ID"
CGI_COLUMNS = [
    "CGI-Gene", "CGI-Protein Change", "CGI-Oncogenic Summary", "CGI-Oncogenic Prediction",
    "CGI-External oncogenic annotation", "CGI-Mutation", "CGI-Consequence", "CGI-Transcript",
    "CGI-STRAND", "CGI-Type", "CGI-HGVS", "CGI-HGVSc", "CGI-HGVSp",
]
MIDDLE_COLUMNS = ["ALT_TYPE", "STRAND"]
_RESERVED = frozenset(LEAD_COLUMNS + MIDDLE_COLUMNS + CGI_COLUMNS
                      + [SAMPLE_COLUMN_VCF, SAMPLE_COLUMN_TABLE])
BIOMARKER_COLUMNS = ["Sample ID", "Alterations", "Biomarker", "Drugs", "Diseases", "Response",
                     "Evidence", "Match", "Source", "BioM", "Resist.", "Tumor type"]

# The real result's vocabulary.
SUMMARY_PREDICTED_AND_ANNOTATED = "oncogenic (predicted and annotated)"
SUMMARY_ANNOTATED = "oncogenic (annotated)"
SUMMARY_PREDICTED = "oncogenic (predicted)"
SUMMARY_NON_ONCOGENIC = "non-oncogenic"
ONCOGENIC_SUMMARIES = (SUMMARY_PREDICTED_AND_ANNOTATED, SUMMARY_ANNOTATED, SUMMARY_PREDICTED,
                       SUMMARY_NON_ONCOGENIC)
DRIVER_PREDICTIONS = ("driver (boostDM: non-tissue-specific model)", "driver (oncodriveMUT)",
                      "driver (boostDM: tissue specific model)")
PASSENGER_PREDICTIONS = ("passenger (oncodriveMUT)",) * 9 + ("passenger (boostDM)",)
EXTERNAL_ANNOTATIONS = ("cgi,oncokb,clinvar:{n}", "cgi,clinvar:{n}", "oncokb,clinvar:{n}",
                        "clinvar:{n}", "cgi,oncokb")


# --- genes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Gene:
    symbol: str
    chrom: str
    transcript: str  # versioned Ensembl transcript
    protein: str  # versioned Ensembl protein
    length: int  # amino acids (approximate; bounds the made-up protein positions)
    start: int = 0  # hg38 span and strand, for the genes of the shared model
    end: int = 0
    strand: str = "+"


# Transcripts as the real results report them.
GENES: tuple[Gene, ...] = (
    Gene("MTOR", "1", "ENST00000361445.9", "ENSP00000354558.4", 2549),
    Gene("MTHFR", "1", "ENST00000376585.6", "ENSP00000365770.1", 656),
    Gene("EPHA2", "1", "ENST00000358432.8", "ENSP00000351209.5", 976),
    Gene("EPHB2", "1", "ENST00000400191.7", "ENSP00000383053.3", 1055),
    Gene("CSF3R", "1", "ENST00000373103.5", "ENSP00000362195.1", 836),
    Gene("MPL", "1", "ENST00000372470.9", "ENSP00000361548.3", 635),
    Gene("JAK1", "1", "ENST00000672434.1", "ENSP00000499900.1", 1154),
    Gene("NRAS", "1", "ENST00000369535.5", "ENSP00000358548.4", 189),
    Gene("EGFR", "7", "ENST00000275493.7", "ENSP00000275493.2", 1210),
    Gene("GNAQ", "9", "ENST00000286548.9", "ENSP00000286548.4", 359),
    Gene("JAK2", "9", "ENST00000381652.4", "ENSP00000371067.4", 1132),
    Gene("RET", "10", "ENST00000355710.8", "ENSP00000347942.3", 1114),
    Gene("HRAS", "11", "ENST00000451590.5", "ENSP00000407586.1", 189),
    Gene("STK33", "11", "ENST00000447869.5", "ENSP00000416750.1", 514),
    Gene("WT1", "11", "ENST00000452863.10", "ENSP00000415516.5", 517),
    Gene("SF3B2", "11", "ENST00000322535.11", "ENSP00000318861.6", 895),
    Gene("GSTP1", "11", "ENST00000398606.10", "ENSP00000381607.3", 210),
    Gene("ATM", "11", "ENST00000278616.8", "ENSP00000278616.4", 3056),
    Gene("RB1", "13", "ENST00000267163.6", "ENSP00000267163.4", 928),
    Gene("AKT1", "14", "ENST00000554581.5", "ENSP00000451828.1", 480),
    Gene("CREBBP", "16", "ENST00000262367.10", "ENSP00000262367.5", 2442),
    Gene("NQO1", "16", "ENST00000320623.10", "ENSP00000319788.5", 274),
    Gene("PLCG2", "16", "ENST00000564138.6", "ENSP00000482457.1", 1265),
    Gene("TP53", "17", "ENST00000269305.9", "ENSP00000269305.4", 393),
    Gene("SMAD4", "18", "ENST00000342988.8", "ENSP00000341551.3", 552),
    Gene("STK11", "19", "ENST00000326873.12", "ENSP00000324856.6", 433),
    Gene("CALR", "19", "ENST00000316448.10", "ENSP00000320866.4", 417),
    Gene("GNAS", "20", "ENST00000371100.8", "ENSP00000360141.3", 1037),
    Gene("RUNX1", "21", "ENST00000300305.7", "ENSP00000300305.3", 480),
    Gene("EP300", "22", "ENST00000263253.9", "ENSP00000263253.7", 2414),
    Gene("BTK", "X", "ENST00000621635.4", "ENSP00000483570.1", 659),
)
GENES_BY_SYMBOL = {gene.symbol: gene for gene in GENES}
_CHROMOSOMES = tuple(str(n) for n in range(1, 23)) + ("X", "Y")

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
THREE_LETTER = {
    "A": "Ala", "C": "Cys", "D": "Asp", "E": "Glu", "F": "Phe", "G": "Gly", "H": "His",
    "I": "Ile", "K": "Lys", "L": "Leu", "M": "Met", "N": "Asn", "P": "Pro", "Q": "Gln",
    "R": "Arg", "S": "Ser", "T": "Thr", "V": "Val", "W": "Trp", "Y": "Tyr", "*": "Ter",
}


def _draw(*parts: object) -> int:
    """A stable pseudo-random number from the parts (same parts, same number, any run)."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


GENE_MODEL_PATH = Path(__file__).with_name("data") / "gene_model.tsv"
_MODEL: list[Gene] = []


def model_genes() -> list[Gene]:
    """The emulators' shared synthetic gene model (the OpenCRAVAT emulator reads the same
    file with its own code; its header holds the rules both follow)."""
    if not _MODEL:
        lines = [line for line in GENE_MODEL_PATH.read_text().splitlines()
                 if line and not line.startswith("#")]
        for row in csv.DictReader(lines, delimiter="\t"):
            _MODEL.append(Gene(row["symbol"], row["chrom"], row["transcript"], row["protein"],
                               int(row["protein_length"]), int(row["start"]), int(row["end"]),
                               row["strand"]))
    return _MODEL


def gene_named(symbol: str) -> Gene:
    """The model's or the table's gene, or a made-up but stable record for any other symbol."""
    known = next((gene for gene in model_genes() if gene.symbol == symbol), None)
    known = known or GENES_BY_SYMBOL.get(symbol)
    if known is not None:
        return known
    number = _draw("transcript", symbol) % 700000 + 200000
    return Gene(symbol, _CHROMOSOMES[_draw("chrom", symbol) % len(_CHROMOSOMES)],
                f"ENST00000{number:06d}.1", f"ENSP00000{number:06d}.1",
                300 + _draw("length", symbol) % 1200)


@dataclass(frozen=True)
class CodingPlace:
    """Where a genomic alteration falls, by the gene model's rules."""
    gene: Gene
    cpos: int  # cDNA position
    aa: int  # protein position
    codon_base: int  # 1, 2 or 3 (0 in a filler gene, whose rules differ)
    ref_aa: str
    ref: str  # the alleles on the gene's strand
    alt: str
    filler: bool  # a GS<chrom>_<Mb> gene outside the model


_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}


def _on_strand(bases: str, strand: str) -> str:
    if strand == "+" or bases == "-":
        return bases
    return "".join(_COMPLEMENT[base] for base in reversed(bases))


def coding_place(chrom: str, pos: int, ref: str, alt: str) -> CodingPlace | None:
    """The gene model's placement (data/gene_model.tsv); None off chromosomes 1-22, X, Y."""
    first = pos + 1 if ref == "-" else pos  # the model places an insertion after its anchor
    if chrom not in _CHROMOSOMES:
        return None
    for gene in model_genes():
        if gene.chrom == chrom and gene.start <= first <= gene.end:
            offset = first - gene.start if gene.strand == "+" else gene.end - first
            cpos = offset % (3 * gene.length) + 1
            aa = (cpos - 1) // 3 + 1
            return CodingPlace(gene, cpos, aa, (cpos - 1) % 3 + 1, AMINO_ACIDS[aa % 20],
                               _on_strand(ref, gene.strand), _on_strand(alt, gene.strand), False)
    block = first // 1_000_000
    filler = Gene(f"GS{chrom}_{block}", chrom, f"ENSTGS{chrom}_{block}.1", f"PGS{chrom}_{block}", 1000)
    return CodingPlace(filler, first % 3000 + 1, first % 1000 + 1, 0, "A", ref, alt, True)


# --- inputs --------------------------------------------------------------------------------

class InputError(ValueError):
    """An uploaded file CGI cannot read; the job ends in Error with this message logged."""


@dataclass
class Alteration:
    input_id: str
    sample: str
    kind: str  # "mutation", "cna" or "fusion"
    values: dict[str, str]  # the input row by its own column names
    chrom: str = ""
    pos: int = 0
    ref: str = ""
    alt: str = ""
    gene: str = ""  # given by the input (protein, cna, fus); otherwise derived
    protein: str = ""  # given by a protein-format input, e.g. "R248Q"
    cna: str = ""  # AMP or DEL
    fusion: tuple[str, str] | None = None

    def key(self) -> tuple:
        if self.kind == "mutation":
            if self.protein:
                return ("protein", self.sample, self.gene, self.protein)
            return ("mutation", self.sample, self.chrom, self.pos, self.ref, self.alt)
        if self.kind == "cna":
            return ("cna", self.sample, self.gene, self.cna)
        return ("fusion", self.sample, self.fusion)


@dataclass
class ParsedInput:
    name: str  # input01, input02, ...
    field: str  # mutations, cnas or translocations
    format: str  # vcf, chr-pos-ref-alt, gdna, protein, cna, fusion
    columns: list[str]  # the input's own columns, in its order
    data: bytes  # inputNN.tsv as stored in the result
    alterations: list[Alteration]

    @property
    def file_name(self) -> str:
        return f"{self.name}.tsv"


def _read_text(data: bytes) -> tuple[bytes, str]:
    if data[:2] == b"\x1f\x8b":
        try:
            decompressor = zlib.decompressobj(wbits=47)
            data = decompressor.decompress(data, MAX_INPUT_BYTES + 1)
        except zlib.error as error:
            raise InputError(f"the file is gzip-compressed but cannot be decompressed ({error})")
        if len(data) > MAX_INPUT_BYTES:
            raise InputError("the file is larger than the service accepts")
    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        raise InputError("the file is binary, not text")
    return data, text


_BASES = re.compile(r"[ACGTN]+")


def _allele(value: str, where: str) -> str:
    value = value.strip().upper()
    if value in ("-", ""):
        return ""
    if not _BASES.fullmatch(value):
        raise InputError(f"{where}: the allele {value!r} is not a DNA sequence")
    return value


def _chrom(value: str, where: str) -> str:
    chrom = value.strip()
    if chrom.lower().startswith("chr"):
        chrom = chrom[3:]
    chrom = chrom.upper() if chrom.lower() in ("x", "y", "m", "mt") else chrom
    if not chrom:
        raise InputError(f"{where}: the chromosome is empty")
    return chrom


def _position(value: str, where: str) -> int:
    try:
        pos = int(value.strip())
    except ValueError:
        raise InputError(f"{where}: the position {value.strip()!r} is not a number") from None
    if pos < 1:
        raise InputError(f"{where}: the position {pos} is not positive")
    return pos


def normalise(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """CGI's trimming: drop the shared leading bases (a deletion then starts one base later,
    an insertion stays at its anchor), then shared trailing ones; empty alleles become '-'."""
    shared = 0
    while shared < min(len(ref), len(alt)) and ref[shared] == alt[shared]:
        shared += 1
    if shared:
        ref, alt = ref[shared:], alt[shared:]
        pos = pos + shared if ref else pos + shared - 1
    while ref and alt and len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    return pos, ref or "-", alt or "-"


def _data_lines(text: str, start: int = 0):
    """(line number, line) of the non-blank lines from `start`."""
    for number, line in enumerate(text.splitlines()[start:], start=start + 1):
        if line.strip():
            yield number, line


def _split_row(line: str, width: int, number: int) -> list[str]:
    fields = line.split("\t")
    if len(fields) > width:
        raise InputError(f"line {number}: {len(fields)} columns, but the header has {width}")
    return fields + [""] * (width - len(fields))


def _read_vcf(name: str, text: str) -> tuple[list[str], list[Alteration]]:
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.startswith("#CHROM")), None)
    if header_at is None:
        raise InputError("the VCF has no #CHROM header line")
    columns = lines[header_at].rstrip("\r").split("\t")
    if [column.upper() for column in columns[:5]] != ["#CHROM", "POS", "ID", "REF", "ALT"]:
        raise InputError("the VCF header line must start with #CHROM, POS, ID, REF and ALT "
                         "separated by tabs")
    alterations: list[Alteration] = []
    ordinal = 0
    for number, line in _data_lines(text, header_at + 1):
        if line.startswith("#"):
            continue
        ordinal += 1
        fields = _split_row(line, len(columns), number)
        where = f"line {number}"
        if not all(fields[:5]):
            raise InputError(f"{where}: fewer than the 5 required VCF columns")
        chrom, pos = _chrom(fields[0], where), _position(fields[1], where)
        ref = _allele(fields[3], where)
        if not ref:
            raise InputError(f"{where}: the REF allele is empty")
        values = dict(zip(columns, fields))
        for alt_text in fields[4].split(","):
            if alt_text.strip() in (".", "*") or alt_text.startswith("<"):
                continue  # no alteration, or a symbolic allele CGI does not analyse
            alt = _allele(alt_text, where)
            if not alt:
                raise InputError(f"{where}: the ALT allele is empty")
            n_pos, n_ref, n_alt = normalise(pos, ref, alt)
            alterations.append(Alteration(
                input_id=f"{name}_{ordinal}", sample=name, kind="mutation", values=values,
                chrom=chrom, pos=n_pos, ref=n_ref, alt=n_alt))
    return columns, alterations


_GDNA_SNV = re.compile(r"(?:chr)?(\w+):g\.(\d+)([ACGTN])>([ACGTN])", re.IGNORECASE)
_GDNA_DEL = re.compile(r"(?:chr)?(\w+):g\.(\d+)(?:_(\d+))?del([ACGTN]*)", re.IGNORECASE)
_GDNA_INS = re.compile(r"(?:chr)?(\w+):g\.(\d+)_(\d+)ins([ACGTN]+)", re.IGNORECASE)
_GDNA_DELINS = re.compile(r"(?:chr)?(\w+):g\.(\d+)(?:_(\d+))?delins([ACGTN]+)", re.IGNORECASE)
_PROTEIN = re.compile(r"([A-Za-z0-9_.\-]+):(?:p\.)?(\S+)")


def _made_up_bases(length: int, *key: object) -> str:
    return "".join("ACGT"[_draw("base", i, *key) % 4] for i in range(length))


def _parse_gdna(value: str, where: str) -> tuple[str, int, str, str]:
    value = value.strip()
    if match := _GDNA_SNV.fullmatch(value):
        chrom, pos, ref, alt = match.groups()
        return _chrom(chrom, where), int(pos), ref.upper(), alt.upper()
    if match := _GDNA_DELINS.fullmatch(value):
        chrom, start, end, alt = match.groups()
        length = int(end or start) - int(start) + 1
        return (_chrom(chrom, where), int(start), _made_up_bases(length, value), alt.upper())
    if match := _GDNA_DEL.fullmatch(value):
        chrom, start, end, bases = match.groups()
        length = int(end or start) - int(start) + 1
        ref = bases.upper() or _made_up_bases(length, value)
        return _chrom(chrom, where), int(start), ref, "-"
    if match := _GDNA_INS.fullmatch(value):
        chrom, start, _end, alt = match.groups()
        return _chrom(chrom, where), int(start), "-", alt.upper()
    raise InputError(f"{where}: cannot read the genomic HGVS {value!r} "
                     "(expected e.g. chr3:g.178936091G>A)")


def _read_table(name: str, field_name: str, text: str) -> tuple[str, list[str], list[Alteration]]:
    lines = list(_data_lines(text))
    if not lines:
        raise InputError("the file is empty")
    _, header = lines[0]
    columns = [column.strip() for column in header.rstrip("\r").split("\t")]
    # Column names in any case; a leading '#' (a commented header) does not count.
    lower = {column.lower().lstrip("#"): column for column in reversed(columns)}
    sample_column = lower.get("sample")

    if field_name == "mutations":
        if {"chr", "pos", "ref", "alt"} <= lower.keys():
            fmt = "chr-pos-ref-alt"
        elif "gdna" in lower:
            fmt = "gdna"
        elif "protein" in lower:
            fmt = "protein"
        else:
            raise InputError(
                "the file is neither a VCF nor a tab-separated table with a 'protein' column, "
                "a 'gdna' column or the columns 'chr', 'pos', 'ref' and 'alt' "
                f"(its header has: {', '.join(columns)})")
    elif field_name == "cnas":
        if not {"gene", "cna"} <= lower.keys():
            raise InputError("a CNA file needs the tab-separated columns 'gene' and 'cna' "
                             f"(its header has: {', '.join(columns)})")
        fmt = "cna"
    else:
        if "fus" not in lower:
            raise InputError("a translocation file needs a 'fus' column with values like "
                             f"BCR__ABL1 (its header has: {', '.join(columns)})")
        fmt = "fusion"

    alterations: list[Alteration] = []
    for ordinal, (number, line) in enumerate(lines[1:], start=1):
        fields = _split_row(line.rstrip("\r"), len(columns), number)
        values = dict(zip(columns, fields))
        where = f"line {number}"
        sample = (values.get(sample_column, "").strip() if sample_column else "") or name
        alteration = Alteration(input_id=f"{name}_{ordinal}", sample=sample, kind="mutation",
                                values=values)
        if fmt == "chr-pos-ref-alt":
            chrom = _chrom(values[lower["chr"]], where)
            pos = _position(values[lower["pos"]], where)
            ref, alt = _allele(values[lower["ref"]], where), _allele(values[lower["alt"]], where)
            if not ref and not alt:
                raise InputError(f"{where}: both alleles are empty")
            alteration.chrom = chrom
            alteration.pos, alteration.ref, alteration.alt = normalise(pos, ref, alt)
        elif fmt == "gdna":
            chrom, pos, ref, alt = _parse_gdna(values[lower["gdna"]], where)
            alteration.chrom = chrom
            alteration.pos, alteration.ref, alteration.alt = normalise(
                pos, ref.strip("-"), alt.strip("-"))
        elif fmt == "protein":
            match = _PROTEIN.fullmatch(values[lower["protein"]].strip())
            if not match:
                raise InputError(f"{where}: cannot read the protein change "
                                 f"{values[lower['protein']]!r} (expected e.g. TP53:p.R248Q)")
            alteration.gene, alteration.protein = match.group(1), match.group(2)
        elif fmt == "cna":
            gene, cna = values[lower["gene"]].strip(), values[lower["cna"]].strip().upper()
            if not gene:
                raise InputError(f"{where}: the gene is empty")
            if cna not in ("AMP", "DEL"):
                raise InputError(f"{where}: the cna value {values[lower['cna']]!r} "
                                 "is neither amp nor del")
            alteration.kind, alteration.gene, alteration.cna = "cna", gene, cna
        else:
            fus = values[lower["fus"]].strip()
            first, sep, second = fus.partition("__")
            if not sep or not first or not second or "__" in second:
                raise InputError(f"{where}: the fusion {fus!r} is not written GENE1__GENE2")
            alteration.kind, alteration.fusion = "fusion", (first, second)
            alteration.gene = fus
        alterations.append(alteration)
    return fmt, columns, alterations


def read_input(name: str, field_name: str, data: bytes) -> ParsedInput:
    """One uploaded file as CGI reads it; raises InputError when it cannot."""
    if field_name not in INPUT_FIELDS:
        raise ValueError(f"unknown input field {field_name!r}")
    if not data.strip():
        raise InputError("the file is empty")
    stored, text = _read_text(data)
    first = next((line for _, line in _data_lines(text)), "")
    if field_name == "mutations" and (
            first.startswith("##fileformat=VCF") or first.startswith("#CHROM")):
        columns, alterations = _read_vcf(name, text)
        fmt = "vcf"
    else:
        fmt, columns, alterations = _read_table(name, field_name, text)
    return ParsedInput(name=name, field=field_name, format=fmt, columns=columns, data=stored,
                       alterations=alterations)


def unique_alterations(alterations: list[Alteration]) -> list[Alteration]:
    """Identical alterations of one sample kept once: the last one, in its place."""
    last = {alteration.key(): index for index, alteration in enumerate(alterations)}
    return [alteration for index, alteration in enumerate(alterations)
            if last[alteration.key()] == index]


# --- interpretation ------------------------------------------------------------------------

@dataclass
class Interpretation:
    gene: str
    protein_change: str = ""
    summary: str = ""
    prediction: str = ""
    external: str = ""
    mutation: str = ""
    consequence: str = ""
    transcript: str = ""
    cgi_type: str = ""
    alt_type: str = ""
    hgvs: str = ""
    hgvsc: str = ""
    hgvsp: str = ""
    strand: str = "+"

    @property
    def oncogenic(self) -> bool:
        return self.summary.startswith("oncogenic")


def _classify(key: str, predictable: bool = True) -> tuple[str, str, str]:
    """Oncogenic summary, prediction and external annotation, consistent with one another."""
    roll = _draw("summary", key) % 100
    if roll < 45:
        summary = SUMMARY_PREDICTED_AND_ANNOTATED
    elif roll < 80:
        summary = SUMMARY_ANNOTATED
    elif roll < 88:
        summary = SUMMARY_PREDICTED
    else:
        summary = SUMMARY_NON_ONCOGENIC
    if not predictable:  # CNAs and fusions: annotated or not, never predicted
        summary = SUMMARY_ANNOTATED if summary != SUMMARY_NON_ONCOGENIC else summary
        prediction = ""
    elif "predicted" in summary:
        prediction = DRIVER_PREDICTIONS[_draw("driver", key) % len(DRIVER_PREDICTIONS)]
    else:
        prediction = PASSENGER_PREDICTIONS[_draw("passenger", key) % len(PASSENGER_PREDICTIONS)]
    external = ""
    if "annotated" in summary:
        template = EXTERNAL_ANNOTATIONS[_draw("external", key) % len(EXTERNAL_ANNOTATIONS)]
        external = template.format(n=10000 + _draw("clinvar", key) % 370000)
    return summary, prediction, external


def _residues(count: int, *key: object) -> str:
    return "".join(AMINO_ACIDS[_draw("aa", i, *key) % 20] for i in range(count))


def _three(residues: str) -> str:
    return "".join(THREE_LETTER[residue] for residue in residues)


def _interpret_genomic(alteration: Alteration) -> Interpretation:
    chrom, pos, ref, alt = alteration.chrom, alteration.pos, alteration.ref, alteration.alt
    key = f"{chrom}:{pos}:{ref}:{alt}"
    if ref == "-":
        cgi_type, alt_type, length = "INS", "indel", len(alt)
        mutation = f"chr{chrom}:{pos}-{pos + 1} ->{alt}"
    elif alt == "-":
        cgi_type, alt_type, length = "DEL", "indel", len(ref)
        mutation = f"chr{chrom}:{pos}-{pos} {ref}>-"
    elif len(ref) == 1 and len(alt) == 1:
        cgi_type, alt_type, length = "SNV", "snp", 1
        mutation = f"chr{chrom}:{pos} {ref}>{alt}"
    elif len(ref) == len(alt):
        cgi_type, alt_type, length = "MNV", "mnp", len(ref)
        mutation = f"chr{chrom}:{pos}-{pos + len(ref) - 1} {ref}>{alt}"
    else:
        cgi_type, alt_type, length = "INDEL", "indel", abs(len(ref) - len(alt))
        mutation = f"chr{chrom}:{pos}-{pos + len(ref) - 1} {ref}>{alt}"
    place = coding_place(chrom, pos, ref, alt)
    if place is None:  # off the model's chromosomes: no gene, as OpenCRAVAT's mapper says
        return Interpretation(gene="", summary=SUMMARY_NON_ONCOGENIC,
                              prediction=PASSENGER_PREDICTIONS[0], mutation=mutation,
                              consequence="intergenic_variant", cgi_type=cgi_type,
                              alt_type=alt_type)
    gene, aa_pos, cdna, ref_aa = place.gene, place.aa, place.cpos, place.ref_aa
    ref_s, alt_s = place.ref, place.alt
    transcript = gene.transcript.split(".")[0]
    here = f"{THREE_LETTER[ref_aa]}{aa_pos}"
    if cgi_type == "INS":
        c_change = f"c.{cdna}_{cdna + 1}ins{alt_s}"
    elif cgi_type == "DEL":
        c_change = f"c.{cdna}del" if length == 1 else f"c.{cdna}_{cdna + length - 1}del"
    elif cgi_type == "SNV":
        c_change = f"c.{cdna}{ref_s}>{alt_s}"
    else:
        c_change = f"c.{cdna}_{cdna + len(ref) - 1}delins{alt_s}"

    # the gene model's rules (data/gene_model.tsv), which the OpenCRAVAT emulator follows too
    if cgi_type == "SNV":
        if place.filler:
            synonymous, stop, alt_aa = pos % 3 == 0, False, "V"
        else:
            synonymous = place.codon_base == 3
            stop = place.codon_base == 1 and alt_s == "T"
            alt_aa = AMINO_ACIDS[(aa_pos % 20 + 1 + "ACGT".index(alt_s)) % 20]
        if synonymous:
            consequence, alt_aa, p_three = "synonymous_variant", ref_aa, f"{here}="
        elif stop:
            consequence, alt_aa, p_three = "stop_gained", "*", f"{here}Ter"
        else:
            consequence, p_three = "missense_variant", f"{here}{THREE_LETTER[alt_aa]}"
        change = f"{ref_aa}{aa_pos}{alt_aa}"
    elif cgi_type in ("MNV", "INDEL"):
        residues = max(1, len(alt) // 3)
        consequence = "protein_altering_variant"
        change = f"{ref_aa}{aa_pos}delins{'V' * residues}"
        p_three = f"{here}delins{'Val' * residues}"
    else:
        residues = max(1, -(-length // 3))
        inframe = length % 3 == 0
        if cgi_type == "INS":
            inserted = _residues(residues, "ins", key)
            if inframe:
                consequence = "inframe_insertion"
                next_aa = AMINO_ACIDS[(aa_pos + 1) % 20]
                change = f"-{aa_pos}-{aa_pos + 1}{inserted}"
                p_three = f"{here}_{THREE_LETTER[next_aa]}{aa_pos + 1}ins{_three(inserted)}"
            else:
                consequence = "frameshift_variant"
                change = f"-{aa_pos}-{aa_pos + 1}{inserted[:-1] or inserted}X"
        else:
            deleted = ref_aa + _residues(residues - 1, "del", key)
            end = aa_pos + residues - 1
            if inframe:
                consequence = "inframe_deletion"
                change = f"{deleted}{aa_pos}-{end}-" if residues > 1 else f"{deleted}{aa_pos}-"
                p_three = (f"{here}_{THREE_LETTER[deleted[-1]]}{end}del" if residues > 1
                           else f"{here}del")
            else:
                consequence = "frameshift_variant"
                change = f"{deleted}{aa_pos}-{end}X"
        if consequence == "frameshift_variant":
            new_aa = AMINO_ACIDS[_draw("fs_aa", key) % 20]
            ter = 2 + _draw("fs_ter", key) % 80
            p_three = f"{here}{THREE_LETTER[new_aa]}fsTer{ter}"
    p_one = _one_letter(p_three)
    if consequence == "synonymous_variant":  # a silent change is no driver
        summary, prediction, external = SUMMARY_NON_ONCOGENIC, PASSENGER_PREDICTIONS[0], ""
    else:
        summary, prediction, external = _classify(f"{gene.symbol}:{change}:{key}")
    return Interpretation(
        gene=gene.symbol, protein_change=change, summary=summary, prediction=prediction,
        external=external, mutation=mutation, consequence=consequence, transcript=transcript,
        cgi_type=cgi_type, alt_type=alt_type,
        hgvs=f"{transcript}:{c_change};p.({p_three});p.({p_one})",
        hgvsc=f"{gene.transcript}:{c_change}", hgvsp=f"{gene.protein}:p.{p_three}")


_THREE_TO_ONE = {three: one for one, three in THREE_LETTER.items()}


def _one_letter(p_three: str) -> str:
    """p.Arg2505Pro -> R2505P, p.Gln61Ter -> Q61*, p.Leu367ThrfsTer46 -> L367Tfs*46."""
    return re.sub(r"[A-Z][a-z]{2}", lambda m: _THREE_TO_ONE.get(m.group(0), m.group(0)), p_three)


def _interpret_protein(alteration: Alteration) -> Interpretation:
    symbol, change = alteration.gene, alteration.protein
    if symbol.upper().startswith(("NM_", "ENST", "NP_", "ENSP")):
        # A transcript instead of a gene: CGI maps it; the emulator picks a stable gene.
        gene = GENES[_draw("transcript-gene", symbol) % len(GENES)]
    else:
        gene = gene_named(symbol)
    key = f"{gene.symbol}:{change}"
    if change.endswith("*") or "Ter" in change:
        consequence, cgi_type, alt_type = "stop_gained", "SNV", "snp"
    elif "fs" in change:
        consequence, cgi_type, alt_type = "frameshift_variant", "DEL", "indel"
    elif "delins" in change:
        consequence, cgi_type, alt_type = "protein_altering_variant", "MNV", "mnp"
    elif "del" in change:
        consequence, cgi_type, alt_type = "inframe_deletion", "DEL", "indel"
    elif "ins" in change or "dup" in change:
        consequence, cgi_type, alt_type = "inframe_insertion", "INS", "indel"
    else:
        consequence, cgi_type, alt_type = "missense_variant", "SNV", "snp"
    simple = re.fullmatch(r"([A-Z])(\d+)([A-Z*])", change)
    p_three = (f"{THREE_LETTER[simple.group(1)]}{simple.group(2)}{THREE_LETTER[simple.group(3)]}"
               if simple and simple.group(1) in THREE_LETTER else change)
    aa_pos = int(simple.group(2)) if simple else 1 + _draw("aa_pos", key) % gene.length
    cdna = 3 * aa_pos - _draw("codon", key) % 3
    ref_index = _draw("ref", key) % 4
    ref, alt = "ACGT"[ref_index], "ACGT"[(ref_index + 1 + _draw("alt", key) % 3) % 4]
    c_change = f"c.{cdna}{ref}>{alt}"
    # Genomic coordinates CGI would map the change to: stable, plausible, made up.
    alteration.chrom = gene.chrom
    alteration.pos = 1_000_000 + _draw("genomic", key) % 100_000_000
    alteration.ref, alteration.alt = ref, alt
    summary, prediction, external = _classify(key)
    transcript = gene.transcript.split(".")[0]
    return Interpretation(
        gene=gene.symbol, protein_change=change, summary=summary, prediction=prediction,
        external=external, mutation=f"chr{gene.chrom}:{alteration.pos} {ref}>{alt}",
        consequence=consequence, transcript=transcript, cgi_type=cgi_type, alt_type=alt_type,
        hgvs=f"{transcript}:{c_change};p.({p_three});p.({_one_letter(p_three)})",
        hgvsc=f"{gene.transcript}:{c_change}", hgvsp=f"{gene.protein}:p.{p_three}")


def interpret(alteration: Alteration) -> Interpretation:
    """What CGI says about one alteration (deterministic)."""
    if alteration.kind == "mutation":
        if alteration.protein:
            return _interpret_protein(alteration)
        return _interpret_genomic(alteration)
    if alteration.kind == "cna":
        gene = gene_named(alteration.gene)
        summary, prediction, external = _classify(f"cna:{gene.symbol}:{alteration.cna}",
                                                  predictable=False)
        return Interpretation(gene=gene.symbol, summary=summary, prediction=prediction,
                              external=external, transcript=gene.transcript.split(".")[0],
                              cgi_type=alteration.cna, alt_type="cna")
    first, second = alteration.fusion or ("", "")
    summary, prediction, external = _classify(f"fusion:{first}__{second}", predictable=False)
    return Interpretation(gene=f"{first}__{second}", summary=summary, prediction=prediction,
                          external=external, cgi_type="FUSION", alt_type="fusion", strand="")


# --- biomarkers ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Biomarker:
    gene: str
    kind: str  # MUT, AMP, DEL, FUS or WT (the gene not altered)
    biomarker: str
    drugs: str
    diseases: str
    response: str
    evidence: str
    source: str
    tumor_type: str
    variants: tuple[str, ...] = ()  # protein changes (prefixes) a MUT biomarker names
    resist: str = ""


# A small catalogue in the real result's style (drugs, sources and tumour types from it).
BIOMARKERS: tuple[Biomarker, ...] = (
    Biomarker("NRAS", "MUT", "NRAS (12,13,59,61,117,146)", "Cetuximab(EGFR mAb inhibitor)",
              "Colorectal adenocarcinoma", "Resistant", "A",
              "PMID:24024839;PMID:20619739;PMID:23325582", "COREAD",
              ("G12", "G13", "A59", "Q61", "K117", "A146")),
    Biomarker("NRAS", "MUT", "NRAS oncogenic mutation", "Trametinib(MEK inhibitor)",
              "Erdheim-Chester histiocytosis", "Responsive", "A",
              "NCCN https://www.nccn.org/professionals/physician_gls/pdf/histiocytic_neoplasms.pdf",
              "HISEC"),
    Biomarker("NRAS", "MUT", "NRAS (G12C)", "ERK inhibitors", "Any cancer type", "Responsive",
              "D", "PMID:23614898", "CANCER", ("G12C",)),
    Biomarker("EGFR", "MUT", "EGFR (L858R)", "Erlotinib(EGFR inhibitor 1st gen)",
              "Non-small cell lung", "Responsive", "A", "FDA", "NSCLC", ("L858R",)),
    Biomarker("EGFR", "MUT", "EGFR (T790M)", "Osimertinib(EGFR inhibitor 3rd gen)",
              "Non-small cell lung", "Responsive", "A",
              "FDA https://www.accessdata.fda.gov/drugsatfda_docs/label/2020/208065s021lbl.pdf",
              "NSCLC", ("T790M",)),
    Biomarker("EGFR", "AMP", "EGFR amplification", "Cetuximab(EGFR mAb inhibitor)",
              "Colorectal adenocarcinoma", "Responsive", "C", "PMID:19223544", "COREAD"),
    Biomarker("TP53", "MUT", "TP53 oncogenic mutation", "Abemaciclib(CDK4/CDK6 inhibitor)",
              "Breast adenocarcinoma", "Resistant", "C", "PMID:27217383", "BRCA"),
    Biomarker("TP53", "MUT", "TP53 (R248Q,R175H)", "HSP90 inhibitors", "Any cancer type",
              "Responsive", "D", "PMID:26009011", "CANCER", ("R248Q", "R175H")),
    Biomarker("TP53", "MUT", "TP53 oncogenic mutation", "MDM2 inhibitors", "Liposarcoma",
              "Resistant", "C", "PMID:23084521;ASCO 2015 (abstr 10564)", "LIP"),
    Biomarker("AKT1", "MUT", "AKT1 (E17K)", "AKT inhibitors", "Any cancer type", "Responsive",
              "D", "PMID:21464312;PMID:17611497;PMID:23134728; ENA 2015 (abstr B109)", "CANCER",
              ("E17K",)),
    Biomarker("AKT1", "MUT", "AKT1 (Q79K,E17K)", "BRAF inhibitors", "Cutaneous melanoma",
              "Resistant", "C", "PMID:24265152", "CM", ("Q79K", "E17K")),
    Biomarker("MTOR", "MUT", "MTOR (F2108L)", "MTOR kinase inhibitors", "Any cancer type",
              "Responsive", "D", "PMID:25295501", "CANCER", ("F2108L",)),
    Biomarker("MTOR", "MUT", "MTOR (E2014K,E2419K,N1421D)", "Everolimus(MTOR inhibitor)",
              "Bladder", "Responsive", "C", "PMID:24625776", "BLCA",
              ("E2014K", "E2419K", "N1421D")),
    Biomarker("ATM", "MUT", "ATM oncogenic mutation", "Olaparib(PARP inhibitor)",
              "Prostate adenocarcinoma", "Responsive", "A",
              "FDA https://www.fda.gov/drugs/resources-information-approved-drugs/fda-approves-"
              "olaparib-hrr-gene-mutated-metastatic-castration-resistant-prostate-cancer;"
              "PMID:32343890", "PRAD"),
    Biomarker("ATM", "DEL", "ATM deletion", "ATR inhibitors", "Colorectal adenocarcinoma",
              "Responsive", "C", "ENA 2015 (abstr A48)", "COREAD"),
    Biomarker("STK11", "MUT", "STK11 oncogenic mutation", "MTOR inhibitors", "Any cancer type",
              "Responsive", "D", "PMID:19541609", "CANCER"),
    Biomarker("STK11", "DEL", "STK11 deletion", "MEK inhibitors", "Lung adenocarcinoma",
              "Responsive", "D", "PMID:19165201", "LUAD"),
    Biomarker("HRAS", "MUT", "HRAS oncogenic mutation", "Tipifarnib(Farnesyltransferase inhibitor)",
              "Any cancer type", "Responsive", "C", "NCT02383927", "CANCER"),
    Biomarker("RET", "MUT", "RET oncogenic mutation", "Selpercatinib(RET kinase inhibitor)",
              "Thyroid medullary", "Responsive", "A",
              "FDA https://www.fda.gov/drugs/resources-information-approved-drugs/fda-approves-"
              "selpercatinib-lung-and-thyroid-cancers-ret-gene-mutations-or-fusions;"
              "ASCO 2020 (abstr 3594)", "THM"),
    Biomarker("RET", "FUS", "RET fusion", "Selpercatinib(RET kinase inhibitor)", "Solid tumors",
              "Responsive", "A", "FDA", "SOLID"),
    Biomarker("EPHA2", "AMP", "EPHA2 amplification", "Dasatinib(BCR-ABL inhibitor 2nd gen)",
              "Any cancer type", "Responsive", "D", "PMID:18047674;PMID:19010823;PMID:19861960",
              "CANCER"),
    Biomarker("GNAQ", "MUT", "GNAQ (Q209)", "PKC inhibitors", "Cutaneous melanoma",
              "Responsive", "D", "PMID:22653968;PMID:22253748", "CM", ("Q209",)),
    Biomarker("GNAS", "MUT", "GNAS (R201)", "JAK inhibitors", "Any cancer type", "Responsive",
              "D", "PMID:21835143", "CANCER", ("R201",)),
    Biomarker("JAK2", "MUT", "JAK2 (V617F)", "Ruxolitinib(JAK inhibitor)", "Myelofibrosis",
              "Responsive", "A", "FDA", "MY", ("V617F",)),
    Biomarker("JAK1", "MUT", "JAK1 oncogenic mutation", "PD1 inhibitors",
              "Colorectal adenocarcinoma", "Resistant", "C", "PMID:27903500", "COREAD"),
    Biomarker("BTK", "MUT", "BTK (C481S)", "Ibrutinib(BTK inhibitor)",
              "Chronic lymphocytic leukemia", "Resistant", "A", "PMID: 28418267", "CLL",
              ("C481S",)),
    Biomarker("PLCG2", "MUT", "PLCG2 (R665W,L845F)", "Ibrutinib(BTK inhibitor)",
              "Chronic lymphocytic leukemia", "Resistant", "C", "PMID:24869598", "CLL",
              ("R665W", "L845F")),
    Biomarker("RB1", "MUT", "RB1 oncogenic mutation", "HDAC inhibitors", "Retinoblastoma",
              "Responsive", "D", "PMID:18483379", "RB"),
    Biomarker("RB1", "DEL", "RB1 deletion", "HDAC inhibitors", "Retinoblastoma", "Responsive",
              "D", "PMID:18483379", "RB"),
    Biomarker("ERBB2", "AMP", "ERBB2 amplification", "Trastuzumab(ERBB2 mAb inhibitor)",
              "Breast adenocarcinoma", "Responsive", "A", "FDA", "BRCA"),
    Biomarker("ABL1", "FUS", "BCR-ABL1 fusion", "Imatinib(BCR-ABL inhibitor 1st gen&KIT inhibitor)",
              "Chronic myeloid leukemia", "Responsive", "A", "FDA", "CML"),
    Biomarker("ALK", "FUS", "ALK fusion", "Crizotinib(ALK inhibitor)", "Non-small cell lung",
              "Responsive", "A", "FDA", "NSCLC"),
    Biomarker("KRAS", "WT", "KRAS wildtype", "Panitumumab(EGFR mAb inhibitor)",
              "Colorectal adenocarcinoma", "Responsive", "A",
              "FDA  https://www.accessdata.fda.gov/drugsatfda_docs/label/2021/125147s210lbl.pdf",
              "COREAD", resist="65.0"),
    Biomarker("KRAS", "WT", "KRAS wildtype", "Cetuximab(EGFR mAb inhibitor)",
              "Colorectal adenocarcinoma", "Responsive", "A", "PMID: 19339720", "COREAD",
              resist="22.0"),
    Biomarker("KIT", "WT", "KIT wildtype", "Sunitinib(Pan-TK inhibitor)",
              "Gastrointestinal stromal", "Responsive", "B", "PMID:18955458", "GIST"),
    Biomarker("PDGFRA", "WT", "PDGFRA wildtype",
              "Imatinib(BCR-ABL inhibitor 1st gen&KIT inhibitor)",
              "Gastrointestinal stromal", "Resistant", "B", "PMID:14645423;PMID:18955458", "GIST"),
)


def _matches_cancer_type(tumor_types: str, cancer_type: str) -> bool:
    base = cancer_type[:-3] if cancer_type.endswith("-PR") else cancer_type
    for tumor_type in (part.strip() for part in tumor_types.split(",")):
        if tumor_type in (base, "CANCER"):
            return True
        if tumor_type == "SOLID" and base not in HEMATOLOGIC_TYPES:
            return True
    return False


@dataclass
class _Altered:
    """One sample's alterations of one gene, for the biomarker table."""
    labels: list[str] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    changes: list[str] = field(default_factory=list)


def _alteration_label(gene: str, alteration: Alteration, reading: Interpretation) -> str:
    if alteration.kind == "cna":
        return f"{gene} {'amplification' if alteration.cna == 'AMP' else 'deletion'}"
    if alteration.kind == "fusion":
        return f"{reading.gene} fusion"
    marker = " MUT*" if not reading.oncogenic or reading.alt_type == "mnp" else ""
    return f"{gene}{marker} ({reading.protein_change})"


def biomarker_rows(readings: list[tuple[Alteration, Interpretation]], cancer_type: str,
                   samples_with_mutations: list[str]) -> list[list[str]]:
    altered: dict[str, dict[str, _Altered]] = {}  # sample -> gene -> its alterations
    samples: list[str] = []
    for alteration, reading in readings:
        if alteration.sample not in samples:
            samples.append(alteration.sample)
        genes = list(alteration.fusion) if alteration.fusion else [reading.gene]
        for gene in genes:
            entry = altered.setdefault(alteration.sample, {}).setdefault(gene, _Altered())
            entry.labels.append(_alteration_label(gene, alteration, reading))
            entry.kinds.add({"mutation": "MUT", "cna": alteration.cna,
                             "fusion": "FUS"}[alteration.kind])
            if alteration.kind == "mutation":
                entry.changes.append(reading.protein_change)
    for sample in samples_with_mutations:
        if sample not in samples:
            samples.append(sample)

    rows: list[list[str]] = []
    for sample in samples:
        genes = altered.get(sample, {})
        for biomarker in BIOMARKERS:
            if biomarker.kind == "WT":
                if sample not in samples_with_mutations or biomarker.gene in genes:
                    continue
                alterations, biom = f"{biomarker.gene} wildtype", "complete"
            else:
                entry = genes.get(biomarker.gene)
                if entry is None:
                    continue
                if biomarker.kind not in entry.kinds:
                    biom = "only gene"
                elif biomarker.variants and not any(
                        change.startswith(variant) for change in entry.changes
                        for variant in biomarker.variants):
                    biom = "only alteration type"
                else:
                    biom = "complete"
                alterations = ", ".join(entry.labels)
            match = "YES" if _matches_cancer_type(biomarker.tumor_type, cancer_type) else "NO"
            rows.append([sample, alterations, biomarker.biomarker, biomarker.drugs,
                         biomarker.diseases, biomarker.response, biomarker.evidence, match,
                         biomarker.source, biom, biomarker.resist, biomarker.tumor_type])
    return rows


# --- the result ----------------------------------------------------------------------------

@dataclass
class Analysis:
    columns: list[str]
    rows: list[list[str]]
    biomarkers: list[list[str]]
    counts: dict[str, int]


_COUNTED_AS = {"mutation": "mutations", "cna": "cnas", "fusion": "fusions"}


def analyse(inputs: list[ParsedInput], cancer_type: str) -> Analysis:
    """The alterations and biomarkers tables and the summary's counts."""
    mutation_input = next((item for item in inputs if item.field == "mutations"), None)
    sample_column = (SAMPLE_COLUMN_VCF if mutation_input is not None
                     and mutation_input.format == "vcf" else SAMPLE_COLUMN_TABLE)
    own_columns: list[str] = []
    for item in inputs:
        for column in item.columns:
            if column not in _RESERVED and column not in own_columns:
                own_columns.append(column)
    columns = LEAD_COLUMNS + own_columns + MIDDLE_COLUMNS + [sample_column] + CGI_COLUMNS

    readings: list[tuple[Alteration, Interpretation]] = []
    rows: list[list[str]] = []
    counts = {"mutations": 0, "cnas": 0, "fusions": 0}
    for item in inputs:
        for alteration in unique_alterations(item.alterations):
            reading = interpret(alteration)
            readings.append((alteration, reading))
            counts[_COUNTED_AS[alteration.kind]] += 1
            genomic = alteration.kind == "mutation"
            row = [alteration.input_id,
                   alteration.chrom if genomic else "",
                   str(alteration.pos) if genomic else "",
                   alteration.ref if genomic else "",
                   alteration.alt if genomic else ""]
            row += [alteration.values.get(column, "") for column in own_columns]
            row += [reading.alt_type, reading.strand, alteration.sample, reading.gene,
                    reading.protein_change, reading.summary, reading.prediction,
                    reading.external, reading.mutation, reading.consequence,
                    reading.transcript, reading.strand, reading.cgi_type, reading.hgvs,
                    reading.hgvsc, reading.hgvsp]
            rows.append(row)

    summaries = [reading.summary for _, reading in readings]
    counts["samples"] = len({alteration.sample for alteration, _ in readings}
                            | ({mutation_input.name} if mutation_input is not None
                               and not mutation_input.alterations else set()))
    counts["drivers"] = sum(summary.startswith("oncogenic") for summary in summaries)
    counts["predicted_and_annotated"] = summaries.count(SUMMARY_PREDICTED_AND_ANNOTATED)
    counts["predicted"] = summaries.count(SUMMARY_PREDICTED)
    counts["annotated"] = summaries.count(SUMMARY_ANNOTATED)

    samples_with_mutations = []
    if mutation_input is not None:
        for alteration in mutation_input.alterations:
            if alteration.sample not in samples_with_mutations:
                samples_with_mutations.append(alteration.sample)
    biomarkers = biomarker_rows(readings, cancer_type, samples_with_mutations)
    counts["biomarkers_in_type"] = sum(row[7] == "YES" for row in biomarkers)
    counts["biomarkers_in_type_level_a"] = sum(row[7] == "YES" and row[6] == "A"
                                               for row in biomarkers)
    counts["biomarkers_other"] = sum(row[7] == "NO" for row in biomarkers)
    return Analysis(columns=columns, rows=rows, biomarkers=biomarkers, counts=counts)


def _tsv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def summary_text(job_id: str, title: str, cancer_type: str, reference: str, date: str,
                 counts: dict[str, int]) -> bytes:
    lines = [
        "===============================",
        "=== Summary of the analysis ===",
        "===============================",
        "",
        "=== CGI-ANALYSIS ===",
        f"Analysis Code: {title}",
        f"Analysis ID: {job_id}",
        f"CGI version: {CGI_VERSION}",
        f"Date: {date}",
        "",
        "=== INPUT ===",
        f"Analysed mutations: {counts['mutations']}",
        f"Analysed cnas: {counts['cnas']}",
        f"Analysed fusions: {counts['fusions']}",
        f"Total samples: {counts['samples']}",
        f"Cancer type: {cancer_type}",
        f"Reference genome: {reference}",
        "",
        "=== ALTERATIONS ===",
        f"Driver mutations: {counts['drivers']}",
        f"Predicted and annotated drivers: {counts['predicted_and_annotated']}",
        f"Predicted drivers: {counts['predicted']}",
        f"Annotated drivers: {counts['annotated']}",
        "",
        "=== BIOMARKERS ===",
        f"Biomarkers in cancer type: {counts['biomarkers_in_type']}",
        f"Biomarkers in cancer type - Level A: {counts['biomarkers_in_type_level_a']}",
        f"Biomarkers in other cancer type: {counts['biomarkers_other']}",
        "",
    ]
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class ResultFile:
    name: str
    data: bytes
    mode: int = 0o660


def result_files(job_id: str, title: str, cancer_type: str, reference: str,
                 inputs: list[ParsedInput], finished: datetime) -> list[ResultFile]:
    """The members of the result zip, in the real zip's order. `finished` is CGI-local time."""
    analysis = analyse(inputs, cancer_type)
    files = [ResultFile("alterations.tsv", _tsv(analysis.columns, analysis.rows)),
             ResultFile("biomarkers.tsv", _tsv(BIOMARKER_COLUMNS, analysis.biomarkers))]
    files += [ResultFile(item.file_name, item.data, 0o644) for item in inputs]
    files.append(ResultFile("summary.txt", summary_text(
        job_id, title, cancer_type, reference, finished.strftime("%Y-%m-%d %H:%M:%S"),
        analysis.counts)))
    return files


def _zip_info(name: str, date_time: tuple, mode: int = 0o660, kind: int = stat.S_IFREG,
              compress: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=date_time)
    info.compress_type = compress
    info.create_system = 3  # Unix, so the mode bits mean something
    info.external_attr = (kind | mode) << 16
    return info


def write_zip(files: list[ResultFile], finished: datetime, target: io.BytesIO | None = None,
              mode: str = "w") -> bytes:
    target = target or io.BytesIO()
    date_time = finished.timetuple()[:6]
    with zipfile.ZipFile(target, mode) as archive:
        for item in files:
            archive.writestr(_zip_info(item.name, date_time, item.mode), item.data)
    return target.getvalue()


# --- hostile archives ----------------------------------------------------------------------

HOSTILE_VARIANTS = ("slip", "absolute", "bomb", "link", "many")
BOMB_BYTES = 200 * 1024 * 1024
MANY_FILES = 20_000
_EPOCH = (2024, 1, 1, 0, 0, 0)
_cache: dict[tuple, bytes] = {}
_cache_lock = threading.Lock()


def _cached(key: tuple, build) -> bytes:
    with _cache_lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


def _bomb_zip(size: int, name: str) -> bytes:
    """A zip whose one member expands to `size` zero bytes (about 1000:1)."""
    out = io.BytesIO()
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(out, "w") as archive:
        info = _zip_info(name, _EPOCH)
        with archive.open(info, "w", force_zip64=size >= 0x7FFFFFFF) as member:
            left = size
            while left > 0:
                member.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))
    return out.getvalue()


def _many_zip(count: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for number in range(count):
            archive.writestr(_zip_info(f"part{number:05d}.txt", _EPOCH,
                                       compress=zipfile.ZIP_STORED), b"x\n")
    return out.getvalue()


def hostile_zip(variant: str, files: list[ResultFile], finished: datetime,
                options: dict | None = None) -> bytes:
    """The job's result with something an extractor must refuse. Options (from the fault):
    `name` (the hostile member's name), `target` (a link's target), `size` (a bomb's
    expanded bytes), `files` (how many members `many` adds)."""
    options = options or {}
    date_time = finished.timetuple()[:6]
    if variant in ("slip", "absolute"):
        name = options.get("name") or ("../../evil.txt" if variant == "slip" else "/tmp/evil.txt")
        out = io.BytesIO()
        write_zip(files, finished, out)
        with zipfile.ZipFile(out, "a") as archive:
            archive.writestr(_zip_info(str(name), date_time), b"written outside the target\n")
        return out.getvalue()
    if variant == "link":
        name = str(options.get("name") or "evil_link")
        target = str(options.get("target") or "/etc/passwd")
        out = io.BytesIO()
        write_zip(files, finished, out)
        with zipfile.ZipFile(out, "a") as archive:
            archive.writestr(_zip_info(name, date_time, 0o777, stat.S_IFLNK,
                                       zipfile.ZIP_STORED), target.encode())
        return out.getvalue()
    if variant == "bomb":
        size = int(options.get("size") or BOMB_BYTES)
        name = str(options.get("name") or "alterations.tsv")
        out = io.BytesIO(_cached(("bomb", size, name), lambda: _bomb_zip(size, name)))
        out.seek(0, io.SEEK_END)
        return write_zip([item for item in files if item.name != name], finished, out, "a")
    if variant == "many":
        count = int(options.get("files") or MANY_FILES)
        out = io.BytesIO(_cached(("many", count), lambda: _many_zip(count)))
        out.seek(0, io.SEEK_END)
        return write_zip(files, finished, out, "a")
    raise ValueError(f"unknown hostile_zip variant {variant!r}; "
                     f"known: {', '.join(HOSTILE_VARIANTS)}")
