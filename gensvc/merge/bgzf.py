"""Where merge's text goes: BGZF files (the VCF, a .gz TSV), plain text, or nowhere.

Each sink takes text in chunks (``write``), then ``close`` (done) or ``abort`` (the run
failed: the caller removes the file). A large input's VCF body is compressed by a process of
its own instead (``workers.CompressorProcess``, the same three methods).
"""

from __future__ import annotations

import struct
import zlib


def bgzf_blocks(data: bytes, level: int = 6) -> bytes:
    """``data`` as BGZF blocks (no end-of-file marker): gzip members of at most 64 KiB, each
    with the BC extra field giving its size, as tabix needs to seek in the file."""
    out = bytearray()
    for start in range(0, len(data), 0xFF00):
        piece = data[start:start + 0xFF00]
        packer = zlib.compressobj(level, zlib.DEFLATED, -15)
        packed = packer.compress(piece) + packer.flush()
        out += b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
        out += struct.pack("<H", len(packed) + 25) + packed
        out += struct.pack("<II", zlib.crc32(piece) & 0xFFFFFFFF, len(piece))
    return bytes(out)


class BgzfSink:
    """Text written in chunks into a BGZF file, compressed in this process (pysam's writer)."""

    def __init__(self, path: str):
        import pysam

        self.path = path
        self.stream = pysam.BGZFile(path, "wb")

    def write(self, text: str) -> None:
        self.stream.write(text.encode())

    def close(self) -> None:
        self.stream.close()

    def abort(self) -> None:
        try:
            self.stream.close()
        except (OSError, ValueError):
            pass


class TextSink:
    """Plain text."""

    def __init__(self, path: str):
        self.handle = open(path, "w")
        self.write = self.handle.write

    def close(self) -> None:
        self.handle.close()

    def abort(self) -> None:
        self.handle.close()


class NullSink:
    """An output not asked for."""

    def write(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass
