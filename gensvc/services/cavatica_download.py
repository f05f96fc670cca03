"""CAVATICA download: a task's output files, in parallel Range parts, resumable, checked.

Each file's ``download_info`` URL is read in parts of ``part_size`` bytes, ``parallel`` at
a time, each written at its offset into a transfer file under the state dir; the parts
done are noted beside it, so a rerun after a crash fetches only the rest. Every part must
come back as 206 with the Content-Range asked for and the file's size as the platform's
record has it; a server that ignores Range, or serves another size, is refused (the
official client silently writes a wrong file). When the storage's ETag is an MD5, the
whole file is checked against it. Only then does the file move to its output. A part whose
body breaks off (a connection lost or stalled mid-body) is asked for again from the byte it
stopped at, within the storage session's one budget of attempts and deadline for that part.

An output that is a list of files goes into outputs named ``<output_id>_<index>`` (index
from 0, in the task's order), one per element: every element named, or nothing is fetched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
from pathlib import Path

import requests
from filelock import FileLock

from gensvc.core.download import disposition_name
from gensvc.core.files import replace_json
from gensvc.core.jobids import server_job_id
from gensvc.core.progress import report
from gensvc.core.workers import run_each
from gensvc.errors import JobFailed, UnexpectedAnswer, UsageError
from gensvc.schema import read_receipt
from gensvc.services.cavatica_client import CavaticaClient, storage_session

log = logging.getLogger("gensvc.cavatica.download")

CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_ELEMENT = re.compile(r"^(.+)_([0-9]+)$")  # <output_id>_<index>: one element of a list output


def output_files(task: dict, output_id: str | None, where: str = "") -> list[tuple[str, str, str]]:
    """(output id, file id, file name) of every file among the task's outputs, or of one output;
    each file id checked before it goes into a URL."""
    outputs = task.get("outputs") or {}
    if output_id is not None and output_id not in outputs:
        raise UsageError(f"task {task.get('id')} has no output {output_id!r}",
                         hint=f"its outputs: {', '.join(sorted(outputs)) or 'none'}")
    chosen = {output_id: outputs[output_id]} if output_id is not None else outputs
    found = []
    for name, value in sorted(chosen.items()):
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and str(item.get("class", "")).lower() == "file" and item.get("path"):
                file_id = server_job_id(item["path"], service="cavatica", where=where, what="a file id")
                found.append((name, file_id, str(item.get("name") or file_id)))
    return found


class TransferState:
    """A file's bytes so far and the parts done, kept until the file is complete."""

    def __init__(self, state_dir, key: str):
        directory = Path(state_dir) / "transfers" / "cavatica-download"
        directory.mkdir(parents=True, exist_ok=True)
        self.data = directory / f"{key}.part"
        self.notes = directory / f"{key}.json"
        self.lock = FileLock(str(self.notes) + ".lock")

    def done(self, size: int, part_size: int) -> tuple[set[int], dict[int, int]]:
        """The parts done, and the bytes already written of parts begun (a rerun asks for the rest)."""
        try:
            notes = json.loads(self.notes.read_text())
        except (FileNotFoundError, ValueError):
            notes = None
        if not notes or notes.get("size") != size or notes.get("part_size") != part_size \
                or not self.data.exists() or self.data.stat().st_size != size:
            with open(self.data, "wb") as handle:  # start over: the bytes so far are not this layout's
                handle.truncate(size)
            return set(), {}
        partial = {int(k): int(v) for k, v in (notes.get("partial") or {}).items()}
        return set(notes.get("done", [])), partial

    def note(self, size: int, part_size: int, done: set[int], partial: dict[int, int]) -> None:
        replace_json(self.notes, {"size": size, "part_size": part_size, "done": sorted(done),
                                  "partial": {str(k): v for k, v in partial.items() if k not in done}}, indent=None)

    def forget(self) -> None:
        self.notes.unlink(missing_ok=True)
        self.data.unlink(missing_ok=True)


