"""The CAVATICA emulator's state: users, projects, files and folders (their bytes on disk,
so a gigabyte upload does not live in memory), multipart uploads, tasks and the per-user
rate-limit windows. One lock guards it all; the routes never touch a record outside it.

Records are plain dataclasses; `cavatica_wire` turns them into the platform's JSON.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PARTS = 10_000
MAX_PART_SIZE = 5 * 1024 * MiB
COPY_CHUNK = 1 * MiB

RATE_LIMIT = (1000, 300.0)  # requests per seconds: "1000 requests per five minutes"


def platform_time(moment: float) -> str:
    """A datetime as the platform writes it: UTC, no offset, a trailing Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def new_file_id() -> str:
    return secrets.token_hex(12)  # 24 hex digits, like the platform's object ids


@dataclass
class User:
    username: str
    email: str
    first_name: str
    last_name: str


@dataclass
class Project:
    id: str  # owner/slug
    name: str
    owner: str
    root_folder: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    category: str = "PRIVATE"
    billing_group: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_on: float = field(default_factory=time.time)
    modified_on: float = field(default_factory=time.time)


@dataclass
class FileRecord:
    id: str
    name: str
    project: str
    parent: str | None  # the folder it is in; None only for a project's root folder
    type: str = "file"  # "file" or "folder"
    size: int = 0
    path: Path | None = None  # its bytes, for a file
    etag: str = ""  # the storage's ETag: md5 for one part, md5-of-md5s "-N" for several
    md5: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    origin_task: str | None = None
    hidden: bool = False  # a task's log: reachable by id, not listed in the project
    created_on: float = field(default_factory=time.time)
    modified_on: float = field(default_factory=time.time)


@dataclass
class UploadPart:
    number: int
    size: int
    etag: str  # what the storage answered to the PUT, unquoted
    reported_etag: str | None = None  # what the client reported afterwards


@dataclass
class Upload:
    id: str
    name: str
    project: str
    parent: str  # folder id
    size: int
    part_size: int
    overwrite: bool
    directory: Path
    initiated: float = field(default_factory=time.time)
    parts: dict[int, UploadPart] = field(default_factory=dict)
    completing: bool = False  # its parts are being joined: no more parts or reports

    @property
    def total_parts(self) -> int:
        return max(1, math.ceil(self.size / self.part_size))

    def part_path(self, number: int) -> Path:
        return self.directory / f"part-{number:05d}"


@dataclass
class Job:
    """One step of a task's execution, as execution_details lists it."""
    name: str
    command_line: str
    log_file: str | None = None  # file id of its log
    failed: bool = False


@dataclass
class Task:
    id: str
    name: str
    project: str
    app: str  # owner/project/app/revision
    app_revision: int
    inputs: dict[str, Any]
    description: str | None
    created_by: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    created_time: float = field(default_factory=time.time)
    run_at: float | None = None  # when it was run (left DRAFT)
    queued_seconds: float = 0.0
    running_seconds: float = 0.0
    abort_requested: float | None = None
    abort_seconds: float = 0.0
    fail_message: str | None = None  # set when the run was made to fail (fault or app)
    settled: str | None = None  # COMPLETED / FAILED / ABORTED once outputs or logs are made
    outputs: dict[str, Any] = field(default_factory=dict)
    jobs: list[Job] = field(default_factory=list)
    execution_message: str = ""

    def status(self, now: float) -> str:
        if self.settled is not None:
            return self.settled
        if self.run_at is None:
            return "DRAFT"
        if self.abort_requested is not None:
            return "ABORTED" if now >= self.abort_requested + self.abort_seconds else "ABORTING"
        if now < self.run_at + self.queued_seconds:
            return "QUEUED"
        if now < self.end_at:
            return "RUNNING"
        return "FAILED" if self.fail_message else "COMPLETED"

    @property
    def start_at(self) -> float | None:
        return None if self.run_at is None else self.run_at + self.queued_seconds

    @property
    def end_at(self) -> float:
        assert self.run_at is not None
        return self.run_at + self.queued_seconds + self.running_seconds


