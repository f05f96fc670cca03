"""Where merge's text goes: BGZF files (the VCF, a .gz TSV), plain text, or nowhere.

Each sink takes text in chunks (``write``), then ``close`` (done) or ``abort`` (the run
failed: the caller removes the file).

BGZF blocks are deflated with ISA-L (``isal``) at its level 2: about eight times zlib's
speed at level 6, for files about a third larger (measured on merge's output: 1.2 s rather
than 9 s for 700 MB of VCF text). ISA-L lets go of the GIL while it works, so a thread of the
writing process compresses while the records are put together, and no second process or
pipe is needed.
"""

from __future__ import annotations

import queue
import struct
import threading
import zlib

BLOCK_DATA = 0xFF00  # bytes of text per BGZF block, as htslib's bgzf.c
_HEADER = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
EOF_BLOCK = _HEADER + b"\x1b\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00"  # the empty block that ends a BGZF file
LEVEL = 2  # ISA-L's levels are 0-3; 2 is its default


def _deflate_raw():
    """A function giving raw deflate of bytes, and crc32: ISA-L's when installed, else zlib's."""
    try:
        from isal import isal_zlib
    except ImportError:  # gensvc depends on isal; a hand-made environment without it still works
        def packed(piece: bytes) -> bytes:
            packer = zlib.compressobj(6, zlib.DEFLATED, -15)
            return packer.compress(piece) + packer.flush()

        return packed, zlib.crc32
    return (lambda piece: isal_zlib.compress(piece, LEVEL, -15)), isal_zlib.crc32


def bgzf_blocks(data: bytes, deflate=None) -> bytes:
    """``data`` as BGZF blocks (no end-of-file marker): gzip members of at most 64 KiB, each
    with the BC extra field giving its size, as tabix needs to seek in the file."""
    packed_of, crc32 = deflate or _deflate_raw()
    out = bytearray()
    for start in range(0, len(data), BLOCK_DATA):
        piece = data[start:start + BLOCK_DATA]
        packed = packed_of(piece)
        if len(packed) + 25 > 0x10000:  # text that does not compress: stored, which always fits
            packer = zlib.compressobj(0, zlib.DEFLATED, -15)
            packed = packer.compress(piece) + packer.flush()
        out += _HEADER
        out += struct.pack("<H", len(packed) + 25) + packed
        out += struct.pack("<II", crc32(piece) & 0xFFFFFFFF, len(piece))
    return bytes(out)


class BgzfSink:
    """Text written in chunks into a BGZF file, compressed by a thread of this process.

    Chunks are cut into whole blocks; the rest of a chunk waits for the next one, so that
    every block but the last holds BLOCK_DATA bytes, as bgzip writes them."""

    def __init__(self, path: str):
        self.path = path
        self.handle = open(path, "wb")
        self.deflate = _deflate_raw()
        self.rest = b""
        self.failure: BaseException | None = None
        self.queue: queue.Queue = queue.Queue(maxsize=2)  # chunks of a few MB waiting: memory stays small
        self.thread = threading.Thread(target=self._compress, name="gensvc-bgzf", daemon=True)
        self.thread.start()

    def _compress(self) -> None:
        try:
            while (data := self.queue.get()) is not None:
                self.handle.write(bgzf_blocks(data, self.deflate))
        except BaseException as exc:  # a full disk, say: drain, report at close
            self.failure = exc
            while self.queue.get() is not None:
                pass

    def write(self, text: str) -> None:
        data = self.rest + text.encode()
        whole = len(data) - len(data) % BLOCK_DATA
        self.rest = data[whole:]
        if whole:
            self.queue.put(data[:whole])

    def close(self) -> None:
        if self.rest:
            self.queue.put(self.rest)
            self.rest = b""
        self.queue.put(None)
        self.thread.join()
        if self.failure is None:
            try:
                self.handle.write(EOF_BLOCK)
            except OSError as exc:
                self.failure = exc
        self.handle.close()
        if self.failure is not None:
            raise OSError(f"writing {self.path} failed: {self.failure}")

    def abort(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self.handle.close()


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
