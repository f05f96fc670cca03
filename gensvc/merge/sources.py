"""The services' result files as sources of INFO fields: their columns, their rows, their spelling.

Each source reads its own file (Bravo's frequencies table, OpenCRAVAT's variant TSV report,
CGI's alterations.tsv), says which INFO fields it adds, and yields its rows as
``(key, payload)``: the key is the row's allele in that source's own spelling, and
``input_key`` spells an ALT of the VCF the same way, so that the join only compares strings.

Rows are parsed 128 KiB at a time (list comprehensions over the batch; one regular expression
checks a batch's types, one pass escapes it); the run of columns nothing needs (CGI and
OpenCRAVAT repeat the input's INFO and sample columns) is never split.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from itertools import chain, compress
from operator import add, itemgetter
from pathlib import Path

from gensvc.core.textfiles import open_text
from gensvc.errors import UsageError
from gensvc.merge.escaping import encode, escape, header_value, holds_reserved

log = logging.getLogger("gensvc.merge")

SOURCES = ("opencravat", "bravo", "cgi", "cavatica")  # the classes: gensvc.merge.source_types
LABELS = {"opencravat": "OpenCRAVAT", "bravo": "Bravo", "cgi": "CGI", "cavatica": "CAVATICA"}

# OpenCRAVAT columns that echo the input (tagsampler, vcfinfo, original_input, ...), not annotations
OC_KEY_COLUMNS = ("uid", "chrom", "pos", "ref_base", "alt_base")
OC_ECHO_COLUMNS = {"numsample", "samples", "tags"}
OC_ECHO_GROUPS = {"original_input", "vcfinfo", "varmeta", "extra_vcf_info", "tagsampler"}
# CGI columns carried by default: what CGI says about the alteration
CGI_DEFAULT = ("CGI-Gene", "CGI-Protein Change", "CGI-Oncogenic Summary", "CGI-Oncogenic Prediction",
               "CGI-External oncogenic annotation", "CGI-Consequence", "CGI-Transcript", "CGI-Type",
               "CGI-HGVSc", "CGI-HGVSp")
CGI_DESCRIPTIONS = {
    "CGI-Gene": "gene",
    "CGI-Protein Change": "protein change",
    "CGI-Oncogenic Summary": "oncogenic summary",
    "CGI-Oncogenic Prediction": "oncogenic prediction (driver or passenger, and by which method)",
    "CGI-External oncogenic annotation": "external oncogenic annotation (sources)",
    "CGI-Consequence": "consequence type",
    "CGI-Transcript": "transcript",
    "CGI-Type": "alteration type",
    "CGI-HGVSc": "HGVS coding change",
    "CGI-HGVSp": "HGVS protein change",
    "CGI-Mutation": "mutation",
}
BRAVO_FIELDS = (  # (column in the bravo table, INFO ID, Type, what)
    ("bravo_variant_id", "BRAVO_ID", "String", "Bravo variant id"),
    ("allele_freq", "BRAVO_AF", "Float", "Bravo allele frequency"),
    ("allele_count", "BRAVO_AC", "Integer", "Bravo allele count"),
    ("allele_num", "BRAVO_AN", "Integer", "Bravo allele number (alleles in samples with coverage)"),
    ("filter", "BRAVO_FILTER", "String", "Bravo variant filter"),
)

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_FLOATS = re.compile(rf"(?:{_NUMBER})?(?:\t(?:{_NUMBER})?)*")
_INTEGERS = re.compile(r"(?:[-+]?\d+)?(?:\t(?:[-+]?\d+)?)*")
ROW_BATCH = 1 << 17  # bytes of a source's lines parsed at once: small batches keep a process small (measured)
_KIND_PATTERNS = {None: "", "Integer": r"(?:[-+]?\d+)?", "Float": f"(?:{_NUMBER})?", "String": r"[^\t]*"}


def read_provenance(path: str) -> dict:
    """The ``<file>.prov.json`` sidecar the runner wrote beside a source, or {}."""
    sidecar = Path(f"{path}.prov.json")
    if not sidecar.is_file():
        return {}
    try:
        record = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        log.warning("provenance record %s is not JSON; ignored", sidecar)
        return {}
    return record if isinstance(record, dict) else {}


def _versions_text(versions: dict, sep: str = "; ") -> str:
    return sep.join(f"{k}={v}" for k, v in versions.items() if v not in (None, "", {}))


class Field:
    __slots__ = ("id", "type", "description", "column")

    def __init__(self, id: str, type: str, description: str, column: str):
        self.id, self.type, self.description, self.column = id, type, description, column


def _info_id(text: str) -> str:
    name = re.sub(r"[^0-9A-Za-z_.]", "_", text)
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


class Source:
    """One service's result file: its fields, and its rows as (key, payload)."""

    name = ""

    def __init__(self, path: str, columns=None, status: str | None = None):
        self.path = path
        self.wanted, self.status_path = columns, status
        self.provenance = read_provenance(path)
        self.status = self._read_status(status) if status else {}
        self.fields: list[Field] = []
        self.header_lines = 0  # lines before the first data row
        self.delimiter = "\t"
        self._read_header(columns)
        self.prefixes = [f"{field.id}=" for field in self.fields]
        self.make_fragments = True  # False when no VCF is written: only the values are wanted
        self.empty_raw = "\t" * (len(self.fields) - 1)

    # -- to be provided by each source
    def _read_header(self, columns) -> None:
        raise NotImplementedError

    def input_key(self, chrom: str, pos: str, ref: str, alt: str) -> str | None:
        """The key of one ALT of the VCF in this source's spelling; None if it never has one."""
        raise NotImplementedError

    def chrom_prefix(self, chrom: str) -> str:
        """The start of the key of any SNV on ``chrom`` (an uppercase SNV is spelt as in the VCF)."""
        raise NotImplementedError

    def _row_key(self, parts: list[str]) -> str | None:
        raise NotImplementedError

    def _read_status(self, path: str) -> dict:
        raise UsageError(f"a status input is only taken with the opencravat input, not {self.name}")

    # -- shared
    def refuse(self, what: str, hint: str | None = None):
        raise UsageError(f"{self.name} input {self.path}: {what}", hint=hint)

    def _carried(self, header: list[str], asked: list[str] | None, default: list[str]) -> list[str]:
        """The columns to carry: those the params name (all must exist), else ``default``."""
        if not asked:
            return default
        unknown = [c for c in asked if c not in header]
        if unknown:
            self.refuse(f"has no column {', '.join(unknown)}", hint=f"its columns: {', '.join(header)}")
        return list(dict.fromkeys(asked))

    def _split(self, line: str) -> list[str]:
        if '"' in line or self.delimiter != "\t":
            parts = next(csv.reader([line.rstrip("\r\n")], delimiter=self.delimiter))
            return [p.replace("\t", " ").replace("\n", " ") for p in parts]
        return line.rstrip("\r\n").split("\t")

    def rows(self):
        """(key, payload) for every data row, in file order; a payload is ``(INFO fragment,
        escaped values joined by tabs, values as written joined by tabs)``."""
        return chain.from_iterable(zip(keys, payloads) for keys, payloads in self._row_batches())

    def row_batches(self):
        """The rows as ``rows`` gives them, a batch at a time: ``(keys, payloads)``, two lists."""
        return self._row_batches()

    def _row_batches(self):
        """The rows ROW_BATCH bytes of lines at a time: list comprehensions, not a loop per row."""
        pick, keyget, prefixes, cut = self.pick, self.keyget, self.prefixes, self._cut
        number = self.header_lines
        with open_text(self.path) as handle:
            for _ in range(self.header_lines):
                handle.readline()
            while lines := handle.readlines(ROW_BATCH):
                chunk = "".join(lines)
                if self.delimiter == "\t" and '"' not in chunk:
                    texts = chunk.split("\n")
                    if texts[-1] == "":
                        del texts[-1]
                    parts = [cut(text) for text in texts]
                    if None in parts:
                        parts = self._whole_rows([text.split("\t") for text in texts], number)
                else:
                    parts = self._whole_rows([self._split(line) for line in lines], number)
                number += len(lines)
                keys = ["\t".join(keyget(p)) for p in parts] if keyget is not None else [self._row_key(p) for p in parts]
                raws = ["\t".join(pick(p)) for p in parts]
                blob = "\n".join(raws)  # values hold no line ends: a batch is checked and escaped at once
                if self.type_check is not None and self.batch_check(blob + "\n") is None:
                    check = self.type_check
                    for at in [i for i, raw in enumerate(raws) if check(raw) is None]:
                        self._retype(pick(parts[at]))
                escaped = encode(blob).split("\n") if holds_reserved(blob) else raws
                values = [text.split("\t") for text in escaped]
                if self.make_fragments:
                    fragments = [";".join(compress(map(add, prefixes, v), v)) for v in values]
                else:
                    fragments = [""] * len(values)
                payloads = list(zip(fragments, escaped, raws))
                if None in keys:
                    kept = [n for n, key in enumerate(keys) if key is not None]
                    keys, payloads = [keys[n] for n in kept], [payloads[n] for n in kept]
                yield keys, payloads

    def _whole_rows(self, parts: list[list[str]], number: int) -> list[list[str]]:
        """Whole rows (all columns) of a batch, compacted, its blank lines left out; a row cut
        short is refused."""
        whole = []
        for n, row in enumerate(parts, number + 1):
            if len(row) >= self.width:
                whole.append(self._compact(row))
            elif any(cell.strip() for cell in row):
                self.refuse(f"line {n} has {len(row)} columns, not {self.width} like its header",
                            hint="the file is cut short, or is not this kind of file")
        return whole

    def parse_line(self, line: str):
        parts = self._compact(self._split(line))
        key = self.key_of(parts)
        picked = self.pick(parts)
        raw = "\t".join(picked)
        if self.type_check is not None and self.type_check(raw) is None:
            self._retype(picked)
        escaped = escape(raw)
        values = escaped.split("\t")
        return key, (";".join(compress(map(add, self.prefixes, values), values)), escaped, raw)

    def worker_report(self) -> dict:
        """What was learnt while reading the rows (for OpenCRAVAT, its columns' types)."""
        return {}

    def learn(self, report: dict) -> None:
        """Take what a process that read the rows learnt (see ``worker_report``)."""

    type_check = None  # fullmatch of the tab-joined values, for sources that infer types

    keyget = None  # an itemgetter of the key columns, when the key is just them joined

    def key_of(self, parts: list[str]) -> str | None:
        return "\t".join(self.keyget(parts)) if self.keyget is not None else self._row_key(parts)

    def _set_columns(self, header: list[str], carried: list[str], keys: list[int]) -> None:
        """Which columns a row is cut into: all but the widest run of columns nothing needs
        (CGI repeats the input's INFO and sample columns; OpenCRAVAT its vcfinfo ones), which is
        left in one piece. ``self.pick`` then takes the carried values, ``self.key_at`` the key's."""
        self.columns, self.width = header, len(header)
        index = {name: i for i, name in enumerate(header)}
        needed = sorted({*keys, *(index[name] for name in carried)})
        gap_start, gap_length, before = 0, 0, -1
        for at in [*needed, self.width]:
            if at - before - 1 > gap_length:
                gap_start, gap_length = before + 1, at - before - 1
            before = at
        if gap_length < 2:
            gap_start, gap_length = self.width, 0
        self.gap = (gap_start, gap_length)
        compact = lambda i: i if i < gap_start else i - gap_length  # noqa: E731
        self.indices = [compact(index[name]) for name in carried]
        self.key_at = [compact(i) for i in keys]
        self.keyget = itemgetter(*self.key_at) if self.joins_key else None
        self.pick = itemgetter(*self.indices) if len(self.indices) > 1 else (lambda parts, i=self.indices[0]: (parts[i],))

    joins_key = True  # the key is the key columns joined by tabs (not so for CGI)

    def _cut(self, line: str) -> list[str] | None:
        """A line (no line end) cut into its columns but the gap's; None if it has too few."""
        gap_start, gap_length = self.gap
        if not gap_length:
            parts = line.split("\t")
            return parts if len(parts) >= self.width else None
        after = self.width - gap_start - gap_length
        parts = line.split("\t", gap_start)
        if len(parts) <= gap_start:
            return None
        if not after:
            del parts[gap_start]
            return parts
        right = parts.pop().rsplit("\t", after)
        if len(right) <= after or right[0].count("\t") != gap_length - 1:
            return None
        del right[0]
        parts += right
        return parts

    def _compact(self, parts: list[str]) -> list[str]:
        """All columns of a row (split whole) but the gap's; columns past the header's are dropped,
        as csv.DictReader would set them apart."""
        gap_start, gap_length = self.gap
        return parts[:gap_start] + parts[gap_start + gap_length:self.width]

    def versions(self) -> dict:
        return dict(self.provenance.get("versions") or {})

    def service_text(self) -> str:
        """The service and what it ran, e.g. ``CGI v23.12.2 job 0a1b...``."""
        versions = self.versions()
        text = " ".join([LABELS[self.name], *(str(v) for v in versions.values() if isinstance(v, (str, int, float)) and v)])
        job = (self.provenance.get("details") or {}).get("job_id")
        return f"{text} job {job}" if job else text

    def provenance_text(self) -> str:
        prov = self.provenance
        if not prov:
            return f"{LABELS[self.name]}, from {Path(self.path).name}; no provenance record"
        text = f"{self.service_text()} via gensvc {prov.get('gensvc', '?')}"
        return f"{text}, {prov['url']}" if prov.get("url") else text

    def describe(self, what: str) -> str:
        return f"{what} ({self.provenance_text()})"

    def header_record(self, counts: dict) -> str:
        """One ``##gensvcSource`` line: where the source came from and how much of it joined."""
        prov = self.provenance
        details = prov.get("details") or {}
        items = {
            "Service": prov.get("service", self.name),
            "Operation": prov.get("operation", ""),
            "URL": prov.get("url") or "",
            "JobID": details.get("job_id") or "",
            "Versions": _versions_text(self.versions(), ";"),
            "Started": prov.get("started", ""),
            "Finished": prov.get("finished", ""),
            "Gensvc": prov.get("gensvc", ""),
            "File": Path(self.path).name,
            "Rows": counts.get("rows", 0),
            "UsedRows": counts.get("used_rows", 0),
            "MatchedAlts": counts.get("matched_alts", 0),
        }
        body = ",".join(f'{k}="{header_value(v)}"' for k, v in items.items())
        return f"##gensvcSource=<ID={self.name},{body}>"


