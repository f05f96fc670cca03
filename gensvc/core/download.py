"""Streaming downloads that are never half-written.

Bytes go to ``<path>.part`` and are renamed to ``<path>`` only once the size
(Content-Length) and, if given, the SHA-256 check out. A connection lost
mid-body resumes with ``Range`` when the server honours it, and starts over
when it does not; the whole transfer spends one budget of attempts and one
deadline (a stalled body, past the read timeout, counts as one). A body larger
than ``max_bytes`` (declared or sent) is refused, so an endless one cannot fill the
disk. The file name always comes from the caller; a Content-Disposition name is
never a path: a server that sends one with a directory in it (``../x``, ``/x``) is
refused, and a plain one is only recorded.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import requests

from gensvc.core.files import file_sha256
from gensvc.errors import UnexpectedAnswer

log = logging.getLogger("gensvc.download")

CHUNK = 1 << 20


@dataclass
class Downloaded:
    path: str
    size: int
    sha256: str
    content_type: str | None
    server_filename: str | None
    resumed: int  # times the transfer continued from where it broke


class IncompleteBody(requests.exceptions.ChunkedEncodingError):
    """The server closed the body before Content-Length bytes arrived."""


class OtherRange(IncompleteBody):
    """A 206 for other bytes than were asked for: nothing of it can be used."""


@dataclass(frozen=True)
class SizeLimit:
    """The most a download may hold, and what a user changes to raise it (named in the error)."""

    bytes: int
    named: str


def download(session, url: str, path: str, *, check_response=None, sha256: str | None = None,
             headers: dict | None = None, auth=None, limit: SizeLimit | None = None) -> Downloaded:
    """GET ``url`` into ``path``. ``check_response(response)`` raises for a refused answer
    (a client's ``ERRORS.check``); ``auth`` goes with every request, as a client sends it;
    ``limit`` bounds the size (default: the session's ``max_download_bytes``)."""
    if limit is None:
        limit = SizeLimit(session.max_download_bytes, f"GENSVC_{session.service.upper()}_MAX_DOWNLOAD_BYTES")
    part = Path(f"{path}.part")
    try:
        # one budget for the whole transfer: refused requests and broken bodies draw on it alike
        with session.budget() as budget:
            return _transfer(session, budget, url, path, part, check_response, sha256, headers, auth, limit)
    finally:
        part.unlink(missing_ok=True)


def _transfer(session, budget, url, path, part, check_response, sha256, headers, auth, limit) -> Downloaded:
    received, total, resumed = 0, None, 0
    response = None
    while True:
        wanted = dict(headers or {})
        if received:
            wanted["Range"] = f"bytes={received}-"
        try:
            response = session.get(url, headers=wanted, stream=True, auth=auth)
            if check_response is not None:
                check_response(response)
            server_name = disposition_name(response, session.service)
            received, total = _start(response, received, part)
            if total is not None and total > limit.bytes:
                response.close()
                raise _too_large(session.service, url, limit, f"it declares {total} bytes")
            with open(part, "ab") as sink:
                for chunk in response.iter_content(CHUNK):
                    received += len(chunk)
                    if received > limit.bytes:
                        response.close()
                        raise _too_large(session.service, url, limit, "it went on past that")
                    sink.write(chunk)
            if total is not None and received < total:
                raise IncompleteBody(f"{received} of {total} bytes")
            break
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            # a stalled body (read timeout) arrives here too
            if isinstance(exc, OtherRange):
                received = 0  # ask for the whole file next time
            log.info("download of %s broke after %d bytes (%s); continuing", url.split("?")[0], received, type(exc).__name__)
            session.next_attempt(budget, _request_of(response, url), error=exc)
            resumed += 1
    if total is not None and received != total:
        raise IncompleteBody(f"{received} bytes, expected {total}")
    digest = file_sha256(part)
    if sha256 and digest != sha256.lower():
        from gensvc.errors import ServiceUnavailable

        raise ServiceUnavailable(f"download of {url} does not match its checksum", hint="try again; the service sent different bytes")
    os.replace(part, path)
    return Downloaded(path, received, digest, response.headers.get("Content-Type"), server_name, resumed)


def _too_large(service: str, url: str, limit: SizeLimit, how: str) -> UnexpectedAnswer:
    return UnexpectedAnswer(f"{service}'s download is larger than the {limit.bytes} bytes it may be ({how})",
                            where=url.split("?")[0],
                            hint=f"check the service's URL; if the file is real, raise {limit.named}")


def _start(response, received: int, part: Path) -> tuple[int, int | None]:
    """Where this answer's bytes begin, and the whole file's size if known."""
    length = response.headers.get("Content-Length")
    if response.status_code == 206:
        match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != received:
            # its bytes are not the file's from where we are: written as a whole file they
            # would make a wrong one
            response.close()
            raise OtherRange(f"asked for bytes from {received}, got {response.headers.get('Content-Range')!r}")
        whole = match.group(2)
        return received, int(whole) if whole != "*" else None
    # a full answer: start over
    part.write_bytes(b"")
    return 0, int(length) if length and length.isdigit() else None


def _request_of(response, url):
    if response is not None:
        return response.request
    return requests.Request("GET", url).prepare()


def disposition_name(response, service: str) -> str | None:
    """The server's suggested file name (recorded, never used as a path), or None if it
    gives none. One that is a path (``../x``, ``/etc/x``, ``C:\\x``) is UnexpectedAnswer:
    a server that sends it is not to be trusted with the rest of the file either."""
    header = response.headers.get("Content-Disposition", "")
    names = re.findall(r"filename\*\s*=\s*(?:[\w-]+'[^']*')?([^;]+)", header, re.I) + \
        re.findall(r'filename\s*=\s*"?([^";]*)"?', header, re.I)
    if not names:
        return None
    for name in (unquote(found.strip()) for found in names):
        if "/" in name or "\\" in name or name in (".", "..") or "\0" in name or re.match(r"^[A-Za-z]:", name):
            response.close()
            raise UnexpectedAnswer(f"{service} sent an unsafe file name {name[:80]!r} in Content-Disposition; "
                                   "refusing the download", where=response.url.split("?")[0],
                                   hint="nothing was written; the server (or a proxy before it) is not the service")
    return unquote(names[0].strip()) or None


@dataclass(frozen=True)
class ZipLimits:
    """What an archive may hold. No defaults here: the operation's schema declares them
    (cgi download's max_files, max_bytes, max_ratio), so there is one value to change."""

    max_files: int
    max_total_bytes: int
    max_ratio: float  # uncompressed / compressed, per member


def extract_members(zip_path: str, wanted: dict[str, str], limits: ZipLimits) -> dict[str, int]:
    """Copy the members named in ``wanted`` (member name -> destination path) out of
    a zip, after checking the whole archive: no absolute or ``..`` paths, no links,
    and the file count, total size and compression ratio within ``limits``.
    Each destination is written to ``.part`` and renamed. Returns the sizes."""
    import stat
    import zipfile

    from gensvc.errors import ServiceUnavailable

    def refuse(why: str):
        return ServiceUnavailable(f"refusing the result archive: {why}", where=zip_path,
                                  hint="the service sent an unsafe or damaged zip; nothing was extracted")

    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise refuse(f"not a zip ({exc})") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_files:
            raise refuse(f"{len(members)} members, more than {limits.max_files}")
        total = 0
        for member in members:
            name = member.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
                raise refuse(f"member {name!r} would land outside the destination")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise refuse(f"member {name!r} is a link")
            total += member.file_size
            if total > limits.max_total_bytes:
                raise refuse(f"it expands to over {limits.max_total_bytes} bytes")
            if member.file_size > 1 << 20 and member.file_size > limits.max_ratio * max(member.compress_size, 1):
                raise refuse(f"member {name!r} expands {member.file_size / max(member.compress_size, 1):.0f} times")
        present = {m.filename for m in members}
        missing = [name for name in wanted if name not in present]
        if missing:
            raise refuse(f"it lacks {', '.join(missing)} (has {', '.join(sorted(present))})")
        sizes = {}
        for name, dest in wanted.items():
            part = Path(f"{dest}.part")
            try:
                with archive.open(name) as source, open(part, "wb") as sink:
                    copied = 0
                    for block in iter(lambda: source.read(CHUNK), b""):
                        copied += len(block)
                        if copied > archive.getinfo(name).file_size:  # lying headers
                            raise refuse(f"member {name!r} is larger than it says")
                        sink.write(block)
                os.replace(part, dest)
            except zipfile.BadZipFile as exc:
                raise refuse(f"member {name!r} is damaged ({exc})") from None
            finally:
                part.unlink(missing_ok=True)
            sizes[name] = copied
        return sizes
