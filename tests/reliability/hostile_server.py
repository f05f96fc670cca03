"""A loopback server that answers exactly the hostile thing a test names.

It knows nothing of gensvc or its emulators (shared code could hide a shared mistake):
``routes`` map ``(METHOD, path)`` (a path ending in ``*`` is a prefix) to an ``Answer``, or
to a function of the ``Seen`` request giving one. An answer can lie about its length, stream
for ever, or come as a chunked body without any length. Every request is kept in ``seen``.
"""

from __future__ import annotations

import functools
import io
import json
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable
from urllib.parse import parse_qs, urlsplit

HTML_PAGE = "<!DOCTYPE html>\n<html><head><title>Site maintenance</title></head>\n<body><h1>Back soon</h1></body></html>\n"


@dataclass
class Answer:
    """``body`` as given; ``stream``: chunks sent after it without a Content-Length (the body
    ends when the stream does, or never); ``length``: the Content-Length to declare instead
    of the body's own (the connection closes after the body, whatever it declared)."""

    status: int = 200
    body: bytes | str = b""
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    stream: Callable[[], Iterable[bytes]] | None = None
    length: int | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


def as_json(document, status: int = 200, **headers) -> Answer:
    return Answer(status, json.dumps(document), headers=headers)


def html_page(status: int = 200) -> Answer:
    return Answer(status, HTML_PAGE, "text/html; charset=utf-8")


def broken_json() -> Answer:
    return Answer(200, '{"items": [{"id": "a", "na')


def endless(chunk: bytes = b"[" + b"0," * 32767, content_type: str = "application/json") -> Answer:
    """A body that never ends: the same chunk for as long as the client reads."""
    def chunks():
        while True:
            yield chunk
    return Answer(200, b"", content_type, stream=chunks)


def declared_huge(size: int = 64 << 30, content_type: str = "application/json") -> Answer:
    """A body that says it is ``size`` bytes (64 GiB): sent as far as the client reads."""
    block = b" " * 65536

    def chunks():
        while True:
            yield block
    return Answer(200, b"[", content_type, stream=chunks, length=size)


@functools.lru_cache(maxsize=None)
def gzip_bomb(expands_to: int = 16 << 20) -> Answer:
    """A few kilobytes of gzip (Content-Encoding) that expand to ``expands_to`` bytes of JSON."""
    import gzip

    return Answer(200, gzip.compress(b"[" + b"0," * (expands_to // 2) + b"0]", 9), headers={"Content-Encoding": "gzip"})


def zip_of(members: dict, links: Iterable[str] = ()) -> bytes:
    """A zip of ``members`` (name -> text); a name in ``links`` is stored as a symlink to its text."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in links:
                info.create_system = 3
                info.external_attr = (0o120777 << 16)
            archive.writestr(info, text)
    return buffer.getvalue()


def lying_zip_bomb(members: dict, bomb: str, expands_to: int = 64 << 20) -> bytes:
    """A zip of ``members`` plus ``bomb``: ``expands_to`` bytes of zeros whose central
    directory (and local header) say it holds 10 bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
        archive.writestr(bomb, b"\0" * expands_to)
    data = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo(bomb)
    # the uncompressed size sits at offset 22 of the local header, 24 of the central entry
    local = info.header_offset
    data[local + 22:local + 26] = (10).to_bytes(4, "little")
    central = data.find(b"PK\x01\x02")
    while central >= 0:  # this member's central directory entry
        name_length = int.from_bytes(data[central + 28:central + 30], "little")
        if bytes(data[central + 46:central + 46 + name_length]) == bomb.encode():
            data[central + 24:central + 28] = (10).to_bytes(4, "little")
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


class HostileServer:
    """``with HostileServer(routes) as server:`` serves on ``server.root`` until the block ends."""

    def __init__(self, routes: dict):
        self.routes = routes
        self.seen: list[Seen] = []
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Seen(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
                hostile.seen.append(request)
                answer = hostile.route(request)
                payload = answer.body if isinstance(answer.body, bytes) else answer.body.encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                for name, value in answer.headers.items():
                    self.send_header(name, str(value))
                if answer.length is not None:
                    self.send_header("Content-Length", str(answer.length))
                elif answer.stream is None:
                    self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(payload)
                    for chunk in answer.stream() if answer.stream else ():
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what a refusal looks like from here
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.root = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def route(self, request: Seen) -> Answer:
        for (method, path), answer in self.routes.items():
            if method != request.method:
                continue
            if path == request.path or (path.endswith("*") and request.path.startswith(path[:-1])):
                return answer(request) if callable(answer) else answer
        return Answer(404, json.dumps({"message": f"no route for {request.method} {request.path}"}))

    def paths(self, method: str | None = None) -> list[str]:
        return [seen.path for seen in self.seen if method is None or seen.method == method]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
