"""merge annotations: the services' results joined onto the sample VCF, per ALT.

Inputs: the sample ``vcf`` and any of ``opencravat`` (the variant-level TSV report, with
``opencravat_status`` for its module versions), ``bravo`` (the ``bravo frequencies`` table) and
``cgi`` (CGI's alterations.tsv). Outputs: ``vcf`` (bgzipped), ``tbi`` (its tabix index) and
``tsv`` (one row per input ALT).

How the join works, and why it is fast and small:

- Every file is read as a stream of text lines, never held whole. Each source row is keyed in
  that source's own spelling of an allele (Bravo: the input's CHROM POS REF ALT as written;
  OpenCRAVAT: ``oc_allele``, i.e. ``chr`` names, shared bases trimmed, ``-`` for empty; CGI:
  the input's chromosome without ``chr`` and its POS, with CGI's trimmed alleles), and every
  ALT of the VCF is keyed the same way for each source.
- The services write their rows in the input's order, so the join is a merge: the next source
  row is usually the one the next ALT wants. When it is not (a source skipped an ALT, collapsed
  a duplicate, or wrote one elsewhere), the source is read ahead, up to a window of positions,
  into a small buffer keyed by allele; rows left behind in it are counted as unused. Memory
  stays bounded whatever the size of the inputs.
- Only if a source was out of order (rows left unused while ALTs found nothing) is it joined
  again through an index of its rows' file offsets (one int per row, not the rows).
- Values are VCF-escaped as OpenCRAVAT's vcfreporter does (percent-encoding of ``% : ; = ,``,
  and of space); ALTs without a value get ``.``; a field empty for every ALT of a record is
  left out, and a record no source has a value for is written unchanged.
- A source's rows are parsed a megabyte at a time (list comprehensions over the batch; one
  regular expression checks a batch's types, one pass escapes it); the run of columns nothing
  needs (CGI and OpenCRAVAT repeat the input's INFO and sample columns) is never split.
- For a large input, on more than one core, each source is joined by a process of its own,
  which sends this one, per record, its INFO fragment and TSV values through a pipe; another
  process compresses the VCF body; this one puts the records together and writes them. The
  header is written last, so that the types of OpenCRAVAT's columns (which its TSV does not
  state) are the ones all their values fit, and the header can carry the counts.
"""

from __future__ import annotations

import csv
import gc
import gzip
import io
import json
import logging
import os
import queue
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from datetime import datetime, timezone
from itertools import chain, compress
from operator import add, itemgetter
from pathlib import Path

import gensvc
from gensvc.core.textfiles import is_gzipped, open_text
from gensvc.errors import UsageError
from gensvc.vcfinput import read_header

log = logging.getLogger("gensvc.merge")

SOURCES = ("opencravat", "bravo", "cgi")
LABELS = {"opencravat": "OpenCRAVAT", "bravo": "Bravo", "cgi": "CGI"}
WINDOW_BP = 1000  # how far past an ALT's position a source is read ahead for it
MAX_PENDING = 200_000  # rows held in the read-ahead buffer, at most
EVICT_AT = 4096  # buffer size from which rows left behind are dropped as unused
RECENT = 4096  # rows kept after use, for duplicate ALTs (a source may collapse them)
BIG_INPUT = 16 << 20  # from this size (a gzipped VCF: x8), a file is compressed or parsed by a process of its own
FLUSH_LINES = 4096  # lines per write

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

_SPECIAL = re.compile(r"[%:;=, \r]")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_FLOATS = re.compile(rf"(?:{_NUMBER})?(?:\t(?:{_NUMBER})?)*")
_INTEGERS = re.compile(r"(?:[-+]?\d+)?(?:\t(?:[-+]?\d+)?)*")
_INFO_ID = re.compile(r"^##INFO=<ID=([^,>]+)")
_SNV_BASES = frozenset("ACGTN")
_KIND_PATTERNS = {None: "", "Integer": r"(?:[-+]?\d+)?", "Float": f"(?:{_NUMBER})?", "String": r"[^\t]*"}


def escape(value: str) -> str:
    """A value as a VCF INFO value: percent-encoded like OpenCRAVAT's vcfreporter (tabs and
    line ends cannot be in a value here: they separate the fields and lines read)."""
    if _SPECIAL.search(value) is None:
        return value
    return _encode(value)


