"""The VCF sink: the input's records with what the sources add, their TSV rows, the header
(written last, so that the types of OpenCRAVAT's columns are the ones all their values fit, and
so that it can carry the counts), and the tabix index.

Values are VCF-escaped (``escaping``); ALTs without a value get ``.``; a field empty for every
ALT of a record is left out, and a record no source has a value for is written unchanged.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone

import gensvc
from gensvc.errors import UsageError
from gensvc.merge.bgzf import NullSink, bgzf_blocks
from gensvc.merge.escaping import header_value
from gensvc.merge.sources import Source

FLUSH_LINES = 4096  # lines per write


def write_records(records_in, path: str, sources: list[Source], streams: list, order: list[int], body,
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


def vcf_header(meta: list[str], columns: str, sources: list[Source]) -> str:
    """The input's header lines, an ``##INFO`` line per added field, where merge and each source
    came from, and the ``#CHROM`` line."""
    lines = list(meta)
    for source in sources:
        for field in source.fields:
            description = header_value(field.description)
            lines.append(f'##INFO=<ID={field.id},Number=A,Type={field.type},Description="{description}">')
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    names = ",".join(s.name for s in sources) or "none"
    lines.append(f'##gensvcCommand=<ID=merge_annotations,Version="{gensvc.__version__}",Date="{now}",Sources="{names}">')
    for source in sources:
        lines.append(source.header_record(source.report))
    lines.append(columns)
    return "\n".join(lines) + "\n"


def write_vcf(path: str, header: str, body: str) -> None:
    """The header as BGZF blocks, then the body (already BGZF, with its end-of-file marker)."""
    with open(path, "wb") as final:
        final.write(bgzf_blocks(header.encode()))
        with open(body, "rb") as part:
            shutil.copyfileobj(part, final, 4 << 20)


def index_vcf(step, staged_vcf: str) -> str:
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
