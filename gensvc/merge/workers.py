"""Processes of their own, for a large input on more than one core: a source's join.

A join process sends what its sources add to each record as length-prefixed frames: a kind
byte, the payload's length (4 bytes, little-endian), then the payload as ``marshal`` wrote it
(the tuples ``join_records`` yields, a frame per batch ``join_batches`` makes). A value
travels as the string it is, so no byte of it (a control character, a line end) can be taken
for part of the protocol.
Both ends run the same interpreter (``sys.executable``), which is what ``marshal`` needs.
"""

from __future__ import annotations

import gc
import json
import marshal
import os
import struct
import subprocess
import sys

from gensvc.errors import UsageError
from gensvc.merge.join import join_batches
from gensvc.merge.source_types import SOURCE_TYPES
from gensvc.merge.sources import Source

FRAME = struct.Struct("<cI")  # kind, length of the payload that follows
RECORDS, END, REFUSED = b"R", b"E", b"X"  # a batch of records; the sources' counts; a UsageError


def plan_processes(sources: list[Source], big: bool, cpus: int | None = None) -> tuple[list, list[list]]:
    """Which sources this process joins itself, and which go to worker processes (in groups).

    A small run, or one on a single core, is all joined here. Otherwise each source is joined by
    a process of its own, and this one only puts the records together and writes them: the
    sources' rows are most of the work, and processes that each do one thing keep both cores
    busy (measured: bench/merge.py)."""
    if not big or not sources or (cpus or os.cpu_count() or 1) < 2:
        return list(sources), []
    return [], [[source] for source in sources]


def widen_pipe(pipe) -> None:
    """A pipe of 1 MiB rather than 64 KiB (Linux): the writer runs further ahead of the reader,
    so that the two processes work at the same time instead of in turn."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass


# ---- frames -------------------------------------------------------------------------------------


def write_frame(out, kind: bytes, payload) -> None:
    data = marshal.dumps(payload)
    out.write(FRAME.pack(kind, len(data)))
    out.write(data)


def read_frames(stream):
    """``(kind, payload)`` for each frame until the end of ``stream``; a frame cut short ends it
    (the writer died: its exit code says why)."""
    while len(head := stream.read(FRAME.size)) == FRAME.size:
        kind, length = FRAME.unpack(head)
        data = stream.read(length)
        if len(data) != length:
            return
        yield kind, marshal.loads(data)


# ---- a source's join ------------------------------------------------------------------------------


def join_worker(spec: str) -> None:
    """``join_records`` for some sources, in a process of its own: frames on standard output,
    RECORDS (a list of what the sources add to each record) until the VCF ends, then END with
    the sources' counts; or REFUSED with a UsageError's parts, and exit 2, for a source that is
    not what it should be."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the joining process stops this one
    gc.disable()  # as in annotations(): the join makes no cycles
    order = json.loads(spec)
    out = open(1, "wb", buffering=1 << 16, closefd=False)
    try:
        sources = [SOURCE_TYPES[s["name"]](s["path"], s["columns"], s["status"]) for s in order["sources"]]
        for batch in join_batches(sources, order["vcf"], order["modes"], order["workdir"], order["fragments"],
                                  order["values"]):
            write_frame(out, RECORDS, batch)
        write_frame(out, END, [s.report for s in sources])
        out.flush()
    except UsageError as exc:
        write_frame(out, REFUSED, (exc.what, exc.where, exc.hint))
        out.flush()
        sys.exit(2)
    except BrokenPipeError:  # the joining process is gone
        os._exit(0)


class JoinProcess:
    """``join_records`` of some sources, run by ``join_worker`` in a process of its own; iterated,
    what the sources add to each record, as ``join_records`` yields it."""

    def __init__(self, sources: list[Source], vcf_path: str, modes: dict, workdir: str,
                 fragments: bool = True, values: bool = True):
        self.sources = sources
        spec = json.dumps({"sources": [{"name": s.name, "path": s.path, "columns": s.wanted, "status": s.status_path}
                                       for s in sources],
                           "vcf": vcf_path, "modes": modes, "workdir": workdir, "fragments": fragments,
                           "values": values})
        code = "import sys; from gensvc.merge.workers import join_worker; join_worker(sys.argv[1])"
        self.process = subprocess.Popen([sys.executable, "-c", code, spec], stdout=subprocess.PIPE)
        widen_pipe(self.process.stdout)

    def __iter__(self):
        refused = reports = None
        for kind, payload in read_frames(self.process.stdout):
            if kind == RECORDS:
                yield from payload
            elif kind == END:
                reports = payload
            elif kind == REFUSED:
                refused = payload
        self.process.stdout.close()
        code = self.process.wait()
        if refused is not None:
            what, where, hint = refused
            raise UsageError(what, where=where, hint=hint)
        if code != 0 or reports is None:
            raise RuntimeError(f"the process joining {', '.join(s.path for s in self.sources)} failed (exit {code})")
        for source, report in zip(self.sources, reports):
            source.report = report
            source.learn(report)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
