"""The OpenCGA emulator's variant storage: reading an uploaded VCF into variants of the
Biodata model, and `analysis/variant/query`'s filters over a study's indexed variants.

What the emulator makes of a VCF, as OpenCGA's loader does:
- a multi-allelic line becomes one variant per ALT allele (the others listed as
  `secondaryAlternates`); `*` and `<NON_REF>` alleles are skipped;
- alleles are normalised (shared trailing, then leading bases trimmed; an empty allele is
  `""` in `reference`/`alternate` and `-` in the id `chrom:start:ref:alt`);
- `type` is SNV, MNV or INDEL;
- one variant per study: the same variant from a second file adds that file and its samples;
- the chromosome keeps the VCF's name; a region or query on `chr1` also matches `1`.

The annotation is the emulators' shared gene model (data/gene_model.tsv, through the
OpenCRAVAT emulator's mapper, so every emulator names the same gene and consequence), with
made-up but stable population frequencies (GNOMAD_GENOMES and 1000G, population ALL).
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .opencravat_converter import standardize_pos_ref_alt
from .opencravat_mapper import map_variant

SO_ACCESSIONS = {
    "missense_variant": "SO:0001583", "synonymous_variant": "SO:0001819",
    "stop_gained": "SO:0001587", "inframe_insertion": "SO:0001821",
    "inframe_deletion": "SO:0001822", "frameshift_variant": "SO:0001589",
    "protein_altering_variant": "SO:0001818", "intergenic_variant": "SO:0001628",
}
# OpenCRAVAT's terms -> the Sequence Ontology names OpenCGA (VEP) reports
SO_NAMES = {"frameshift_elongation": "frameshift_variant",
            "frameshift_truncation": "frameshift_variant",
            "complex_substitution": "protein_altering_variant"}
POPULATION_STUDIES = ("GNOMAD_GENOMES", "1000G")
SKIPPED_ALLELES = {"*", "<NON_REF>", "<*>", "."}
CHROM_ORDER = {str(n): n for n in range(1, 23)} | {"X": 23, "Y": 24, "MT": 25, "M": 25}


class VcfError(ValueError):
    """A VCF the loader cannot read: `line` is 1-based (0 for the file as a whole)."""

    def __init__(self, line: int, reason: str):
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


class VariantQueryError(ValueError):
    """A query parameter OpenCGA would reject (VariantQueryException)."""


def short_chrom(name: str) -> str:
    """`chr1`, `CHR1` and `1` name one chromosome."""
    return name[3:] if name.lower().startswith("chr") else name


def chrom_rank(name: str) -> tuple[int, str]:
    short = short_chrom(name).upper()
    return CHROM_ORDER.get(short, 100), short


def decode_vcf(data: bytes) -> str:
    """Plain or gzip/bgzip text."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise VcfError(0, f"not a readable gzip file ({error})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise VcfError(0, "not a text file (not UTF-8)") from None


def vcf_samples(text: str) -> list[str]:
    """The sample names of the #CHROM line (what OpenCGA reads at upload); [] if none."""
    for line in text.splitlines():
        if line.startswith("#CHROM"):
            return line.rstrip("\n").split("\t")[9:]
        if not line.startswith("#"):
            break
    return []


@dataclass
class VcfRecord:
    chrom: str
    pos: int
    ids: list[str]
    ref: str
    alts: list[str]
    qual: str
    filter: str
    info: str
    format: list[str]
    calls: list[list[str]]