class Downloader:
    def __init__(self, step, client: CavaticaClient, *, part_size: int, parallel: int):
        self.step, self.client, self.part_size, self.parallel = step, client, part_size, parallel
        self.storage = storage_session(step.settings)
        self.parts_fetched = 0

    def fetch(self, file_id: str, target: str) -> dict:
        record = self.client.resource("GET", "file", "a file", file_id=file_id)
        size = record.get("size")
        if not isinstance(size, int) or size < 0:
            raise UnexpectedAnswer(f"cavatica's record of file {file_id} has no size", where=self.client.base)
        url = self.client.resource("GET", "download_info", "a download URL", file_id=file_id).get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise UnexpectedAnswer(f"cavatica gave no download URL for file {file_id}", where=self.client.base)
        key = hashlib.sha256(f"{self.client.base}\0{file_id}".encode()).hexdigest()[:32]
        state = TransferState(self.step.settings.state_dir, key)
        with state.lock:
            etag = self._transfer(url, size, state, record.get("name") or file_id)
            md5 = _md5(state.data)
            if etag and _MD5.match(etag) and etag != md5:
                state.forget()
                raise UnexpectedAnswer(f"{record.get('name')} arrived with MD5 {md5}, not the storage's {etag}",
                                       where=url.split("?")[0], hint="download it again")
            shutil.move(str(state.data), target)
            state.forget()
        return {"id": file_id, "name": record.get("name"), "size": size, "md5": md5, "path": target}

    def _transfer(self, url: str, size: int, state: TransferState, name: str) -> str | None:
        parts = [(n, start, min(start + self.part_size, size) - 1)
                 for n, start in enumerate(range(0, size, self.part_size))]
        done, partial = state.done(size, self.part_size)
        lock, etags = threading.Lock(), []
        todo = [p for p in parts if p[0] not in done]
        if done or partial:
            log.info("resuming the download of %s: %d of %d parts already here, %d begun", name, len(done),
                     len(parts), len(partial))

        def progress(number: int, written: int) -> None:  # noted as the bytes land: a rerun asks for the rest
            with lock:
                partial[number] = written
                state.note(size, self.part_size, done, partial)

        def one(part):
            number, first, last = part
            with self.storage.budget() as budget:  # a part's attempts, broken bodies included
                while True:
                    try:
                        etag = self._fetch_part(url, first, last, size, state.data, partial.get(number, 0),
                                                lambda written: progress(number, written))
                        break
                    except _BodyBroke as broke:
                        log.info("bytes %d-%d of %s broke off (%s); asking for the rest", first, last, name,
                                 type(broke.error).__name__)
                        self.storage.next_attempt(budget, broke.request, error=broke.error)
            with lock:
                done.add(number)
                partial.pop(number, None)
                etags.append(etag)
                self.parts_fetched += 1
                state.note(size, self.part_size, done, partial)
                bar.advance()

        with report(f"download of {name}", total=len(todo), unit="part") as bar:
            run_each(one, todo, workers=self.parallel)
        if not parts:  # an empty file: nothing to ask for
            return None
        return etags[0] if etags and len(set(etags)) == 1 else (etags[0] if etags else None)

    def _fetch_part(self, url: str, first: int, last: int, size: int, path: Path, already: int,
                    progress) -> str | None:
        """Bytes ``first``-``last`` into ``path``, from ``first + already`` on, written as they come."""
        where = url.split("?")[0]
        start = first + already
        if start > last:
            return None
        with self.storage.get(url, headers={"Range": f"bytes={start}-{last}"}, stream=True) as response:
            if response.status_code == 200:
                raise UnexpectedAnswer(f"the storage ignored the Range of bytes {start}-{last} and sent the whole file "
                                       f"({response.headers.get('Content-Length', '?')} bytes); refusing it", where=where,
                                       hint="the download URL is not a storage that serves parts; report it")
            if response.status_code != 206:
                raise UnexpectedAnswer(f"the storage answered HTTP {response.status_code} for bytes {start}-{last}",
                                       where=where, hint="run the download again: it resumes")
            disposition_name(response, "cavatica's storage")  # a path there: not the file's storage
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match and int(match[3]) != size:
                raise UnexpectedAnswer(f"the storage serves {match[3]} bytes, but the platform's record says {size}; "
                                       "refusing the file", where=where, hint="the file changed or is damaged; report it")
            if not match or (int(match[1]), int(match[2])) != (start, last):
                raise UnexpectedAnswer(f"the storage sent {response.headers.get('Content-Range') or 'no range'} "
                                       f"for bytes {start}-{last}; refusing it", where=where, hint="run the download again")
            written = already
            fd = os.open(path, os.O_WRONLY)
            try:
                for chunk in _chunks(response, response.request):
                    if first + written + len(chunk) > last + 1:
                        raise UnexpectedAnswer(f"the storage sent more than bytes {start}-{last}; refusing it",
                                               where=where, hint="run the download again")
                    os.pwrite(fd, chunk, first + written)
                    written += len(chunk)
                    progress(written)
            finally:
                os.close(fd)
            if first + written != last + 1:
                raise UnexpectedAnswer(f"the storage sent {written - already} of bytes {start}-{last}; refusing it",
                                       where=where, hint="run the download again: it resumes")
            return (response.headers.get("ETag") or "").strip().strip('"') or None


class _BodyBroke(Exception):
    """A part's body broke off mid-way: ``error``, on ``request``; the bytes so far are noted."""

    def __init__(self, error: Exception, request):
        super().__init__(str(error))
        self.error, self.request = error, request


def _chunks(response, request):
    """The body a megabyte at a time; a connection broken or stalled mid-body is _BodyBroke."""
    try:
        yield from response.iter_content(CHUNK)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        raise _BodyBroke(exc, request) from None


def _md5(path: Path) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            md5.update(block)
    return md5.hexdigest()


