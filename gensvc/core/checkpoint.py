"""What a long paged fetch has read so far, kept on disk so that a rerun resumes it.

A checkpoint lives in ``<state_dir>/checkpoints/<service>/<key>/``, the key a hash of the
request (as the submission journal's, see receipts.idempotency_key). It holds two files:

- ``records.jsonl``: every record read so far, one JSON line each, in the order read;
- ``state.json``: how many bytes of that file count, and the caller's ``position`` (what it
  has finished and where to go on), replaced atomically.

Records are appended, then ``commit`` flushes them to disk and writes the state: a run that
stops between the two leaves bytes the state does not count, and the next open cuts them
off. So a rerun sees exactly the records of its last commit, and what to read next.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from gensvc.core.receipts import now_iso

log = logging.getLogger("gensvc.checkpoint")

FORMAT = 1  # of the files; a checkpoint of another format is started afresh


def checkpoint_dir(state_dir: Path, service: str) -> Path:
    return Path(state_dir) / "checkpoints" / service


class Checkpoint:
    """The records and position of one request; use it as a context manager.

    ``position`` is None for a fresh start, else the dict the last ``commit`` was given.
    While open, the checkpoint is locked: a second run of the same request waits for the
    first, then resumes from its work (or, once the first discarded it, starts afresh).
    """

    def __init__(self, state_dir: Path, service: str, key: str, request: dict):
        self.state_dir = Path(state_dir)
        self.directory = checkpoint_dir(state_dir, service) / key
        self.request = json.loads(json.dumps(request))  # as the state file gives it back
        self.position: dict | None = None
        self.count = 0  # records committed, and appended since
        self._records = None
        self._lock_path = self.directory.with_name(f"{key}.lock")
        self._lock_fd: int | None = None

    @property
    def records_path(self) -> Path:
        return self.directory / "records.jsonl"

    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    @property
    def size(self) -> int:
        """Bytes of records appended so far: where the next record will start."""
        return self._records.tell()

    def __enter__(self) -> "Checkpoint":
        self._lock()
        try:
            self._open()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._records is not None:
            self._records.close()
            self._records = None
        self._unlock()

    def _lock(self) -> None:
        # flock on a file beside the directory; ``discard`` removes that file while it
        # holds the lock, so a lock taken on a file no longer at the path is taken again
        while True:
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:  # a run that discarded its checkpoint removed the folder
                self._lock_path.parent.mkdir(parents=True, exist_ok=True)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another run of the same request (lock %s)", self._lock_path)
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(self._lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                self._lock_fd = fd
                return
            os.close(fd)

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def _open(self) -> None:
        self.directory.mkdir(exist_ok=True)
        for scratch in self.directory.glob(".sort-*"):  # left by a run killed while sorting
            shutil.rmtree(scratch, ignore_errors=True)
        state = self._read_state()
        size, count = (state["bytes"], state["records"]) if state else (0, 0)
        self._records = open(self.records_path, "ab+")
        if self._records.seek(0, os.SEEK_END) < size:
            log.warning("checkpoint %s lost records; starting afresh", self.directory)
            state, size, count = None, 0, 0
        self._records.truncate(size)  # what a stopped run appended after its last commit
        self._records.seek(size)
        self.count = count
        self.position = state["position"] if state else None

    def _read_state(self) -> dict | None:
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("checkpoint %s is unreadable; starting afresh", self.state_path)
            return None
        if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("request") != self.request:
            log.warning("checkpoint %s is of another request or format; starting afresh", self.directory)
            return None
        return state

    def append(self, records: Iterable[dict]) -> None:
        lines = [json.dumps(record, separators=(",", ":")) + "\n" for record in records]
        self._records.write("".join(lines).encode())
        self.count += len(lines)

    def commit(self, position: dict) -> None:
        """Make what was appended count, and remember ``position`` with it."""
        self._records.flush()
        os.fsync(self._records.fileno())  # records on disk before the state that counts them
        size = self._records.tell()
        state = {"format": FORMAT, "request": self.request, "bytes": size, "records": self.count,
                 "position": position, "updated": now_iso()}
        tmp = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.state_path)
        self.position = position

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[dict]:
        """The records between two byte offsets (``size`` values), by default all of them."""
        self._records.flush()
        stop = self.size if stop is None else stop
        with open(self.records_path, "rb") as handle:
            handle.seek(start)
            while handle.tell() < stop:
                line = handle.readline()
                if not line:
                    return
                yield json.loads(line)

    def discard(self) -> None:
        """Remove the checkpoint (its request is done), under the lock, so never from under
        another run resuming it; with its lock file and the folders it leaves empty."""
        held = self._lock_fd is not None
        if not held:
            self._lock()
        try:
            shutil.rmtree(self.directory, ignore_errors=True)
            self._lock_path.unlink(missing_ok=True)
        finally:
            if not held:
                self._unlock()
        folder = self.directory.parent
        while folder != self.state_dir.parent and folder.is_relative_to(self.state_dir):
            try:
                folder.rmdir()
            except OSError:  # not empty: others' state
                break
            folder = folder.parent