def unescape(value: str) -> str:
    """A value as the service wrote it, from its VCF-escaped form (for readers of the output)."""
    from urllib.parse import unquote

    return unquote(value)


def _encode(value: str) -> str:
    return (value.replace("%", "%25").replace(":", "%3A").replace(";", "%3B").replace("=", "%3D")
            .replace(",", "%2C").replace(" ", "%20").replace("\r", "%0D"))


# ---- files ----------------------------------------------------------------------------------


def _single(step, name: str) -> str | None:
    path = step.input.get(name)
    if isinstance(path, list):
        if len(path) != 1:
            raise UsageError(f"merge takes one {name} input, not {len(path)}")
        path = path[0]
    return str(path) if path else None


def bgzf_blocks(data: bytes, level: int = 6) -> bytes:
    """``data`` as BGZF blocks (no end-of-file marker): gzip members of at most 64 KiB."""
    out = bytearray()
    for start in range(0, len(data), 0xFF00):
        piece = data[start:start + 0xFF00]
        packer = zlib.compressobj(level, zlib.DEFLATED, -15)
        packed = packer.compress(piece) + packer.flush()
        out += b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
        out += struct.pack("<H", len(packed) + 25) + packed
        out += struct.pack("<II", zlib.crc32(piece) & 0xFFFFFFFF, len(piece))
    return bytes(out)


