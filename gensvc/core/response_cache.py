"""Answers of read-only queries kept on disk, so that a rerun asks the service nothing again.

An entry is one query's JSON answer, gzipped, in ``<directory>/<key[:2]>/<key>.json.gz``; the
key is a hash of the namespace (what names the data behind the service: its server, dataset
and API version, so another version is never answered from this one) and the query (path and
parameters). Each entry is written whole and renamed into place, so a reader sees an entry
whole or not at all, and runs in parallel can share the directory. Reading an entry marks it
used (its mtime); once the entries pass ``max_bytes``, the least recently used go first.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger("gensvc.cache")

SUFFIX = ".json.gz"


class ResponseCache:
    def __init__(self, directory: Path, namespace: dict, max_bytes: int):
        self.directory = Path(directory)
        self.namespace = json.loads(json.dumps(namespace, sort_keys=True))
        self.max_bytes = int(max_bytes)
        self.hits = self.stored = 0
        self._size: int | None = None  # bytes of all entries, counted once, then kept up to date

    def key(self, path: str, params: dict | None) -> str:
        query = {"namespace": self.namespace, "path": path, "params": _canonical(params or {})}
        return hashlib.sha256(json.dumps(query, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def _entry(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}{SUFFIX}"

    def get(self, path: str, params: dict | None):
        """The answer kept for this query, or None."""
        entry = self._entry(self.key(path, params))
        try:
            with gzip.open(entry, "rb") as handle:
                body = json.loads(handle.read())
        except FileNotFoundError:
            return None
        except (OSError, EOFError, ValueError):  # damaged (a disk error, a hand edit): asked for again
            log.warning("cache entry %s is unreadable; asking the service again", entry)
            entry.unlink(missing_ok=True)
            return None
        try:
            os.utime(entry)  # used now: the last to go
        except OSError:
            pass
        self.hits += 1
        return body

    def put(self, path: str, params: dict | None, body) -> None:
        data = gzip.compress(json.dumps(body, separators=(",", ":")).encode(), compresslevel=6, mtime=0)
        if len(data) > self.max_bytes:
            return  # would push out everything else and still not fit
        entry = self._entry(self.key(path, params))
        entry.parent.mkdir(parents=True, exist_ok=True)
        partial = entry.with_name(f".{entry.name}.{os.getpid()}.partial")
        try:
            partial.write_bytes(data)
            replaced = entry.stat().st_size if entry.exists() else 0
            os.replace(partial, entry)
        except OSError as exc:  # a full or read-only disk: the answer is still used, only not kept
            partial.unlink(missing_ok=True)
            log.warning("cannot keep an answer in the cache %s (%s)", self.directory, exc.strerror or exc)
            return
        self.stored += 1
        self._size = self.size() if self._size is None else self._size + len(data) - replaced
        if self._size > self.max_bytes:
            self.trim()

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last used, bytes, path) of every entry."""
        found = []
        for folder in self.directory.glob("??"):
            for entry in folder.glob(f"*{SUFFIX}"):
                try:
                    info = entry.stat()
                except FileNotFoundError:  # another run's trim took it
                    continue
                found.append((info.st_mtime, info.st_size, entry))
        return found

    def size(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def trim(self) -> None:
        """The least recently used entries removed until the rest fill at most 90 % of the
        bound (room for more before the next trim)."""
        entries = sorted(self.entries(), key=lambda item: item[0])
        total = sum(size for _, size, _ in entries)
        target = self.max_bytes * 0.9
        for _, size, entry in entries:
            if total <= target:
                break
            entry.unlink(missing_ok=True)
            total -= size
        self._size = total


def _canonical(params: dict) -> dict:
    # a value repeats a key as a list; the order of keys is not the query's
    return {str(k): [str(x) for x in v] if isinstance(v, (list, tuple)) else str(v) for k, v in sorted(params.items())}
