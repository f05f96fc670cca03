"""CAVATICA multipart upload: init, a presigned URL per part, PUT, report, complete.

Parts go in parallel (``parallel`` at a time) and each is checked: the storage's status
must be one the part URL's answer lists as success, and its ETag present and, when it is
an MD5, the part's own (the official client checks neither). An upload that stops half
way is resumed: its upload id is kept under the state dir, keyed by destination, name,
size and MD5, and the parts the platform already holds as reported are not sent again.
A file already in the project with the same name and size (and MD5, when its metadata
has one) is reused, not uploaded twice; ``overwrite`` says what to do with a different
one.

The protocol's POSTs are sent again when their answer is lost (a 5xx, a dropped connection,
no answer in time), within the session's budget: an init or a part's report is repeatable
(a report sent twice has one effect; an init only opens an upload, and one left unfinished
by a lost answer never becomes a file), and a completion is sent again only when the
project holds no new file of that name and size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from filelock import FileLock

from gensvc.core.files import replace_json
from gensvc.core.jobids import server_job_id
from gensvc.core.progress import report
from gensvc.core.receipts import send_submission
from gensvc.core.workers import run_each
from gensvc.errors import RequestRejected, UnexpectedAnswer, UsageError
from gensvc.services.cavatica_client import CavaticaClient, destination, platform_error, storage_session

log = logging.getLogger("gensvc.cavatica.upload")

OVERWRITE = ("never", "if_different", "always")
BLOCK = 1 << 20


def digests(path: str) -> tuple[str, str]:
    """(md5, sha256) of a file, read once."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