def _widen_pipe(pipe) -> None:
    """A pipe of 1 MiB rather than 64 KiB (Linux): the writer runs further ahead of the reader,
    so that the two processes work at the same time instead of in turn."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass


def bgzip_stream(path: str) -> None:
    """Compress standard input into the BGZF file ``path`` (runs as the compressor process)."""
    import signal

    import pysam

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the joining process stops this one
    with pysam.BGZFile(path, "wb") as sink:
        while True:
            block = os.read(0, 1 << 20)
            if not block:
                break
            sink.write(block)


class BgzfSink:
    """Text written in chunks into a BGZF file, compressed here or by a second process.

    Compressing costs as much as making the records, so for a large input a second process
    does it, fed through a pipe by a thread (pysam's BGZF writer holds the GIL, and zlib in a
    thread waits for it, so a thread alone would not help)."""

    def __init__(self, path: str, separate_process: bool):
        self.path = path
        self.process = self.thread = None
        self.failure: BaseException | None = None
        if separate_process:
            code = "import sys; from gensvc.merge import bgzip_stream; bgzip_stream(sys.argv[1])"
            self.process = subprocess.Popen([sys.executable, "-c", code, path], stdin=subprocess.PIPE, bufsize=0)
            _widen_pipe(self.process.stdin)
            self.queue: queue.Queue = queue.Queue(maxsize=8)
            self.thread = threading.Thread(target=self._feed, name="gensvc-bgzip-feed", daemon=True)
            self.thread.start()
        else:
            import pysam

            self.stream = pysam.BGZFile(path, "wb")

    def _feed(self) -> None:
        stdin = self.process.stdin
        try:
            while (chunk := self.queue.get()) is not None:
                stdin.write(chunk)
        except BaseException as exc:  # the compressor died: drain, report at close
            self.failure = exc
            while self.queue.get() is not None:
                pass

    def write(self, text: str) -> None:
        data = text.encode()
        if self.thread is not None:
            self.queue.put(data)
        else:
            self.stream.write(data)

    def close(self) -> None:
        if self.thread is None:
            self.stream.close()
            return
        self.queue.put(None)
        self.thread.join()
        self.process.stdin.close()
        code = self.process.wait()
        if self.failure is not None or code != 0:
            raise OSError(f"compressing {self.path} failed (exit {code}): {self.failure or ''}")

    def abort(self) -> None:
        if self.thread is None:
            try:
                self.stream.close()
            except (OSError, ValueError):
                pass
            return
        self.process.kill()
        self.queue.put(None)
        self.thread.join()
        self.process.wait()


class TextSink:
    """Plain text."""

    def __init__(self, path: str):
        self.handle = open(path, "w")
        self.write = self.handle.write

    def close(self) -> None:
        self.handle.close()

    def abort(self) -> None:
        self.handle.close()


class NullSink:
    def write(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


# ---- provenance -------------------------------------------------------------------------------


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


def _header_value(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "/").replace('"', "'").replace("\n", " ").replace("\r", " ")


# ---- sources ------------------------------------------------------------------------------------


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
        return chain.from_iterable(self._row_batches())

    def _row_batches(self):
        """The rows a megabyte of lines at a time: list comprehensions, not a loop per row."""
        pick, keyget, prefixes, cut = self.pick, self.keyget, self.prefixes, self._cut
        special = _SPECIAL.search
        number = self.header_lines
        with open_text(self.path) as handle:
            for _ in range(self.header_lines):
                handle.readline()
            while lines := handle.readlines(1 << 20):
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
                if "\x1e" in blob or "\x1f" in blob:  # the separators between processes: spaces will do
                    blob = blob.replace("\x1e", " ").replace("\x1f", " ")
                    raws = blob.split("\n")
                if self.type_check is not None and self.batch_check(blob + "\n") is None:
                    check = self.type_check
                    for at in [i for i, raw in enumerate(raws) if check(raw) is None]:
                        self._retype(pick(parts[at]))
                escaped = raws if special(blob) is None else _encode(blob).split("\n")
                values = [text.split("\t") for text in escaped]
                if self.make_fragments:
                    fragments = [";".join(compress(map(add, prefixes, v), v)) for v in values]
                else:
                    fragments = [""] * len(values)
                payloads = zip(keys, zip(fragments, escaped, raws))
                yield payloads if None not in keys else ((k, p) for k, p in payloads if k is not None)

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
        body = ",".join(f'{k}="{_header_value(v)}"' for k, v in items.items())
        return f"##gensvcSource=<ID={self.name},{body}>"


class BravoSource(Source):
    name = "bravo"

    def _read_header(self, columns) -> None:
        from gensvc.services.bravo import TABLE_COLUMNS

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
        from gensvc.services.opencravat import oc_allele

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
        from gensvc.services.cgi import cgi_alleles, input_key, variant_key

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


SOURCE_TYPES = {"opencravat": OpenCravatSource, "bravo": BravoSource, "cgi": CgiSource}


# ---- joins -----------------------------------------------------------------------------------


def _where(key: str) -> tuple[str, int]:
    chrom, pos, _ = key.split("\t", 2)
    return chrom, int(pos)


class StreamJoin:
    """A source joined in input order with a bounded read-ahead (see the module docstring).

    Every row read ends up counted once: used (it gave an ALT its values), duplicate (the
    same allele as a row just used) or unused (no ALT of the VCF wanted it)."""

    def __init__(self, source: Source):
        self.source = source
        self.rows = source.rows()
        self.head = next(self.rows, None)
        self.pending: dict[str, tuple] = {}
        self.recent: dict[str, tuple] = {}
        self.older: dict[str, tuple] = {}
        self.used = self.duplicates = self.unused = self.misses = 0

    def lookup(self, key: str):
        head = self.head
        if head is not None and head[0] == key:
            self.head = next(self.rows, None)
            self.used += 1
            recent = self.recent
            recent[key] = head[1]
            if len(recent) >= RECENT:
                self.older, self.recent = recent, {}
            return head[1]
        return self._lookup_ahead(key)

    def _keep(self, key: str, payload) -> None:
        self.used += 1
        self.recent[key] = payload
        if len(self.recent) >= RECENT:
            self.older, self.recent = self.recent, {}

    def _lookup_ahead(self, key: str):
        found = self.pending.pop(key, None)
        if found is not None:
            self._keep(key, found[0])
            return found[0]
        payload = self.recent.get(key) or self.older.get(key)
        if payload is not None:
            return payload  # a duplicate ALT, whose row the source wrote once
        chrom, pos = _where(key)
        pending = self.pending
        while self.head is not None and len(pending) < MAX_PENDING:
            head_key, head_payload = self.head
            if head_key == key:
                self.head = next(self.rows, None)
                self._keep(key, head_payload)
                return head_payload
            head_chrom, head_pos = _where(head_key)
            if head_chrom != chrom or head_pos > pos + WINDOW_BP:
                break  # the source is past this ALT: it has no row for it
            if head_key in pending or head_key in self.recent or head_key in self.older:
                self.duplicates += 1
            else:
                pending[head_key] = (head_payload, head_chrom, head_pos)
            self.head = next(self.rows, None)
        self.misses += 1
        if len(pending) >= EVICT_AT:
            self._evict(chrom, pos)
        return None

    def _evict(self, chrom: str, pos: int) -> None:
        behind = [k for k, (_, c, p) in self.pending.items() if c != chrom or p < pos - WINDOW_BP]
        for k in behind:
            del self.pending[k]
        self.unused += len(behind)

    def finish(self) -> dict:
        self.unused += len(self.pending)
        self.pending.clear()
        if self.head is not None:
            self.unused += 1 + sum(1 for _ in self.rows)
            self.head = None
        return {"rows": self.used + self.duplicates + self.unused, "used_rows": self.used,
                "duplicate_rows": self.duplicates, "unused_rows": self.unused, "misses": self.misses,
                "join": "stream"}

    @property
    def out_of_order(self) -> bool:
        """Rows unused while ALTs found none: some of them may have been for those ALTs."""
        return self.unused > 0 and self.misses > 0


class IndexJoin:
    """A source joined through an index of its rows' byte offsets (for a source out of order)."""

    def __init__(self, source: Source, workdir: str):
        self.source = source
        path = source.path
        if is_gzipped(path):
            plain = os.path.join(workdir, f"{source.name}.plain")
            with gzip.open(path, "rb") as packed, open(plain, "wb") as unpacked:
                shutil.copyfileobj(packed, unpacked)
            path = plain
        self.handle = open(path, "rb")
        self.offsets: dict[str, int] = {}
        self.rows = 0
        offset = 0
        for number, line in enumerate(self.handle):
            here, offset = offset, offset + len(line)
            if number < source.header_lines or not line.strip():
                continue
            self.rows += 1
            text = line.decode("utf-8", "replace")
            parts = source._split(text)
            if len(parts) < source.width:
                source.refuse(f"line {number + 1} has {len(parts)} columns, not {source.width} like its header")
            key = source.key_of(source._compact(parts))
            if key is not None:
                if source.name == "cgi" or key not in self.offsets:  # CGI keeps the last of identical rows
                    self.offsets[key] = here
        self.used: set[int] = set()
        self.misses = 0

    def lookup(self, key: str):
        offset = self.offsets.get(key)
        if offset is None:
            self.misses += 1
            return None
        self.used.add(offset)
        self.handle.seek(offset)
        return self.source.parse_line(self.handle.readline().decode("utf-8", "replace"))[1]

    def finish(self) -> dict:
        self.handle.close()
        return {"rows": self.rows, "used_rows": len(self.used), "duplicate_rows": 0,
                "unused_rows": self.rows - len(self.used), "misses": self.misses, "join": "index"}

    out_of_order = False


