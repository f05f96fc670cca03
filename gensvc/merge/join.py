"""The join: what each source adds to each record of the VCF, in the VCF's order.

Every ALT of the VCF is keyed in each source's spelling (``Source.input_key``). The services
write their rows in the input's order, so the join is a merge: the next source row is usually
the one the next ALT wants. When it is not (a source skipped an ALT, collapsed a duplicate, or
wrote one elsewhere), the source is read ahead, up to a window of positions, into a small
buffer keyed by allele; rows left behind in it are counted as unused. Memory stays bounded
whatever the size of the inputs. Only if a source was out of order (rows left unused while ALTs
found nothing) is it joined again through an index of its rows' file offsets (one int per row,
not the rows).
"""

from __future__ import annotations

import os
import shutil

from gensvc.core.textfiles import is_gzipped, open_binary, open_text
from gensvc.merge.sources import Field, Source
from gensvc.merge.vcf_input import read_vcf_header

WINDOW_BP = 1000  # how far past an ALT's position a source is read ahead for it
MAX_PENDING = 200_000  # rows held in the read-ahead buffer, at most
EVICT_AT = 4096  # buffer size from which rows left behind are dropped as unused
RECENT = 4096  # rows kept after use, for duplicate ALTs (a source may collapse them)
_SNV_BASES = frozenset("ACGTN")


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
            with open_binary(path) as packed, open(plain, "wb") as unpacked:
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

