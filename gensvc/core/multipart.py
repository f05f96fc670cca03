"""A multipart/form-data body read from disk as it is sent, never held in memory.

``MultipartFile`` is what ``requests`` streams: it has a length (so the request carries
Content-Length, not chunks, which every server reads) and ``read``. Form fields come
first, the file last, as the services expect. A session that sends the request again
(a 429 or 503 answered before the server took it) reads the body again from its start:
once a read has reported the end, the next read begins anew.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class MultipartFile:
    def __init__(self, fields: dict[str, str], field_name: str, path, filename: str,
                 content_type: str = "application/octet-stream"):
        self.path = Path(path)
        self.boundary = f"gensvc-{secrets.token_hex(16)}"
        head = b"".join(self._field(name, value) for name, value in fields.items())
        head += (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{_quoted(field_name)}\"; "
                 f"filename=\"{_quoted(filename)}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
        self.head = head
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.size = os.path.getsize(self.path)
        self._handle = None
        self._stage = 0  # 0 head next, 1 in the file, 2 tail next, 4 all given, 3 end reported

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _field(self, name: str, value: str) -> bytes:
        return (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{_quoted(name)}\"\r\n\r\n"
                f"{value}\r\n").encode()

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self):  # what makes requests treat it as a stream
        while True:
            block = self.read(1 << 16)
            if not block:
                return
            yield block

    def read(self, size: int = -1) -> bytes:
        if self._stage == 3:  # the end was reported: the request is being sent again
            self._stage = 0
        if size is None or size < 0:
            size = len(self)
        out = b""
        while len(out) < size:
            if self._stage == 0:
                out += self.head
                self._handle = open(self.path, "rb")
                self._stage = 1
            elif self._stage == 1:
                block = self._handle.read(size - len(out))
                if block:
                    out += block
                    continue
                self._handle.close()
                self._stage = 2
            elif self._stage == 2:
                out += self.tail
                self._stage = 4
            else:  # 4: everything was given; the next read reports the end
                if not out:
                    self._stage = 3
                break
        return out

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _quoted(text: str) -> str:
    # a name with a quote or a line break cannot break out of its header
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")