def read_vcf(text: str) -> tuple[list[str], list[VcfRecord]]:
    """(samples, records) of a VCF, or VcfError naming the first line it cannot read."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("##fileformat=VCF"):
        raise VcfError(1, "the file does not start with ##fileformat=VCF...")
    samples: list[str] | None = None
    records: list[VcfRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line or line.startswith("##"):
            continue
        if line.startswith("#"):
            columns = line.split("\t")
            if columns[:8] != ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]:
                raise VcfError(number, "the header line does not have the 8 fixed VCF columns")
            samples = columns[9:]
            continue
        if samples is None:
            raise VcfError(number, "a data line before the #CHROM header line")
        fields_ = line.split("\t")
        if len(fields_) < 8 or (samples and len(fields_) != 9 + len(samples)):
            raise VcfError(number, f"expected {9 + len(samples) if samples else 8} tab-separated "
                                   f"columns, found {len(fields_)}")
        chrom, pos_text, ids, ref, alt = fields_[:5]
        if not pos_text.isdigit() or int(pos_text) < 1:
            raise VcfError(number, f"POS {pos_text!r} is not a positive integer")
        if not re.fullmatch(r"[ACGTNacgtn]+", ref):
            raise VcfError(number, f"REF {ref!r} is not a sequence of A, C, G, T, N")
        alts = alt.split(",")
        for allele in alts:
            if allele not in SKIPPED_ALLELES and not re.fullmatch(r"[ACGTNacgtn]+|<[^>]+>", allele):
                raise VcfError(number, f"ALT {allele!r} is not an allele")
        records.append(VcfRecord(
            chrom=chrom, pos=int(pos_text), ids=[] if ids == "." else ids.split(";"),
            ref=ref.upper(), alts=[a.upper() for a in alts], qual=fields_[5], filter=fields_[6],
            info=fields_[7], format=fields_[8].split(":") if len(fields_) > 8 else [],
            calls=[call.split(":") for call in fields_[9:]]))
    if samples is None:
        raise VcfError(0, "no #CHROM header line")
    return samples, records


def variant_type(ref: str, alt: str) -> str:
    if len(ref) == 1 and len(alt) == 1:
        return "SNV"
    if len(ref) == len(alt):
        return "MNV"
    return "INDEL"


def _frequency(key: str, population: str) -> float:
    digest = hashlib.sha256(f"{population}:{key}".encode()).digest()
    return round(int.from_bytes(digest[:4], "big") / 2**32 * 0.2, 5)  # 0 to 0.2


def annotation(chrom: str, start: int, ref: str, alt: str, variant_id: str) -> dict:
    """A VariantAnnotation: the shared gene model's gene and consequence, and stable
    made-up population frequencies."""
    mapped = map_variant("chr" + short_chrom(chrom), start, ref or "-", alt or "-")
    consequence_types = []
    if mapped["hugo"]:
        so = SO_NAMES.get(mapped["so"], mapped["so"])
        consequence_types.append({
            "geneName": mapped["hugo"], "geneId": f"ENSG_{mapped['hugo']}",
            "ensemblGeneId": f"ENSG_{mapped['hugo']}", "transcriptId": mapped["transcript"],
            "ensemblTranscriptId": mapped["transcript"], "strand": "+", "biotype": "protein_coding",
            "hgvs": [f"{mapped['transcript']}:{mapped['cchange']}"],
            "proteinVariantAnnotation": {"proteinId": "", "reference": "", "alternate": "",
                                         "hgvs": mapped["achange"]},
            "sequenceOntologyTerms": [{"accession": SO_ACCESSIONS.get(so, ""), "name": so}],
        })
    else:
        consequence_types.append({"biotype": "", "sequenceOntologyTerms": [
            {"accession": SO_ACCESSIONS["intergenic_variant"], "name": "intergenic_variant"}]})
    frequencies = []
    for study in POPULATION_STUDIES:
        alt_freq = _frequency(variant_id, study)
        frequencies.append({"study": study, "population": "ALL", "refAllele": ref or "-",
                            "altAllele": alt or "-", "refAlleleFreq": round(1 - alt_freq, 5),
                            "altAlleleFreq": alt_freq})
    worst = consequence_types[0]["sequenceOntologyTerms"][0]["name"]
    return {"chromosome": chrom, "start": start, "reference": ref, "alternate": alt,
            "id": variant_id, "displayConsequenceType": worst,
            "consequenceTypes": consequence_types, "populationFrequencies": frequencies,
            "xrefs": [{"id": mapped["hugo"], "source": "HGNC"}] if mapped["hugo"] else []}


@dataclass
class StoredVariant:
    """One variant of a study and what each loaded file and sample says of it."""
    chrom: str
    start: int
    ref: str
    alt: str
    names: list[str]
    secondary: list[str]
    files: list[dict] = field(default_factory=list)  # {fileId, call, data}
    samples: dict[str, str] = field(default_factory=dict)  # sample -> GT (this allele as 1)
    cached_annotation: dict | None = field(default=None, repr=False)

    def annotation(self) -> dict:
        if self.cached_annotation is None:  # filters read it for every variant of a query
            self.cached_annotation = annotation(self.chrom, self.start, self.ref, self.alt, self.id)
        return self.cached_annotation

    @property
    def id(self) -> str:
        return f"{self.chrom}:{self.start}:{self.ref or '-'}:{self.alt or '-'}"

    @property
    def end(self) -> int:
        return self.start + max(len(self.ref), 1) - 1

    def sort_key(self) -> tuple:
        return (*chrom_rank(self.chrom), self.start, self.ref, self.alt)

    def to_json(self, study_fqn: str) -> dict:
        return {
            "id": self.id, "names": self.names, "chromosome": self.chrom, "start": self.start,
            "end": self.end, "reference": self.ref, "alternate": self.alt, "strand": "+",
            "length": max(len(self.ref), len(self.alt)), "type": variant_type(self.ref, self.alt),
            "studies": [{
                "studyId": study_fqn,
                "files": list(self.files),
                "secondaryAlternates": [{"chromosome": self.chrom, "start": self.start,
                                         "reference": self.ref, "alternate": other}
                                        for other in self.secondary],
                "sampleDataKeys": ["GT"],
                "samples": [{"sampleId": name, "data": [gt]} for name, gt in self.samples.items()],
                "stats": [],
            }],
            "annotation": self.annotation(),
        }


def _allele_gt(gt: str, allele_index: int) -> str:
    """The genotype as OpenCGA shows it for one split allele: that ALT is 1, others 2."""
    separator = "|" if "|" in gt else "/"
    out = []
    for allele in re.split(r"[/|]", gt):
        if allele in (".", "0"):
            out.append(allele)
        elif allele.isdigit():
            out.append("1" if int(allele) == allele_index else "2")
        else:
            out.append(".")
    return separator.join(out)


def split_records(file_id: str, samples: list[str], records: list[VcfRecord]) -> list[StoredVariant]:
    """One StoredVariant per usable ALT allele of each record."""
    variants = []
    for record in records:
        usable = [a for a in record.alts if a not in SKIPPED_ALLELES and not a.startswith("<")]
        gt_at = record.format.index("GT") if "GT" in record.format else None
        for index, alt in enumerate(record.alts, start=1):
            if alt not in usable:
                continue
            start, ref, new_alt = standardize_pos_ref_alt(record.pos, record.ref, alt)
            ref, new_alt = ("" if ref == "-" else ref), ("" if new_alt == "-" else new_alt)
            variant = StoredVariant(record.chrom, start, ref, new_alt, list(record.ids),
                                    [other for other in usable if other != alt])
            call = f"{record.pos}:{record.ref}:{','.join(record.alts)}:{index - 1}"
            variant.files.append({"fileId": file_id, "call": {"variantId": call, "alleleIndex": index - 1},
                                  "data": {"QUAL": record.qual, "FILTER": record.filter}})
            for name, values in zip(samples, record.calls):
                gt = values[gt_at] if gt_at is not None and gt_at < len(values) else "."
                variant.samples[name] = _allele_gt(gt, index)
            variants.append(variant)
    return variants


def _has_alt(gt: str) -> bool:
    return any(allele not in ("0", ".") for allele in re.split(r"[/|]", gt))


def _parse_region(text: str) -> tuple[str, int, int]:
    match = re.fullmatch(r"([^:]+)(?::(\d+)(?:-(\d+))?)?", text.strip())
    if not match:
        raise VariantQueryError(f"Invalid region '{text}'")
    chrom, start, end = match.groups()
    low = int(start) if start else 1
    high = int(end) if end else (low if start else 2**31)
    if high < low:
        raise VariantQueryError(f"Invalid region '{text}': end before start")
    return short_chrom(chrom).upper(), low, high


_FREQ = re.compile(r"([^:<>=!]+):([^<>=!]+)(<=|>=|<|>|=|!=)([0-9.eE+-]+)")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "=": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _split(value: str) -> tuple[list[str], bool]:
    """OpenCGA's lists: `a,b` is OR, `a;b` is AND."""
    if ";" in value:
        return [v for v in value.split(";") if v], True
    return [v for v in value.split(",") if v], False