def download(step, *, output_id=None, part_size=8 << 20, parallel=4) -> dict:
    elements = _element_outputs(step)  # checked before anything is sent
    if output_id is None and elements:
        prefixes = sorted({prefix for prefix, _ in elements.values()})
        if len(prefixes) > 1:
            raise UsageError(f"outputs {', '.join(sorted(elements))} name elements of {len(prefixes)} list outputs "
                             f"({', '.join(prefixes)})", hint="download one list output per call, or give output_id")
        output_id = prefixes[0]
    receipt = read_receipt(step.input["receipt"], "cavatica")
    client = CavaticaClient(step, receipt["base_url"])
    task_id = receipt["job_id"]
    task = client.resource("GET", "task", "a task", task_id=task_id)
    status = task.get("status")
    if status in ("FAILED", "ABORTED"):
        raise JobFailed(f"cavatica task {task_id} ended {status}; it has no outputs", where=client.url("task", task_id=task_id),
                        hint="cavatica poll says why")
    if status != "COMPLETED":
        raise UsageError(f"cavatica task {task_id} is {status}, not COMPLETED", where=client.url("task", task_id=task_id),
                         hint="wait for it with cavatica poll, then download")
    chosen = output_files(task, output_id, client.url("task", task_id=task_id))
    targets = _list_targets(step, task, output_id, chosen, elements) if elements else _targets(step, chosen)
    downloader = Downloader(step, client, part_size=part_size, parallel=parallel)
    entries = [{**target, **downloader.fetch(target["id"], target["path"])} for target in targets]
    if "manifest" in step.output:
        replace_json(step.output["manifest"], {"service": "cavatica", "task_id": task_id, "files": entries})
    return {"job_id": task_id, "task_id": task_id, "files": len(entries), "parts_fetched": downloader.parts_fetched,
            "versions": {"cavatica_app": task.get("app")}}


def _element_outputs(step) -> dict[str, tuple[str, int]]:
    """The outputs named ``<output_id>_<index>``: name -> (output id, index)."""
    found = {}
    for name in step.output:
        match = _ELEMENT.match(name)
        if match and name not in ("file", "manifest"):
            found[name] = (match[1], int(match[2]))
    if found and "file" in step.output:
        raise UsageError(f"output file and outputs {', '.join(sorted(found))} were both given",
                         hint="give file for an output of one file, or <output_id>_<index> per element of a list")
    if not found and "file" not in step.output:
        raise UsageError("cavatica download needs an output for the files: file, or <output_id>_<index> per element",
                         hint="e.g. --output file=out.vcf, or --output chromosome_vcfs_0=a.vcf ...")
    return found


def _list_targets(step, task: dict, output_id: str, chosen: list[tuple[str, str, str]],
                  elements: dict[str, tuple[str, int]]) -> list[dict]:
    """One target per element of the list output, each named ``<output_id>_<index>``; all named, none extra."""
    others = sorted(name for name, (prefix, _) in elements.items() if prefix != output_id)
    if others:
        raise UsageError(f"outputs {', '.join(others)} do not name elements of output {output_id}",
                         hint=f"name them {output_id}_<index>")
    value = (task.get("outputs") or {}).get(output_id)
    listed = ", ".join(f"{output_id}_{n}={name}" for n, (_, _, name) in enumerate(chosen)) or "no files"
    if not isinstance(value, list):
        raise UsageError(f"output {output_id} of task {task.get('id')} is one file, not a list ({listed})",
                         hint="give it as --output file=PATH")
    by_index = {index: name for name, (_, index) in elements.items()}
    if sorted(by_index) != list(range(len(chosen))) or len(by_index) != len(elements):
        missing = [f"{output_id}_{n}" for n in range(len(chosen)) if n not in by_index]
        extra = sorted(name for name, (_, index) in elements.items() if index >= len(chosen))
        said = "; ".join(filter(None, [missing and f"not named: {', '.join(missing)}",
                                       extra and f"no such element: {', '.join(extra)}"]))
        raise UsageError(f"output {output_id} of task {task.get('id')} is a list of {len(chosen)} files ({listed}), "
                         f"but {len(elements)} outputs were named ({said})",
                         hint=f"name one output per element, {output_id}_0 to {output_id}_{len(chosen) - 1}")
    return [{"output": by_index[n], "output_id": output_id, "index": n, "id": file_id, "path": step.output[by_index[n]]}
            for n, (_, file_id, _) in enumerate(chosen)]


def _targets(step, chosen: list[tuple[str, str, str]]) -> list[dict]:
    """The output path of the one file chosen."""
    if len(chosen) != 1:
        names = ", ".join(sorted({out for out, _, _ in chosen})) or "none"
        listed = ", ".join(f"{out}_{n}={name}" for n, (out, _, name) in enumerate(chosen))
        hint = (f"a list output goes into one output per element: {listed}" if len({out for out, _, _ in chosen}) == 1
                else "give output_id naming an output that holds one file")
        raise UsageError(f"output file takes exactly one of the task's output files, but {len(chosen)} were chosen "
                         f"(outputs: {names})", hint=hint)
    out, file_id, _ = chosen[0]
    return [{"output": out, "id": file_id, "path": step.output["file"]}]
