"""The OpenCRAVAT emulator's input conversion.

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
"""

from __future__ import annotations

import gzip
import io
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable

from .opencravat_mapper import COMPLEMENT, map_variant
from .opencravat_annotators import Column


CONVERTER_FORMATS = ("cravat", "vcf")  # installed converters, in module-list order
ASSEMBLIES = ("hg38", "hg19", "hg18")  # constants.assembly_choices; no liftover: kept as given


class ConversionError(Exception):
    """A converter ExpectedException: the job ends in Error with this message."""


class LineError(Exception):
    """One input line could not be used (written to the job's .err file)."""


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