def build_filter(params: dict[str, str], known_samples: set[str]) -> Callable[[StoredVariant], bool]:
    """A predicate over stored variants from the query's parameters (unknown ones ignored,
    as OpenCGA ignores query params it does not know)."""
    tests: list[Callable[[StoredVariant], bool]] = []

    if params.get("id"):
        ids = set(params["id"].split(","))
        tests.append(lambda v: v.id in ids or bool(ids.intersection(v.names)))
    if params.get("region"):
        regions = [_parse_region(r) for r in params["region"].split(",") if r]
        tests.append(lambda v: any(short_chrom(v.chrom).upper() == c and v.start <= hi and v.end >= lo
                                   for c, lo, hi in regions))
    if params.get("type"):
        types = {t.upper() for t in params["type"].split(",")}
        unknown = types - {"SNV", "MNV", "INDEL", "SNP", "MNP", "INSERTION", "DELETION", "SV"}
        if unknown:
            raise VariantQueryError(f"Unknown variant type {', '.join(sorted(unknown))}")
        if "SNP" in types:
            types.add("SNV")
        if "MNP" in types:
            types.add("MNV")
        if types & {"INSERTION", "DELETION"}:
            types.add("INDEL")
        tests.append(lambda v: variant_type(v.ref, v.alt) in types)
    if params.get("reference"):
        refs = set(params["reference"].split(","))
        tests.append(lambda v: (v.ref or "-") in refs)
    if params.get("alternate"):
        alts = set(params["alternate"].split(","))
        tests.append(lambda v: (v.alt or "-") in alts)
    if params.get("file"):
        files = set(params["file"].split(","))
        tests.append(lambda v: any(f["fileId"] in files for f in v.files))
    if params.get("gene"):
        genes = {g.upper() for g in params["gene"].split(",")}
        tests.append(lambda v: bool(genes & _genes(v)))
    if params.get("xref"):
        xrefs = set(params["xref"].split(","))
        tests.append(lambda v: bool(xrefs & ({v.id} | set(v.names) | _genes(v))))
    for name, pick in (("ct", _consequences), ("biotype", _biotypes)):
        if params.get(name):
            wanted = set(params[name].split(","))
            tests.append(lambda v, w=wanted, p=pick: bool(w & p(v)))
    if params.get("sample"):
        names, every = _split(params["sample"])
        missing = [n for n in names if n not in known_samples]
        if missing:
            raise VariantQueryError(f"Sample not found: {', '.join(missing)}")
        combine = all if every else any
        tests.append(lambda v: combine(_has_alt(v.samples.get(n, ".")) for n in names))
    if params.get("genotype"):
        # SAMPLE:GT[,GT...] per sample, samples joined by ';' (all must hold)
        wanted_gts: list[tuple[str, set[str]]] = []
        for clause in [c for c in params["genotype"].split(";") if c]:
            name, separator, gts = clause.partition(":")
            if not separator or not gts:
                raise VariantQueryError(f"Invalid genotype filter '{clause}': use SAMPLE:GT[,GT...]")
            if name not in known_samples:
                raise VariantQueryError(f"Sample not found: {name}")
            wanted_gts.append((name, {gt.replace("|", "/") for gt in gts.split(",")}))
        tests.append(lambda v: all(v.samples.get(n, "0/0").replace("|", "/") in gts
                                   for n, gts in wanted_gts))
    for name in ("populationFrequencyAlt", "populationFrequencyMaf"):
        if params.get(name):
            clauses, every = _split(params[name])
            parsed = []
            for clause in clauses:
                match = _FREQ.fullmatch(clause)
                if not match:
                    raise VariantQueryError(f"Invalid {name} filter '{clause}': use STUDY:POPULATION<VALUE")
                study, population, operator, value = match.groups()
                parsed.append((study.upper(), population, _OPERATORS[operator], float(value), name))
            combine = all if every else any
            tests.append(lambda v, p=parsed, c=combine: c(_frequency_test(v, *clause) for clause in p))

    def matches(variant: StoredVariant) -> bool:
        return all(test(variant) for test in tests)

    return matches