# ---- the VCF, and one source joined onto it -------------------------------------------------------


def read_vcf_header(handle, path: str) -> tuple[list[str], str]:
    """The ``##`` lines and the ``#CHROM`` line; refuses, saying what it is, anything that is not a VCF."""
    return read_header(handle, path, "vcf input")


def record_lines(handle):
    """``(line, its first 9 columns and the rest, ())`` for each record after the header, line
    ends stripped; empty lines skipped (as ``join_records`` does, to stay in step)."""
    for line in handle:
        if line != "\n":
            line = line.rstrip("\n")
            yield line, line.split("\t", 8), ()


def _multi_fragment(fields: list[Field], payloads: list) -> str:
    """INFO of one source for a multiallelic record: per field, one value per ALT."""
    blank = ("",) * len(fields)
    per_alt = [p[1].split("\t") if p is not None else blank for p in payloads]
    return ";".join([f"{field.id}={','.join([v or '.' for v in values])}"
                     for field, values in zip(fields, zip(*per_alt)) if any(values)])


def join_records(sources: list[Source], vcf_path: str, modes: dict, workdir: str = ".",
                 fragments: bool = True, values: bool = True, lines: bool = False):
    """What each source adds to each record of the VCF, in order: per record a tuple with, per
    source, None or ``(INFO fragment, [its values as written, per ALT])`` (the fragment "" when
    ``fragments`` is false, the values None when ``values`` is false); with ``lines``, per record
    ``(line, its first 9 columns and the rest, that tuple)``. Once exhausted, each
    ``source.report`` holds its counts."""
    for source in sources:
        source.make_fragments = fragments
    joins = [StreamJoin(s) if modes[s.name] == "stream" else IndexJoin(s, workdir) for s in sources]
    plan = [(j.lookup, s.input_key, s.chrom_prefix, s.empty_raw, s.fields) for s, j in zip(sources, joins)]
    matched, valued = [0] * len(sources), [0] * len(sources)
    prefixes: list[str] = []
    last_chrom = None
    with open_text(vcf_path) as handle:
        read_vcf_header(handle, vcf_path)
        for line in handle:
            if line == "\n":
                continue  # as record_lines does
            if lines:
                line = line.rstrip("\n")
                parts = line.split("\t", 8)
            else:
                parts = line.split("\t", 5)
            if len(parts) < 5:
                yield (line, parts, (None,) * len(sources)) if lines else (None,) * len(sources)
                continue  # the joining process refuses this record
            chrom, pos, ref, alts = parts[0], parts[1], parts[3], parts[4]
            added = []
            if "," not in alts:
                if ref in _SNV_BASES and alts in _SNV_BASES and ref != alts:
                    # an SNV: every source spells it CHROM<tab>POS<tab>REF<tab>ALT, CHROM its own way
                    if chrom != last_chrom:
                        last_chrom, prefixes = chrom, [chrom_prefix(chrom) for _, _, chrom_prefix, _, _ in plan]
                    tail = f"{pos}\t{ref}\t{alts}"
                    payloads = [lookup(prefix + tail) for prefix, (lookup, *_) in zip(prefixes, plan)]
                elif alts == ".":
                    payloads = [None] * len(plan)
                else:
                    payloads = [lookup(key) if (key := keyer(chrom, pos, ref, alts)) is not None else None
                                for lookup, keyer, *_ in plan]
                for n, payload in enumerate(payloads):
                    if payload is None:
                        added.append(None)
                    else:
                        matched[n] += 1
                        if payload[2] != plan[n][3]:
                            valued[n] += 1
                        added.append((payload[0], (payload[2],) if values else None))
            else:
                alt_list = alts.split(",")
                for n, (lookup, keyer, _, empty, fields) in enumerate(plan):
                    payloads = [lookup(key) if (key := keyer(chrom, pos, ref, alt)) is not None else None
                                for alt in alt_list]
                    found = [p for p in payloads if p is not None]
                    if not found:
                        added.append(None)
                        continue
                    matched[n] += len(found)
                    valued[n] += sum(1 for p in found if p[2] != empty)
                    added.append((_multi_fragment(fields, payloads) if fragments else "",
                                  [p[2] if p is not None else empty for p in payloads] if values else None))
            yield (line, parts, tuple(added)) if lines else tuple(added)
    for n, (source, join) in enumerate(zip(sources, joins)):
        source.report = {**join.finish(), "matched_alts": matched[n], "alts_with_values": valued[n],
                         "out_of_order": join.out_of_order, **source.worker_report()}