class RateWindow:
    """A fixed window per user: `limit` requests, the window starting at the first
    request after the last one ended; Reset is that window's end in epoch seconds."""

    def __init__(self, limit: int, seconds: float):
        self.limit = limit
        self.seconds = seconds
        self._windows: dict[str, tuple[float, int]] = {}  # user -> (end, used)
        self._lock = threading.Lock()

    def _current(self, key: str, now: float) -> tuple[float, int]:
        end, used = self._windows.get(key, (0.0, 0))
        if now >= end:
            end, used = now + self.seconds, 0
        return end, used

    def hit(self, key: str, count: bool = True) -> tuple[bool, int, float]:
        """(allowed, remaining, reset) after counting this request (when `count`)."""
        now = time.time()
        with self._lock:
            end, used = self._current(key, now)
            allowed = used < self.limit
            if count and allowed:
                used += 1
            self._windows[key] = (end, used)
            return allowed, self.limit - used, end

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()


class StoreError(Exception):
    """A request the platform refuses: HTTP status, platform code, message."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class CavaticaStore:
    """Everything the emulator holds. `lock` must be held while reading or changing records."""

    def __init__(self, min_part_size: int = MIN_PART_SIZE):
        self.lock = threading.RLock()
        self.min_part_size = min_part_size
        self.directory = Path(tempfile.mkdtemp(prefix="gensvc-cavatica-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.directory, True)
        self.users: dict[str, User] = {}
        self.tokens: dict[str, str] = {}  # token -> username
        self.projects: dict[str, Project] = {}
        self.files: dict[str, FileRecord] = {}
        self.uploads: dict[str, Upload] = {}
        self.tasks: dict[str, Task] = {}

    def close(self) -> None:
        self._cleanup()

    # users and projects
    def add_user(self, user: User, tokens: Iterable[str]) -> None:
        self.users[user.username] = user
        for token in tokens:
            self.tokens[token] = user.username

    def add_project(self, owner: str, slug: str, name: str, description: str = "",
                    tags: list[str] | None = None) -> Project:
        project_id = f"{owner}/{slug}"
        root = FileRecord(id=new_file_id(), name=slug, project=project_id, parent=None,
                          type="folder")
        self.files[root.id] = root
        project = Project(id=project_id, name=name, owner=owner, root_folder=root.id,
                          description=description, tags=list(tags or []))
        self.projects[project_id] = project
        return project

    def project(self, project_id: str) -> Project:
        if project_id.count("/") != 1 or not all(project_id.split("/")):
            raise StoreError(400, 3012, "Malformed project id. Expecting `owner/project`.")
        try:
            return self.projects[project_id]
        except KeyError:
            raise StoreError(404, 3002, "Requested project or member does not exist.") from None

    # files and folders
    def file(self, file_id: str) -> FileRecord:
        record = self.files.get(file_id)
        if record is None or record.parent is None:  # a root folder is not addressable
            raise StoreError(404, 5002, "Requested file does not exist.")
        return record

    def folder(self, folder_id: str) -> FileRecord:
        record = self.files.get(folder_id)
        if record is None:
            raise StoreError(404, 5026, "Destination folder is not found.")
        if record.type != "folder":
            raise StoreError(400, 5022, "The parent specified is not a folder.")
        return record

    def children(self, folder_id: str) -> list[FileRecord]:
        return [record for record in self.files.values()
                if record.parent == folder_id and not record.hidden]

    def child_named(self, folder_id: str, name: str) -> FileRecord | None:
        for record in self.children(folder_id):
            if record.name == name:
                return record
        return None

    def add_folder(self, name: str, parent: FileRecord) -> FileRecord:
        if self.child_named(parent.id, name) is not None:
            raise StoreError(409, 5030, "Requested folder already exists.")
        record = FileRecord(id=new_file_id(), name=name, project=parent.project,
                            parent=parent.id, type="folder")
        self.files[record.id] = record
        return record

    def add_file_bytes(self, name: str, parent: FileRecord, data: bytes, *,
                       origin_task: str | None = None, hidden: bool = False,
                       metadata: dict | None = None) -> FileRecord:
        """A file made by the platform itself (a task's output or log)."""
        record = FileRecord(id=new_file_id(), name=name, project=parent.project,
                            parent=parent.id, size=len(data), origin_task=origin_task,
                            hidden=hidden, metadata=dict(metadata or {}))
        record.path = self.directory / f"file-{record.id}"
        record.path.write_bytes(data)
        record.md5 = hashlib.md5(data).hexdigest()
        record.etag = record.md5
        self.files[record.id] = record
        return record

    def unique_name(self, folder_id: str, name: str) -> str:
        """The platform's rule for a clashing output name: a `_1_`, `_2_`... prefix."""
        candidate, n = name, 0
        while self.child_named(folder_id, candidate) is not None:
            n += 1
            candidate = f"_{n}_{name}"
        return candidate

    def delete_file(self, record: FileRecord) -> None:
        if record.type == "folder" and self.children(record.id):
            raise StoreError(400, 5021, "Deleting non-empty folders is not supported.")
        del self.files[record.id]
        if record.path is not None:
            record.path.unlink(missing_ok=True)

    # multipart uploads
    def start_upload(self, name: str, size: int, part_size: int, parent: FileRecord,
                     overwrite: bool) -> Upload:
        existing = self.child_named(parent.id, name)
        if existing is not None and (not overwrite or existing.type == "folder"):
            raise StoreError(409, 8004, "Requested file already exists.")
        # The server picks the part size it will accept (the client adopts it): at least
        # S3's minimum, and big enough that the file fits in MAX_PARTS parts.
        part_size = max(part_size, self.min_part_size, math.ceil(size / MAX_PARTS))
        if part_size > MAX_PART_SIZE:
            raise StoreError(400, 8013, "Invalid `init` request.")
        upload_id = secrets.token_urlsafe(24)
        directory = self.directory / f"upload-{upload_id}"
        directory.mkdir()
        upload = Upload(id=upload_id, name=name, project=parent.project, parent=parent.id,
                        size=size, part_size=part_size, overwrite=overwrite,
                        directory=directory)
        self.uploads[upload_id] = upload
        return upload

    def upload(self, upload_id: str) -> Upload:
        try:
            return self.uploads[upload_id]
        except KeyError:
            raise StoreError(404, 8003, "Requested upload does not exist.") from None

    def check_part_number(self, upload: Upload, number: Any) -> int:
        if isinstance(number, bool) or not isinstance(number, int) \
                or not 1 <= number <= upload.total_parts:
            raise StoreError(400, 8012, "Part number is missing or invalid.")
        return number

    def store_part(self, upload: Upload, number: int, stream: BinaryIO, length: int | None) -> UploadPart:
        """Write a PUT's body to disk (outside the lock: only this part's file is touched)."""
        digest = hashlib.md5()
        size = 0
        temp = upload.part_path(number).with_suffix(".tmp")
        with open(temp, "wb") as out:
            while True:
                chunk = stream.read(COPY_CHUNK if length is None else min(COPY_CHUNK, length - size))
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
                if length is not None and size >= length:
                    break
        temp.replace(upload.part_path(number))
        part = UploadPart(number=number, size=size, etag=digest.hexdigest())
        with self.lock:
            upload.parts[number] = part
        return part

    def report_part(self, upload: Upload, number: Any, etag: Any) -> None:
        number = self.check_part_number(upload, number)
        if not isinstance(etag, str):
            raise StoreError(400, 8014, "Invalid `part` report.")
        if upload.completing:
            raise StoreError(409, 8014, "Invalid `part` report: the upload is being completed.")
        part = upload.parts.get(number)
        if part is None:
            raise StoreError(400, 8014, f"Invalid `part` report: part {number} was never uploaded.")
        part.reported_etag = etag.strip('"')

    def complete_upload(self, upload_id: str) -> FileRecord:
        """Check every part (present, reported with its own ETag, sizes adding up), then
        join them into the file. The last part may be empty and the one before it one
        byte longer than the part size, as sevenbridges-python cuts a k*part+1 file.
        Call without the lock: the parts are joined outside it (a gigabyte takes seconds)
        while the upload, marked completing, takes no more parts."""
        with self.lock:
            upload = self.upload(upload_id)
            if upload.completing:
                raise StoreError(409, 8007, "Failed to complete upload. It is being completed already.")
            self._check_parts(upload)
            parent = self.folder(upload.parent)
            self._refuse_clash(upload, parent)
            upload.completing = True
        record = FileRecord(id=new_file_id(), name=upload.name, project=upload.project,
                            parent=parent.id, size=upload.size)
        try:
            self._join_parts(upload, record)
            with self.lock:
                self._refuse_clash(upload, parent)
                existing = self.child_named(parent.id, upload.name)
                if existing is not None:
                    self.delete_file(existing)  # overwrite: the old file goes; the new one has a new id
                self.files[record.id] = record
                self.drop_upload(upload)
        except BaseException:
            with self.lock:
                upload.completing = False
            if record.path is not None and record.id not in self.files:
                record.path.unlink(missing_ok=True)
            raise
        return record

    def _check_parts(self, upload: Upload) -> None:
        problems = []
        total = 0
        for number in range(1, upload.total_parts + 1):
            part = upload.parts.get(number)
            if part is None:
                problems.append(f"part {number} was not uploaded")
                continue
            total += part.size
            if part.reported_etag is None:
                problems.append(f"part {number} was not reported")
            elif part.reported_etag != part.etag:
                problems.append(f"part {number}: reported ETag {part.reported_etag!r} "
                                f"is not the stored part's")
            if number < upload.total_parts and part.size < self.min_part_size:
                problems.append(f"part {number} is smaller than {self.min_part_size} bytes")
        if not problems and total != upload.size:
            problems.append(f"the parts hold {total} bytes, the upload declared {upload.size}")
        if problems:
            raise StoreError(400, 8007, "Failed to complete upload. " + "; ".join(problems) + ".")

    def _refuse_clash(self, upload: Upload, parent: FileRecord) -> None:
        existing = self.child_named(parent.id, upload.name)
        if existing is not None and (not upload.overwrite or existing.type == "folder"):
            raise StoreError(409, 8004, "Requested file already exists.")

    def _join_parts(self, upload: Upload, record: FileRecord) -> None:
        record.path = self.directory / f"file-{record.id}"
        md5 = hashlib.md5()
        with open(record.path, "wb") as out:
            for number in range(1, upload.total_parts + 1):
                with open(upload.part_path(number), "rb") as part_file:
                    while chunk := part_file.read(COPY_CHUNK):
                        md5.update(chunk)
                        out.write(chunk)
        record.md5 = md5.hexdigest()
        etags = [bytes.fromhex(upload.parts[n].etag) for n in range(1, upload.total_parts + 1)]
        record.etag = (upload.parts[1].etag if len(etags) == 1
                       else f"{hashlib.md5(b''.join(etags)).hexdigest()}-{len(etags)}")

    def drop_upload(self, upload: Upload) -> None:
        self.uploads.pop(upload.id, None)
        shutil.rmtree(upload.directory, ignore_errors=True)

    # tasks
    def task(self, task_id: str) -> Task:
        try:
            uuid.UUID(task_id)
        except ValueError:
            raise StoreError(400, 7005, "Task ID must be a valid UUID.") from None
        try:
            return self.tasks[task_id]
        except KeyError:
            raise StoreError(404, 7002, "Requested task does not exist.") from None

    def add_task(self, task: Task) -> Task:
        self.tasks[task.id] = task
        return task


__all__ = ["CavaticaStore", "FileRecord", "Job", "MIN_PART_SIZE", "Project", "RATE_LIMIT",
           "RateWindow", "StoreError", "Task", "Upload", "UploadPart", "User", "new_file_id",
           "platform_time"]