def _annotation_of(v: StoredVariant) -> dict:
    return v.annotation()


def _genes(v: StoredVariant) -> set[str]:
    return {ct["geneName"].upper() for ct in _annotation_of(v)["consequenceTypes"] if ct.get("geneName")}


def _consequences(v: StoredVariant) -> set[str]:
    return {term[key] for ct in _annotation_of(v)["consequenceTypes"]
            for term in ct["sequenceOntologyTerms"] for key in ("name", "accession")}


def _biotypes(v: StoredVariant) -> set[str]:
    return {ct["biotype"] for ct in _annotation_of(v)["consequenceTypes"] if ct["biotype"]}


def _frequency_test(v: StoredVariant, study: str, population: str, operator: Callable,
                    value: float, name: str) -> bool:
    for entry in _annotation_of(v)["populationFrequencies"]:
        if entry["study"].upper() == study and entry["population"] == population:
            freq = entry["altAlleleFreq"]
            if name == "populationFrequencyMaf":
                freq = min(freq, entry["refAlleleFreq"])
            return operator(freq, value)
    return operator(0.0, value)  # not in that population: frequency 0, as OpenCGA treats it


class StudyVariants:
    """The indexed variants of one study, kept in genomic order."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredVariant] = {}
        self._ordered: list[StoredVariant] | None = []

    def load(self, variants: list[StoredVariant]) -> None:
        for variant in variants:
            existing = self._by_id.get(variant.id)
            if existing is None:
                self._by_id[variant.id] = variant
            else:
                loaded = {entry["fileId"] for entry in existing.files}
                existing.files.extend(f for f in variant.files if f["fileId"] not in loaded)
                existing.samples.update(variant.samples)
                existing.names = sorted(set(existing.names) | set(variant.names))
        self._ordered = None

    def ordered(self) -> list[StoredVariant]:
        if self._ordered is None:
            self._ordered = sorted(self._by_id.values(), key=StoredVariant.sort_key)
        return self._ordered

    def samples(self) -> set[str]:
        return {name for variant in self._by_id.values() for name in variant.samples}

    def query(self, params: dict[str, Any], extra_samples: set[str] = frozenset()) -> list[StoredVariant]:
        matches = build_filter(params, self.samples() | set(extra_samples))
        return [variant for variant in self.ordered() if matches(variant)]
