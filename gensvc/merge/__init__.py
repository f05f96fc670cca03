"""merge annotations: the services' results joined onto the sample VCF, per ALT.

Inputs: the sample ``vcf`` and any of ``opencravat`` (the variant-level TSV report, with
``opencravat_status`` for its module versions), ``bravo`` (the ``bravo frequencies`` table) and
``cgi`` (CGI's alterations.tsv). Outputs: ``vcf`` (bgzipped), ``tbi`` (its tabix index) and
``tsv`` (one row per input ALT).

Every file is read as a stream of text lines, never held whole, so the join is fast and small.
Where each part lives:

- ``sources``: each service's file, its fields and its rows keyed in its own spelling;
- ``join``: what each source adds to each record, streamed in the VCF's order with a bounded
  read-ahead, or through an index of a source's rows when it is out of order;
- ``vcf_sink``: the records put together with those additions and written, then the header
  and the index; ``bgzf`` (compression in a thread) and ``escaping`` serve it;
- ``workers``: for a large input on more than one core, each source joined by a process of
  its own (length-prefixed frames on a pipe);
- here: the operation, which runs one pass, and again through an index for a source found out
  of order.
"""

from __future__ import annotations

import gc
import re
import logging
import os
import shutil
import tempfile
import time

from gensvc.core.textfiles import is_gzipped, open_text
from gensvc.errors import UsageError
from gensvc.merge.bgzf import BgzfSink, NullSink, TextSink
from gensvc.merge.escaping import escape, unescape
from gensvc.merge.join import join_records
from gensvc.merge.source_types import SOURCE_TYPES
from gensvc.merge.sources import CGI_DEFAULT, SOURCES, OpenCravatSource, Source
from gensvc.merge.vcf_input import read_vcf_header, record_lines
from gensvc.merge.vcf_sink import index_vcf, vcf_header, write_records, write_vcf
from gensvc.merge.workers import JoinProcess, plan_processes

__all__ = ["OPERATIONS", "annotations", "escape", "unescape", "CGI_DEFAULT", "SOURCES"]

log = logging.getLogger("gensvc.merge")

BIG_INPUT = 16 << 20  # from this size (a gzipped VCF: x8), each source is joined by a process of its own
_INFO_ID = re.compile(r"^##INFO=<ID=([^,>]+)")


def _single(step, name: str) -> str | None:
    path = step.input.get(name)
    if isinstance(path, list):
        if len(path) != 1:
            raise UsageError(f"merge takes one {name} input, not {len(path)}")
        path = path[0]
    return str(path) if path else None


def annotations(step, *, opencravat_columns=None, cgi_columns=None, cavatica_columns=None) -> dict:
    vcf_path = _single(step, "vcf")
    if vcf_path is None:
        raise UsageError("merge annotations needs a vcf input")
    if "tbi" in step.output and "vcf" not in step.output:
        raise UsageError("a tbi output needs a vcf output")
    wanted = {"opencravat": opencravat_columns, "cgi": cgi_columns, "cavatica": cavatica_columns}
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
            write_vcf(out_vcf, vcf_header(meta, columns, sources), body)
            if not counts["unsorted"]:
                started = time.monotonic()
                index = index_vcf(step, out_vcf)
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
        body = BgzfSink(body_path) if step.output.get("vcf") else NullSink()
        tsv = step.output.get("tsv")
        table = NullSink() if not tsv else BgzfSink(tsv) if tsv.endswith(".gz") else TextSink(tsv)
        table.write("\t".join(["chrom", "pos", "ref", "alt", *(f.id for s in sources for f in s.fields)]) + "\n")
        with open_text(vcf_path) as handle:
            read_vcf_header(handle, vcf_path)
            counts = write_records(records_in or record_lines(handle), vcf_path, sources, streams, order, body, table)
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


OPERATIONS = {"annotations": annotations}
