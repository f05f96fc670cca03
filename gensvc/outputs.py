"""Where an operation's outputs go, and how they get there.

A regular file (or a path not there yet) is written beside its final path and renamed into
place only when the whole operation succeeded, so an interrupted run leaves no half file. A
symlink is followed: its target is what is renamed into place, so the link survives. A stream
cannot be renamed over: ``-`` (standard output), a FIFO, a character device, or a link to an
open descriptor (``/dev/stdout``) gets a temporary file that is copied into it once everything
succeeded. Every output is checked before the first request, so an output that cannot be
written costs no network work.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gensvc.core.files import replace_json
from gensvc.errors import GensvcError, UsageError

STDOUT = "-"

# /proc/<pid>/fd/<n>: what /dev/stdout, /dev/fd/<n> and /proc/self/fd/<n> lead to
_DESCRIPTOR = re.compile(r"^/proc/(\d+)/fd/(\d+)$")


@dataclass
class Output:
    name: str
    path: str  # as the user gave it
    final: Path | None = None  # the regular file renamed into place (a link's target); None for a stream
    descriptor: int | None = None  # a stream that is one of this process's open descriptors
    index: int | None = None  # its place in a list of files given under one name

    @property
    def key(self) -> str:
        return self.name if self.index is None else f"{self.name}[{self.index}]"

    @property
    def stream(self) -> bool:
        return self.final is None

    @property
    def provenance(self) -> Path | None:
        """Where the provenance record goes; None for a stream (it goes to the log)."""
        return None if self.final is None else Path(f"{self.final}.prov.json")


def plan_outputs(outputs: dict) -> list[Output]:
    """Each output classified and checked; refuses, before anything is sent, one that cannot be written."""
    plans = []
    for name, paths in outputs.items():
        if isinstance(paths, list):  # one name, several files (one per input, say)
            plans += [_plan(name, str(path), index) for index, path in enumerate(paths)]
        else:
            plans.append(_plan(name, str(paths)))
    finals: dict = {}
    for plan in plans:
        if plan.final is not None and finals.setdefault(plan.final, plan) is not plan:
            raise UsageError(f"outputs {finals[plan.final].key} and {plan.key} are the same file {plan.path}",
                             hint="give each output a path of its own")
    to_stdout = [p.key for p in plans if p.descriptor == 1]
    if len(to_stdout) > 1:
        raise UsageError(f"outputs {', '.join(to_stdout)} all go to standard output", hint="give at most one of them as -")
    return plans


def _plan(name: str, path: str, index: int | None = None) -> Output:
    output = _classify(name, path)
    output.index = index
    return output


def _classify(name: str, path: str) -> Output:
    if path == STDOUT:
        return Output(name, path, descriptor=1)
    descriptor = _own_descriptor(path)
    if descriptor is not None:
        try:
            os.fstat(descriptor)
        except OSError:
            raise UsageError(f"output {name} {path} names descriptor {descriptor}, which is not open") from None
        return Output(name, path, descriptor=descriptor)
    try:
        info = os.stat(path)  # follows links: what a write would reach
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UsageError(f"output {name} {path} cannot be written: {exc.strerror}",
                         hint="choose another output path") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UsageError(f"output {name} {path} is a directory", hint="give a file path")
    if info is not None and not stat.S_ISREG(info.st_mode):  # a FIFO, a device, a socket
        if not os.access(path, os.W_OK):
            raise UsageError(f"output {name} {path} cannot be written (permission denied)")
        return Output(name, path)
    final = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    _check_directory(name, path, final)
    return Output(name, path, final=final)


def _own_descriptor(path: str) -> int | None:
    """N when ``path`` leads, through links, to /proc/<this process>/fd/N (/dev/stdout does).

    Such an output is written to the descriptor itself: reopening it would truncate a file
    the shell opened for appending, and renaming over it would break the link."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        current = os.path.join(os.path.realpath(os.path.dirname(current)), os.path.basename(current))
        match = _DESCRIPTOR.match(current)
        if match:
            return int(match.group(2)) if int(match.group(1)) == os.getpid() else None
        if not os.path.islink(current):
            return None
        current = os.path.join(os.path.dirname(current), os.readlink(current))
    return None


