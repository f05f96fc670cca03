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
from itertools import chain

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

    The source's rows come a batch at a time (two lists, keys and payloads); ``at`` is the
    head row. Every row read ends up counted once: used (it gave an ALT its values),
    duplicate (the same allele as a row just used) or unused (no ALT of the VCF wanted it)."""

    def __init__(self, source: Source):
        self.source = source
        self.batches = source.row_batches()
        self.keys: list = []
        self.payloads: list = []
        self.at = 0
        self._refill()
        self.pending: dict[str, tuple] = {}
        self.recent: dict[str, tuple] = {}
        self.older: dict[str, tuple] = {}
        self.used = self.duplicates = self.unused = self.misses = 0

    def _refill(self) -> None:
        """The next batch of rows, when the head has gone past the last one."""
        while self.at >= len(self.keys):
            batch = next(self.batches, None)
            if batch is None:
                self.keys, self.payloads, self.at = [], [], 0
                return
            self.keys, self.payloads, self.at = batch[0], batch[1], 0

    def _extend(self, wanted: int) -> None:
        """At least ``wanted`` rows from the head on in the lists (fewer at the source's end)."""
        keys, payloads = self.keys[self.at:], self.payloads[self.at:]
        while len(keys) < wanted:
            batch = next(self.batches, None)
            if batch is None:
                break
            keys += batch[0]
            payloads += batch[1]
        self.keys, self.payloads, self.at = keys, payloads, 0

    def lookup_many(self, wanted: list) -> list:
        """``lookup`` of each key in turn; at once when the source's next rows are those keys,
        as they are when a service wrote a row for each ALT, in order (the usual case)."""
        count = len(wanted)
        if self.at + count > len(self.keys):
            self._extend(count)
        at = self.at
        if self.keys[at:at + count] == wanted:
            found = self.payloads[at:at + count]
            self.at = at + count
            if self.at >= len(self.keys):
                self._refill()
            self.used += count
            recent = self.recent
            recent.update(zip(wanted, found))
            if len(recent) >= RECENT:
                self.older, self.recent = recent, {}
            return found
        lookup = self.lookup
        return [lookup(key) if key is not None else None for key in wanted]

    def lookup(self, key: str):
        at = self.at
        if at < len(self.keys) and self.keys[at] == key:
            payload = self.payloads[at]
            self._advance()
            self._keep(key, payload)
            return payload
        return self._lookup_ahead(key)

    def _advance(self) -> None:
        """The head moves one row on."""
        self.at += 1
        if self.at >= len(self.keys):
            self._refill()

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
        while self.at < len(self.keys) and len(pending) < MAX_PENDING:
            head_key = self.keys[self.at]
            if head_key == key:
                payload = self.payloads[self.at]
                self._advance()
                self._keep(key, payload)
                return payload
            head_chrom, head_pos = _where(head_key)
            if head_chrom != chrom or head_pos > pos + WINDOW_BP:
                break  # the source is past this ALT: it has no row for it
            if head_key in pending or head_key in self.recent or head_key in self.older:
                self.duplicates += 1
            else:
                pending[head_key] = (self.payloads[self.at], head_chrom, head_pos)
            self._advance()
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
        self.unused += len(self.keys) - self.at + sum(len(keys) for keys, _ in self.batches)
        self.keys, self.payloads, self.at = [], [], 0
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

    def lookup_many(self, wanted: list) -> list:
        lookup = self.lookup
        return [lookup(key) if key is not None else None for key in wanted]

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
    return chain.from_iterable(join_batches(sources, vcf_path, modes, workdir, fragments, values, lines))


def join_batches(sources: list[Source], vcf_path: str, modes: dict, workdir: str = ".",
                 fragments: bool = True, values: bool = True, lines: bool = False):
    """``join_records``, a list of records at a time (128 KiB of the VCF's lines).

    A batch's ALTs are keyed first, then looked up in each source at once (``lookup_many``:
    one comparison of lists when the source's rows are those ALTs, in order), and only then
    is each record's tuple put together."""
    for source in sources:
        source.make_fragments = fragments
    joins = [StreamJoin(s) if modes[s.name] == "stream" else IndexJoin(s, workdir) for s in sources]
    matched, valued = [0] * len(sources), [0] * len(sources)
    prefixes: list[dict] = [{} for _ in sources]
    nothing = (None,) * len(sources)
    with open_text(vcf_path) as handle:
        read_vcf_header(handle, vcf_path)
        while batch := handle.readlines(1 << 17):
            if lines:
                batch = [line.rstrip("\n") for line in batch if line != "\n"]  # as record_lines does
                split = [line.split("\t", 8) for line in batch]
            else:
                split = [line.split("\t", 5) for line in batch if line != "\n"]
            # per record: None (nothing to look up), a str (an SNV: POS, REF, ALT as every
            # source spells them after its CHROM), or the list of its ALTs
            shapes = []
            for parts in split:
                if len(parts) < 5:
                    shapes.append(None)  # the joining process refuses this record
                    continue
                ref, alts = parts[3], parts[4]
                if "," in alts:
                    shapes.append(alts.split(","))
                elif ref in _SNV_BASES and alts in _SNV_BASES and ref != alts:
                    shapes.append(f"{parts[1]}\t{ref}\t{alts}")
                elif alts == ".":
                    shapes.append(None)
                else:
                    shapes.append([alts])
            per_source = []
            for n, (source, join) in enumerate(zip(sources, joins)):
                chrom_prefix, keyer, known = source.chrom_prefix, source.input_key, prefixes[n]
                keys = []
                for parts, shape in zip(split, shapes):
                    if shape is None:
                        continue
                    if shape.__class__ is str:
                        chrom = parts[0]
                        prefix = known.get(chrom)
                        if prefix is None:
                            prefix = known[chrom] = chrom_prefix(chrom)
                        keys.append(prefix + shape)
                    else:
                        chrom, pos, ref = parts[0], parts[1], parts[3]
                        keys += [keyer(chrom, pos, ref, alt) for alt in shape]
                found = join.lookup_many(keys) if keys else []
                per_source.append(found)
                hits = [p for p in found if p is not None]
                matched[n] += len(hits)
                empty = source.empty_raw
                valued[n] += sum(1 for p in hits if p[2] != empty)
            out = []
            cursors = [0] * len(sources)
            for parts, shape in zip(split, shapes):
                if shape is None:
                    out.append(nothing)
                    continue
                added = []
                if shape.__class__ is str or len(shape) == 1:
                    for n, found in enumerate(per_source):
                        payload = found[cursors[n]]
                        cursors[n] += 1
                        added.append(None if payload is None else (payload[0], (payload[2],) if values else None))
                else:
                    width = len(shape)
                    for n, (found, source) in enumerate(zip(per_source, sources)):
                        at = cursors[n]
                        payloads = found[at:at + width]
                        cursors[n] = at + width
                        if payloads.count(None) == width:
                            added.append(None)
                            continue
                        empty = source.empty_raw
                        added.append((_multi_fragment(source.fields, payloads) if fragments else "",
                                      [p[2] if p is not None else empty for p in payloads] if values else None))
                out.append(tuple(added))
            if lines:
                yield list(zip(batch, split, out))
            else:
                yield out
    for n, (source, join) in enumerate(zip(sources, joins)):
        source.report = {**join.finish(), "matched_alts": matched[n], "alts_with_values": valued[n],
                         "out_of_order": join.out_of_order, **source.worker_report()}
