"""Users' input files as text, whether plain or gzip/bgzip-compressed."""

import gzip


def is_gzipped(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def open_text(path: str):
    """A text handle on ``path``, decompressing it if needed; undecodable bytes replaced."""
    if is_gzipped(path):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")