def join_worker(spec: str) -> None:
    """``join_records`` for some sources in a process of its own, written to standard output one
    line per record: per source (separated by \\x1d) nothing for None, else ``fragment \\x1f
    values \\x1e values ...`` (the fragment alone when no values are wanted); then ``\\x00end [counts per source]``, or ``\\x00error MESSAGE``
    and exit 2 for a source that is not what it should be."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the joining process stops this one
    gc.disable()  # as in annotations()
    order = json.loads(spec)
    out = open(1, "w", encoding="utf-8", newline="\n", buffering=1 << 16, closefd=False)
    try:
        sources = [SOURCE_TYPES[s["name"]](s["path"], s["columns"], s["status"]) for s in order["sources"]]
        write = out.write
        records = join_records(sources, order["vcf"], order["modes"], order["workdir"], order["fragments"], order["values"])
        if order["values"]:
            for added in records:
                write("\x1d".join(["" if a is None else f"{a[0]}\x1f{chr(30).join(a[1])}" for a in added]) + "\n")
        else:  # the fragments alone
            for added in records:
                write("\x1d".join(["" if a is None else a[0] for a in added]) + "\n")
        write(f"\x00end {json.dumps([s.report for s in sources])}\n")
        out.flush()
    except UsageError as exc:
        out.write(f"\x00error {exc}\n")
        out.flush()
        sys.exit(2)
    except BrokenPipeError:  # the joining process is gone
        os._exit(0)


class JoinProcess:
    """``join_records`` of some sources, run by ``join_worker`` in a process of its own."""

    def __init__(self, sources: list[Source], vcf_path: str, modes: dict, workdir: str,
                 fragments: bool = True, values: bool = True):
        self.sources = sources
        spec = json.dumps({"sources": [{"name": s.name, "path": s.path, "columns": s.wanted, "status": s.status_path}
                                       for s in sources],
                           "vcf": vcf_path, "modes": modes, "workdir": workdir, "fragments": fragments,
                           "values": values})
        self.values = values
        code = "import sys; from gensvc.merge import join_worker; join_worker(sys.argv[1])"
        self.process = subprocess.Popen([sys.executable, "-c", code, spec], stdout=subprocess.PIPE)
        _widen_pipe(self.process.stdout)

    def __iter__(self):
        lines = io.TextIOWrapper(self.process.stdout, encoding="utf-8", newline="\n")
        nothing = (None,) * len(self.sources)
        for line in lines:
            if line[0] == "\x00":
                self._ended(line[1:].rstrip("\n"), lines)
                return
            if len(line) <= len(self.sources):  # only separators: nothing from any source
                yield nothing
            elif not self.values:
                yield tuple([(fragment, None) if fragment else None for fragment in line[:-1].split("\x1d")])
            else:
                yield tuple([(fragment, values.split("\x1e")) if sep else None
                             for fragment, sep, values in (part.partition("\x1f") for part in line[:-1].split("\x1d"))])
        self._ended("", lines)

    def _ended(self, message: str, lines) -> None:
        lines.close()
        code = self.process.wait()
        if message.startswith("error "):
            raise UsageError(message[6:])
        if code != 0 or not message.startswith("end "):
            raise RuntimeError(f"the process joining {', '.join(s.path for s in self.sources)} failed (exit {code})")
        for source, report in zip(self.sources, json.loads(message[4:])):
            source.report = report
            source.learn(report)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def plan_processes(sources: list[Source], big: bool, cpus: int | None = None) -> tuple[list, list[list]]:
    """Which sources this process joins itself, and which go to worker processes (in groups).

    A small run, or one on a single core, is all joined here. Otherwise each source is joined by
    a process of its own, and this one only puts the records together and writes them: the
    sources' rows are most of the work, and processes that each do one thing keep both cores
    busy (measured: bench/merge.py)."""
    if not big or not sources or (cpus or os.cpu_count() or 1) < 2:
        return list(sources), []
    return [], [[source] for source in sources]


def _merge_records(records_in, path: str, sources: list[Source], streams: list, order: list[int], body,
                   table) -> dict:
    """Zip the records with what the sources add to them; write them and their TSV rows.

    ``records_in`` yields ``(line, columns, what the sources joined here add)``; each stream
    yields what some other sources add; their concatenation, taken in ``order``, is one entry per
    source in ``sources``."""
    empties = [s.empty_raw for s in sources]
    if order == list(range(len(order))):
        order = None
    tabulate, emit = not isinstance(table, NullSink), not isinstance(body, NullSink)
    records = alts_total = annotated = 0
    chrom_seen: set[str] = set()
    last_chrom, last_pos = None, 0
    unsorted = None
    out: list[str] = []
    rows: list[str] = []
    for (line, parts, added), *groups in zip(records_in, *streams):
        if groups:
            added = sum(groups, added)
        if order is not None:
            added = [added[i] for i in order]
        records += 1
        if len(parts) < 8:
            raise UsageError(f"vcf input {path}: record {records} has {len(parts)} columns, not at least 8")
        chrom, pos, ref, alts = parts[0], parts[1], parts[3], parts[4]
        if chrom != last_chrom:
            if chrom in chrom_seen and unsorted is None:
                unsorted = f"{chrom} comes again at record {records}"
            chrom_seen.add(chrom)
            last_chrom, last_pos = chrom, 0
        try:
            ipos = int(pos)
        except ValueError:
            raise UsageError(f"vcf input {path}: record {records} has POS {pos!r}, not a number") from None
        if ipos < last_pos and unsorted is None:
            unsorted = f"{chrom}:{ipos} comes after {chrom}:{last_pos}, record {records}"
        last_pos = ipos
        if alts == ".":
            pass
        elif not tabulate:
            alts_total += alts.count(",") + 1
        else:
            if "," not in alts:
                alts_total += 1
                rows.append(f"{chrom}\t{pos}\t{ref}\t{alts}\t"
                            + "\t".join([e if a is None else a[1][0] for a, e in zip(added, empties)]))
            else:
                for i, alt in enumerate(alts.split(",")):
                    alts_total += 1
                    rows.append(f"{chrom}\t{pos}\t{ref}\t{alt}\t"
                                + "\t".join([e if a is None else a[1][i] for a, e in zip(added, empties)]))
        if not emit:
            annotated += any(a is not None for a in added)
            if len(rows) >= FLUSH_LINES:
                table.write("\n".join(rows) + "\n")
                rows.clear()
            continue
        fragments = [a[0] for a in added if a is not None and a[0]]
        if fragments:
            annotated += 1
            info = parts[7]
            parts[7] = ";".join(fragments) if info in (".", "") else f"{info};{';'.join(fragments)}"
            out.append("\t".join(parts))
        else:
            out.append(line)
        if len(out) >= FLUSH_LINES:
            body.write("\n".join(out) + "\n")
            out.clear()
            if rows:
                table.write("\n".join(rows) + "\n")
                rows.clear()
    if out:
        body.write("\n".join(out) + "\n")
    if rows:
        table.write("\n".join(rows) + "\n")
    for stream in [records_in, *streams]:  # run each to its end, so that its counts are in
        for _ in stream:
            raise RuntimeError("the joins of the sources are out of step with the VCF")
    return {"records": records, "alts": alts_total, "annotated_records": annotated, "unsorted": unsorted}


# ---- the operation ---------------------------------------------------------------------------------


def annotations(step, *, opencravat_columns=None, cgi_columns=None) -> dict:
    vcf_path = _single(step, "vcf")
    if vcf_path is None:
        raise UsageError("merge annotations needs a vcf input")
    if "tbi" in step.output and "vcf" not in step.output:
        raise UsageError("a tbi output needs a vcf output")
    wanted = {"opencravat": opencravat_columns, "cgi": cgi_columns}
    status = _single(step, "opencravat_status")
    if status and not _single(step, "opencravat"):
        raise UsageError("an opencravat_status input needs the opencravat input (the report of that job)")

    def open_sources() -> list[Source]:
        return [SOURCE_TYPES[name](path, wanted.get(name), status if name == "opencravat" else None)
                for name in SOURCES if (path := _single(step, name)) is not None]

    sources = open_sources()
    with open_text(vcf_path) as handle:
        meta, columns = read_vcf_header(handle, vcf_path)
    existing = {m.group(1) for line in meta if (m := _INFO_ID.match(line))}
    clash = sorted(existing & {f.id for s in sources for f in s.fields})
    if clash:
        raise UsageError(f"vcf input {vcf_path} already has INFO {', '.join(clash[:5])}",
                         hint="merge onto the sample VCF itself, not onto an annotated one")

    out_vcf = step.output.get("vcf")
    anchor = os.path.dirname(os.path.abspath(out_vcf or step.output["tsv"]))
    workdir = tempfile.mkdtemp(prefix=".gensvc-merge-", dir=anchor)
    collecting = gc.isenabled()
    gc.disable()  # the join makes no cycles; collections would only rescan its buffers again and again
    try:
        modes = {s.name: "stream" for s in sources}
        while True:
            started = time.monotonic()
            counts, body = _run_once(step, vcf_path, sources, modes, workdir)
            log.info("merge: %d records joined with %s in %.1f s", counts["records"],
                     ", ".join(f"{s.name} ({modes[s.name]})" for s in sources) or "no source", time.monotonic() - started)
            redo = [s.name for s in sources if s.report["out_of_order"] and modes[s.name] == "stream"]
            if not redo:
                break
            log.info("merge: %s is not in the VCF's order; joining it again through an index", ", ".join(redo))
            modes.update({name: "index" for name in redo})
            sources = open_sources()
        for source in sources:
            got = source.report
            if got["rows"] and not got["used_rows"]:
                raise UsageError(f"{source.name} input {source.path}: none of its {got['rows']} rows is an ALT "
                                 f"of {vcf_path}", hint="was it made from another VCF?")
        if counts["unsorted"] and "tbi" in step.output:
            raise UsageError(f"vcf input {vcf_path} is not sorted ({counts['unsorted']}), so the output cannot be "
                             "indexed", hint="sort it first (bcftools sort), or ask for no tbi output")
        index = None
        if out_vcf:
            for source in sources:
                if isinstance(source, OpenCravatSource):
                    source.final_types()
            header = _header(meta, columns, sources)
            with open(out_vcf, "wb") as final:
                final.write(bgzf_blocks(header.encode()))
                with open(body, "rb") as part:
                    shutil.copyfileobj(part, final, 4 << 20)
            if not counts["unsorted"]:
                started = time.monotonic()
                index = _index(step, out_vcf)
                log.info("merge: indexed in %.1f s", time.monotonic() - started)
    finally:
        if collecting:
            gc.enable()
        shutil.rmtree(workdir, ignore_errors=True)

    for source in sources:
        if source.report["unused_rows"]:
            log.warning("merge: %d rows of %s are for no ALT of the VCF", source.report["unused_rows"], source.path)
    if counts["unsorted"]:
        log.warning("merge: the VCF is not sorted (%s); no index was made", counts["unsorted"])
    report_keys = ("rows", "used_rows", "duplicate_rows", "unused_rows", "misses", "matched_alts",
                   "alts_with_values", "join")
    return {
        "records": counts["records"],
        "alts": counts["alts"],
        "annotated_records": counts["annotated_records"],
        "index": index,
        "processes": counts["processes"],
        "sources": {s.name: {"path": s.path, **{k: s.report[k] for k in report_keys}} for s in sources},
        "fields": {s.name: [f.id for f in s.fields] for s in sources},
    }


def _run_once(step, vcf_path: str, sources: list[Source], modes: dict, workdir: str) -> tuple[dict, str]:
    """One pass over the VCF with every source; returns the counts and the compressed body."""
    body_path = os.path.join(workdir, "body.vcf.gz")
    big = os.path.getsize(vcf_path) * (8 if is_gzipped(vcf_path) else 1) >= BIG_INPUT or any(
        os.path.getsize(s.path) >= BIG_INPUT for s in sources)
    here, groups = plan_processes(sources, big)
    body = table = NullSink()
    streams: list = []
    processes: list[JoinProcess] = []
    wants = {"fragments": bool(step.output.get("vcf")), "values": bool(step.output.get("tsv"))}
    try:
        for group in groups:
            processes.append(JoinProcess(group, vcf_path, modes, workdir, **wants))
            streams.append(iter(processes[-1]))
        records_in = join_records(here, vcf_path, modes, workdir, **wants, lines=True) if here else None
        joined = here + [s for g in groups for s in g]
        order = [joined.index(s) for s in sources]
        body = BgzfSink(body_path, separate_process=big) if step.output.get("vcf") else NullSink()
        tsv = step.output.get("tsv")
        table = NullSink() if not tsv else BgzfSink(tsv, separate_process=big) if tsv.endswith(".gz") else TextSink(tsv)
        table.write("\t".join(["chrom", "pos", "ref", "alt", *(f.id for s in sources for f in s.fields)]) + "\n")
        with open_text(vcf_path) as handle:
            read_vcf_header(handle, vcf_path)
            counts = _merge_records(records_in or record_lines(handle), vcf_path, sources, streams, order, body, table)
        body.close()
        table.close()
    except BaseException:
        for process in processes:
            process.stop()
        body.abort()
        table.abort()
        raise
    counts["processes"] = {"here": [s.name for s in here], "workers": [[s.name for s in g] for g in groups]}
    return counts, body_path


def _header(meta: list[str], columns: str, sources: list[Source]) -> str:
    lines = list(meta)
    for source in sources:
        for field in source.fields:
            description = _header_value(field.description)
            lines.append(f'##INFO=<ID={field.id},Number=A,Type={field.type},Description="{description}">')
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    names = ",".join(s.name for s in sources) or "none"
    lines.append(f'##gensvcCommand=<ID=merge_annotations,Version="{gensvc.__version__}",Date="{now}",Sources="{names}">')
    for source in sources:
        lines.append(source.header_record(source.report))
    lines.append(columns)
    return "\n".join(lines) + "\n"


def _index(step, staged_vcf: str) -> str:
    """The tabix index: into the ``tbi`` output if declared, else beside the final VCF."""
    import pysam

    if "tbi" in step.output:
        target = step.output["tbi"]
        pysam.tabix_index(staged_vcf, preset="vcf", index=target, force=True)
        return "tbi output"
    final = getattr(getattr(step, "call", None), "output", {}).get("vcf", staged_vcf)
    target = f"{final}.tbi"
    partial = os.path.join(os.path.dirname(os.path.abspath(target)), f".{os.path.basename(target)}.{os.getpid()}.partial")
    pysam.tabix_index(staged_vcf, preset="vcf", index=partial, force=True)
    os.replace(partial, target)
    return target


OPERATIONS = {"annotations": annotations}