class BravoSource(Source):
    name = "bravo"

    def _read_header(self, columns) -> None:
        from gensvc.services.spellings import TABLE_COLUMNS

        with open_text(self.path) as handle:
            first = handle.readline().rstrip("\r\n")
        if first.split("\t") != list(TABLE_COLUMNS):
            self.refuse("is not a bravo frequencies table (its header is not " + " ".join(TABLE_COLUMNS) + ")",
                        hint="give the table output of `gensvc bravo frequencies` made from this VCF")
        self.header_lines = 1
        self._set_columns(list(TABLE_COLUMNS), [column for column, *_ in BRAVO_FIELDS], [0, 1, 2, 3])
        for column, info_id, kind, what in BRAVO_FIELDS:
            self.fields.append(Field(info_id, kind, self.describe(what), column))

    def service_text(self) -> str:
        versions = self.versions()
        text = "Bravo"
        if versions.get("dataset"):
            text += f" TOPMed {versions['dataset']}"
        if versions.get("api_version"):
            text += f" API {versions['api_version']}"
        return text

    def input_key(self, chrom, pos, ref, alt):
        return f"{chrom}\t{pos}\t{ref}\t{alt}"

    def chrom_prefix(self, chrom: str) -> str:
        return f"{chrom}\t"


class OpenCravatSource(Source):
    name = "opencravat"

    def _read_header(self, columns) -> None:
        titles = {}
        with open_text(self.path) as handle:
            count = 0
            for line in handle:
                count += 1
                if line.startswith("##fileformat=VCF"):
                    self.refuse("is OpenCRAVAT's VCF report, not its variant TSV report",
                                hint="give the tsv report (`gensvc opencravat report --output tsv=...`)")
                if line.startswith("#"):
                    match = re.match(r"#Column description\. Column \d+ ([^=]+)=(.*)", line.rstrip("\r\n"))
                    if match:
                        titles[match.group(1)] = match.group(2)
                    continue
                if line.strip():
                    header_line = line.rstrip("\r\n")
                    break
            else:
                self.refuse("has no header row", hint="give OpenCRAVAT's variant TSV report")
        self.header_lines = count
        self.delimiter = "\t" if "\t" in header_line else ","
        header = next(csv.reader([header_line], delimiter=self.delimiter))
        missing = [c for c in OC_KEY_COLUMNS if c not in header]
        if missing:
            self.refuse(f"is not an OpenCRAVAT variant report (its header has no {', '.join(missing)})",
                        hint="give the variant-level tsv report of `gensvc opencravat report`")
        carried = self._carried(header, columns, [c for c in header if c not in OC_KEY_COLUMNS and c not in OC_ECHO_COLUMNS
                                                  and c.partition(".")[0] not in OC_ECHO_GROUPS])
        if not carried:
            self.refuse("has no annotation columns to carry")
        self._set_columns(header, carried, [header.index(c) for c in ("chrom", "pos", "ref_base", "alt_base")])
        seen = set()
        for column in carried:
            group, dot, name = column.rpartition(".")
            info_id = _info_id(f"OC_{group or 'base'}__{name}")
            while info_id in seen:
                info_id += "_"
            seen.add(info_id)
            what = titles.get(column) or name.replace("_", " ")
            module = self.versions().get(group) if group else None
            origin = f"OpenCRAVAT {group} {module}" if module else f"OpenCRAVAT {group or 'gene mapper'}"
            self.fields.append(Field(info_id, "String", self.describe(f"{origin}: {what} [{column}]"), column))
        # OpenCRAVAT's TSV states no types: a column is Integer or Float if all its values are
        self.kinds: list[str | None] = [None] * len(self.fields)  # None: no value yet
        self._refresh_checks()
        from gensvc.services.spellings import oc_allele

        self._chrom_names: dict[str, str] = {}
        self._oc_allele = oc_allele

    def _read_status(self, path: str) -> dict:
        try:
            status = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"opencravat_status input {path} is not JSON: {exc}") from None
        if not isinstance(status, dict) or status.get("service") != "opencravat" or not isinstance(status.get("job"), dict):
            raise UsageError(f"opencravat_status input {path} is not the status written by `gensvc opencravat poll`")
        job = (self.provenance.get("details") or {}).get("job_id")
        if job and status.get("job_id") != job:
            raise UsageError(f"opencravat_status input {path} is of job {status.get('job_id')}, "
                             f"but the opencravat report of job {job}", hint="give the status of the same job")
        return status

    def versions(self) -> dict:
        versions = dict(self.provenance.get("versions") or {})
        job = self.status.get("job") or {}
        if job.get("open_cravat_version"):
            versions.setdefault("open_cravat", job["open_cravat_version"])
        for module, version in (job.get("annotator_version") or {}).items() if isinstance(
                job.get("annotator_version"), dict) else ():
            if version:
                versions.setdefault(module, version)
        return versions

    def service_text(self) -> str:
        text = "OpenCRAVAT"
        version = self.versions().get("open_cravat")
        if version:
            text += f" {version}"
        job = (self.provenance.get("details") or {}).get("job_id") or self.status.get("job_id")
        return f"{text} job {job}" if job else text

    def _refresh_checks(self) -> None:
        """One pattern over a row's values: each column as its type so far allows. A row that
        does not match moves some column on (no value yet -> Integer -> Float -> String)."""
        if all(kind == "String" for kind in self.kinds):
            self.type_check = self.batch_check = None
            return
        row = "\t".join(_KIND_PATTERNS[kind] for kind in self.kinds)
        self.type_check = re.compile(row).fullmatch
        self.batch_check = re.compile(f"(?:{row}\n)*").fullmatch  # a batch of rows, each ending in \n

    def _retype(self, picked) -> None:
        for i, value in enumerate(picked):
            kind = self.kinds[i]
            if not value or kind == "String":
                continue
            if kind in (None, "Integer") and _INTEGERS.fullmatch(value):
                kind = "Integer"
            elif kind != "String" and _FLOATS.fullmatch(value):
                kind = "Float"
            else:
                kind = "String"
            self.kinds[i] = kind
        self._refresh_checks()

    def final_types(self) -> None:
        for field, kind in zip(self.fields, self.kinds):
            field.type = kind or "String"

    def worker_report(self) -> dict:
        return {"kinds": self.kinds}

    def learn(self, report: dict) -> None:
        self.kinds = report["kinds"]

    def input_key(self, chrom, pos, ref, alt):
        if len(ref) == 1 and len(alt) == 1:
            if ref == alt or alt == "*" or alt == ".":
                return None
            name = self._chrom_names.get(chrom)
            if name is None:
                name = self._chrom_names[chrom] = self._oc_allele(chrom, 1, "A", "C")[0]
            return f"{name}\t{pos}\t{ref.upper()}\t{alt.upper()}"
        if alt[0] == "<" or "[" in alt or "]" in alt or alt == "*":
            return None
        name, pos, ref, alt = self._oc_allele(chrom, int(pos), ref.upper(), alt.upper())
        return f"{name}\t{pos}\t{ref}\t{alt}"

    def chrom_prefix(self, chrom: str) -> str:
        return f"{self._oc_allele(chrom, 1, 'A', 'C')[0]}\t"


