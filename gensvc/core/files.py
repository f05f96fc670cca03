"""Files on disk: a file's SHA-256, and a whole file replaced at once.

An atomic write goes to a hidden temporary file beside the target and is renamed
over it, so a reader (or a run interrupted half-way) sees the old file or the new
one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

BLOCK = 1 << 20


def file_sha256(path) -> str:
    """The hex SHA-256 of a file's bytes, read a block at a time."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            sha.update(block)
    return sha.hexdigest()


def replace_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file beside it, then rename)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def replace_json(path, document, *, indent: int | None = 2) -> None:
    """``document`` as JSON (keys sorted, a final newline) written atomically to ``path``."""
    replace_text(path, json.dumps(document, indent=indent, sort_keys=True) + "\n")