def _check_directory(name: str, path: str, final: Path) -> None:
    """The final file's directory exists (made if missing) and takes new files: a probe
    file is the only sure test (root passes every permission check; a read-only mount fails it)."""
    directory = final.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"output {name} {path} cannot be written: {directory} is not a directory",
                         hint="choose another output path") from None
    except OSError as exc:
        raise UsageError(f"output {name} {path} cannot be written: cannot make its directory {directory} ({exc.strerror})",
                         hint="choose another output path or fix the permissions") from None
    try:
        handle, probe = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".probe", dir=directory)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"output {name} {path} cannot be written: its directory {directory} takes no new files ({exc.strerror})",
                         hint="choose another output path or fix the directory's permissions") from None


@contextmanager
def staged_outputs(plans: list[Output]):
    """Yield, per output name, the path the operation writes; on success, rename regular
    files into place and copy streams out. Nothing is left behind either way, and an error
    names the user's paths, never the staged ones."""
    token = uuid.uuid4().hex[:8]
    scratch = None
    staged: dict[str, str] = {}
    for plan in plans:
        if plan.stream:
            scratch = scratch or tempfile.mkdtemp(prefix="gensvc-stream-")
            # the user's name (and so its suffixes: the format) kept, "-" excepted
            base = "stdout" if plan.path == STDOUT else os.path.basename(plan.path)
            staged[plan.key] = os.path.join(scratch, f"{token}-{plan.index or 0}-{base}")
        else:
            staged[plan.key] = str(plan.final.with_name(f".{plan.final.name}.{token}.partial{''.join(plan.final.suffixes[-2:])}"))
    committed = False
    try:
        yield _by_name(plans, staged)
        for plan in plans:
            if not os.path.exists(staged[plan.key]):
                raise UsageError(f"operation wrote no {plan.name} output", where=plan.path)
        for plan in plans:  # streams first: they are what can still fail (a reader gone)
            if plan.stream:
                _copy_into_stream(staged[plan.key], plan)
        for plan in plans:
            if not plan.stream:
                os.replace(staged[plan.key], plan.final)
        committed = True
    except (GensvcError, OSError) as exc:
        _name_users_paths(exc, plans, staged)
        raise
    finally:
        for path in staged.values():
            Path(path).unlink(missing_ok=True)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        if not committed:
            for plan in plans:
                if plan.stream and plan.descriptor is None:
                    _release_reader(plan.path)


def _by_name(plans: list[Output], staged: dict) -> dict:
    """What the operation gets: per name a path, or a list of paths for a list of files."""
    named: dict = {}
    for plan in plans:
        if plan.index is None:
            named[plan.name] = staged[plan.key]
        else:
            named.setdefault(plan.name, []).append(staged[plan.key])
    return named


def _copy_into_stream(source: str, plan: Output) -> None:
    try:
        with open(source, "rb") as data:
            if plan.descriptor is not None:
                with open(plan.descriptor, "wb", closefd=False) as sink:
                    shutil.copyfileobj(data, sink, 1 << 20)
            else:
                with open(plan.path, "wb") as sink:  # a FIFO waits here for its reader
                    shutil.copyfileobj(data, sink, 1 << 20)
    except BrokenPipeError:
        raise UsageError(f"output {plan.name} {plan.path}: its reader stopped reading before the end; the output is incomplete",
                         hint="let the reader take the whole output, or write it to a file") from None


def _release_reader(path: str) -> None:
    """A reader waiting on a FIFO gets end-of-file instead of waiting for ever; with no
    reader, nothing happens (a non-blocking open fails at once)."""
    try:
        if stat.S_ISFIFO(os.stat(path).st_mode):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def _name_users_paths(exc: BaseException, plans: list[Output], staged: dict) -> None:
    swaps = [(staged[p.key], p.path) for p in plans]
    swaps += [(os.path.basename(staged[p.key]), os.path.basename(p.path)) for p in plans]

    def swapped(text):
        if not isinstance(text, str):
            return text
        for old, new in swaps:
            text = text.replace(old, new)
        return text

    if isinstance(exc, GensvcError):
        exc.what, exc.where, exc.hint = swapped(exc.what), swapped(exc.where), swapped(exc.hint)
    else:
        exc.filename, exc.filename2 = swapped(exc.filename), swapped(exc.filename2)


def write_provenance(plans: list[Output], record: dict, log) -> None:
    """``<output>.prov.json`` beside each regular output (beside a link's target); a stream's record goes to the log."""
    for plan in plans:
        document = {**record, "output": plan.name, **({} if plan.index is None else {"index": plan.index})}
        if plan.provenance is None:
            log.info("provenance of output %s (%s): %s", plan.name, plan.path, json.dumps(document, sort_keys=True))
        else:
            replace_json(plan.provenance, document)
