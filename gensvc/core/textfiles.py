"""Users' input files as text, whether plain or gzip/bgzip-compressed."""

import gzip
import io
import zlib

from gensvc.errors import UsageError


def is_gzipped(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


class _CheckedGzip(gzip.GzipFile):
    """A gzip stream whose damage (cut short, corrupt) is one clear error naming the file,
    wherever in the file and whoever is reading it (gzip's own EOFError says neither)."""

    def _checked(self, read, *args):
        try:
            return read(*args)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise UsageError(f"input {self.name} is a damaged gzip file ({exc})",
                             hint="it was cut short or corrupted; copy or compress it again") from None

    def read(self, size=-1):
        return self._checked(super().read, size)

    def read1(self, size=-1):
        return self._checked(super().read1, size)

    def readinto(self, buffer):
        return self._checked(super().readinto, buffer)

    def readline(self, size=-1):
        return self._checked(super().readline, size)

    def peek(self, n):
        return self._checked(super().peek, n)


def open_binary(path: str):
    """A binary handle on ``path``'s content, decompressed if it is gzip or bgzip."""
    if is_gzipped(path):
        return _CheckedGzip(path, "rb")
    return open(path, "rb")


def open_text(path: str):
    """A text handle on ``path``, decompressing it if needed; undecodable bytes replaced."""
    if is_gzipped(path):
        return io.TextIOWrapper(_CheckedGzip(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")