class CgiSource(Source):
    name = "cgi"
    joins_key = False

    def _read_header(self, columns) -> None:
        with open_text(self.path) as handle:
            first = handle.readline().rstrip("\r\n")
        if first.startswith("##fileformat=VCF"):
            self.refuse("is a VCF, not CGI's alterations.tsv", hint="give alterations.tsv from `gensvc cgi download`")
        header = next(csv.reader([first], delimiter="\t")) if first else []
        if not any(c.startswith("CGI-") for c in header):
            self.refuse("is not CGI's alterations.tsv (its header has no CGI- columns)",
                        hint="give the alterations output of `gensvc cgi download`")
        lower = {c.lower(): i for i, c in enumerate(header)}  # the last of a repeated name, as csv.DictReader
        chrom_at = lower.get("#chrom", lower.get("chr"))
        if chrom_at is None or "pos" not in lower or "ref" not in lower or "alt" not in lower:
            self.refuse("describes no genomic positions (CGI was given proteins or gDNA, not this VCF)",
                        hint="submit the VCF itself to CGI to merge its results")
        key_columns = [chrom_at, lower["pos"], lower["ref"], lower["alt"]]
        carried = self._carried(header, columns, [c for c in CGI_DEFAULT if c in header])
        if not carried:
            self.refuse("has none of the CGI columns to carry")
        self.header_lines = 1
        self._set_columns(header, carried, key_columns)
        for column in carried:
            info_id = _info_id("CGI_" + re.sub(r"[^0-9A-Za-z]+", "_", column.removeprefix("CGI-")).strip("_").upper())
            what = CGI_DESCRIPTIONS.get(column, column)
            self.fields.append(Field(info_id, "String", self.describe(f"CGI {what}"), column))
        from gensvc.services.spellings import cgi_alleles, input_key, variant_key

        self._chroms: dict[str, str] = {}
        self._input_key, self._cgi_alleles, self._variant_key = input_key, cgi_alleles, variant_key

    def _chrom(self, chrom: str) -> str:
        name = self._chroms.get(chrom)
        if name is None:
            name = self._variant_key(chrom, 0, "", "")[0]
            name = name.upper() if name.lower() in ("x", "y", "m", "mt") else name
            self._chroms[chrom] = name
        return name

    def input_key(self, chrom, pos, ref, alt):
        name = self._chroms.get(chrom) or self._chrom(chrom)
        if len(ref) == 1 and len(alt) == 1:
            if ref == alt or alt == "*" or alt == ".":
                return None
            return f"{name}\t{pos}\t{ref.upper()}\t{alt.upper()}"
        if alt[0] == "<" or alt == "*" or "[" in alt or "]" in alt:
            return None
        _, _, ref, alt = self._input_key(chrom, pos, ref.upper(), alt.upper())
        return f"{name}\t{pos}\t{ref}\t{alt}"

    def chrom_prefix(self, chrom: str) -> str:
        return f"{self._chrom(chrom)}\t"

    def _row_key(self, parts):
        c, p, r, a = self.key_at
        chrom = parts[c]
        if not chrom:
            return None  # a CNA or a fusion
        ref, alt = parts[r], parts[a]
        if (len(ref) > 1 or len(alt) > 1) and ref != "-" and alt != "-":
            ref, alt = self._cgi_alleles(ref, alt)  # trimmed again: one key whatever CGI left shared
        return f"{self._chroms.get(chrom) or self._chrom(chrom)}\t{parts[p]}\t{ref}\t{alt}"