def part_ranges(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """(number, start, length) of every part; an empty file is one empty part."""
    count = max(1, -(-size // part_size))
    return [(n + 1, n * part_size, min(part_size, size - n * part_size)) for n in range(count)]


class UploadState:
    """The upload id of one transfer, kept until it completes, so a rerun resumes it."""

    def __init__(self, state_dir, key: str):
        directory = Path(state_dir) / "transfers" / "cavatica-upload"
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{key}.json"
        self.lock = FileLock(str(self.path) + ".lock")  # one process per transfer

    def read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def write(self, entry: dict) -> None:
        replace_json(self.path, entry)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)


class Uploader:
    def __init__(self, step, client: CavaticaClient, where: dict, *, part_size: int, parallel: int, overwrite: str):
        self.step, self.client, self.where = step, client, where
        self.part_size, self.parallel, self.overwrite = part_size, parallel, overwrite
        self.storage = storage_session(step.settings)
        self.sent_parts = 0

    def existing(self, name: str) -> dict | None:
        query = {**self.where, "name": name, "fields": "_all"}
        found = [item for item in self.client.all("files", query) if item.get("name") == name]
        return found[0] if found else None

    def upload(self, path: str) -> dict:
        name, size = Path(path).name, os.path.getsize(path)
        md5, sha = digests(path)
        entry = {"name": name, "size": size, "md5": md5, "path": path}
        there = self.existing(name)
        if there is not None and self.overwrite != "always":
            same = there.get("type") == "file" and there.get("size") == size and \
                (there.get("metadata") or {}).get("md5", md5) == md5
            if same:
                log.info("%s is already in %s as %s (same name and size); not uploading it again",
                         name, _shown(self.where), there.get("id"))
                return {**entry, "id": there["id"], "reused": True}
            if self.overwrite == "never":
                raise UsageError(
                    f"cavatica already holds a different {name} in {_shown(self.where)} "
                    f"(file {there.get('id')}, {there.get('size')} bytes; this one {size})",
                    hint="set overwrite=if_different to replace it, or rename the file")
        key = hashlib.sha256(json.dumps([self.client.base, self.where, name, size, sha]).encode()).hexdigest()
        state = UploadState(self.step.settings.state_dir, key)
        with state.lock:
            record = self._transfer(path, name, size, state, replaced=there.get("id") if there is not None else None)
        if record.get("size") != size:
            raise UnexpectedAnswer(f"cavatica completed {name} as {record.get('size')} bytes, not {size}",
                                   where=self.client.base, hint="upload it again with overwrite=if_different")
        return {**entry, "id": record["id"], "reused": False}

    def _transfer(self, path, name, size, state: UploadState, *, replaced: str | None) -> dict:
        upload = self._resumed(state)
        if upload is None:
            body = {**self.where, "name": name, "size": size, "part_size": self.part_size}
            params = {"overwrite": "true"} if replaced is not None else None
            with self.client.session.repeatable():
                upload = self.client.resource("POST", "upload_init", "an upload", params=params, json=body)
            if not isinstance(upload.get("upload_id"), str):
                raise UnexpectedAnswer("cavatica answered an upload without an upload_id", where=self.client.base)
            # it goes into every part's URL: a '..' there would be resolved to another endpoint
            server_job_id(upload["upload_id"], service="cavatica", where=self.client.url("upload_init"),
                          what="an upload id")
            state.write({"upload_id": upload["upload_id"], "part_size": upload.get("part_size") or self.part_size})
            done = set()
        else:
            done = {p.get("part_number") for p in upload.get("parts") or []
                    if isinstance(p, dict) and p.get("reported", bool(p.get("etag")))}
            log.info("resuming upload %s of %s: %d parts already there", upload["upload_id"], name, len(done))
        upload_id = upload["upload_id"]
        part_size = int(upload.get("part_size") or self.part_size)
        parts = [p for p in part_ranges(size, part_size) if p[0] not in done]
        with report(f"upload of {name}", total=len(parts), unit="part") as bar:
            self._send_parts(path, upload_id, parts, bar)
        def completed() -> dict | None:  # a new file of this name and size: the completion took effect
            there = self.existing(name)
            return there if there is not None and there.get("size") == size and there.get("id") != replaced else None

        # sent again when its answer is lost, unless the file is there after all
        try:
            record, _ = send_submission(self.client.session, lambda: self.client.resource(
                "POST", "upload_complete", "the uploaded file", upload_id=upload_id), completed)
        except RequestRejected as exc:
            # a run killed mid-completion: its request, still at the platform, completed this
            # upload after we resumed it, so ours finds no upload; the file is the one it made
            record = completed() if getattr(exc, "status", None) == 404 else None
            if record is None:
                raise
            log.info("upload %s was completed by an earlier run's request: file %s", upload_id, record.get("id"))
        state.forget()
        return record

    def _resumed(self, state: UploadState) -> dict | None:
        kept = state.read()
        if not kept or not isinstance(kept.get("upload_id"), str):
            return None
        try:
            upload = self.client.resource("GET", "upload", "an upload", upload_id=kept["upload_id"])
        except RequestRejected as exc:
            if getattr(exc, "status", None) != 404:
                raise
            log.info("upload %s is gone from the platform; starting again", kept["upload_id"])
            state.forget()
            return None
        upload.setdefault("upload_id", kept["upload_id"])
        upload.setdefault("part_size", kept.get("part_size"))
        return upload

    def _send_parts(self, path, upload_id, parts, bar) -> None:
        lock = threading.Lock()

        def one(part):
            self._send_part(path, upload_id, *part)
            with lock:
                self.sent_parts += 1
                bar.advance()

        run_each(one, parts, workers=self.parallel)

    def _send_part(self, path, upload_id, number, start, length) -> None:
        target = self.client.resource("GET", "upload_part_url", "a part's URL", upload_id=upload_id, part=number)
        url = target.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise UnexpectedAnswer(f"cavatica gave no URL for part {number}", where=self.client.base)
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read(length)
        response = self.storage.request(target.get("method") or "PUT", url, data=data,
                                        headers=target.get("headers") or {})
        success = target.get("success_codes") or [200]
        where = url.split("?")[0]
        if response.status_code not in success:
            message, _ = platform_error(response)
            raise UnexpectedAnswer(f"the storage refused part {number} (HTTP {response.status_code}: {message})",
                                   where=where, hint="run the upload again: it resumes from the parts stored")
        etag = (response.headers.get("ETag") or "").strip().strip('"')
        if not etag:
            raise UnexpectedAnswer(f"the storage answered part {number} without an ETag", where=where,
                                   hint="run the upload again: it resumes from the parts stored")
        if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower()) \
                and etag.lower() != hashlib.md5(data).hexdigest():
            raise UnexpectedAnswer(f"the storage's ETag for part {number} is not the part's MD5: it stored other bytes",
                                   where=where, hint="run the upload again")
        with self.client.session.repeatable():
            self.client.call("POST", "upload_report", upload_id=upload_id,
                             json={"part_number": number, "response": {"headers": {"ETag": etag}}})


def _shown(where: dict) -> str:
    return f"project {where['project']}" if "project" in where else f"folder {where['parent']}"


def upload(step, *, project=None, parent=None, overwrite="never", part_size=8 << 20, parallel=4) -> dict:
    if overwrite not in OVERWRITE:
        raise UsageError(f"overwrite {overwrite!r} is not one of {', '.join(OVERWRITE)}")
    files = step.input["files"]
    files = files if isinstance(files, list) else [files]
    names = [Path(f).name for f in files]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"two inputs share the name {twice[0]}; a project holds one file per name")
    where = destination(project, parent)
    client = CavaticaClient(step)
    uploader = Uploader(step, client, where, part_size=part_size, parallel=parallel, overwrite=overwrite)
    entries = [uploader.upload(path) for path in files]
    replace_json(step.output["manifest"], {"service": "cavatica", "base_url": client.base, **where, "files": entries})
    return {"files": len(entries), "reused": sum(e["reused"] for e in entries), "parts_sent": uploader.sent_parts}
