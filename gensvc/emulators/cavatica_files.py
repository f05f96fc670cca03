"""The CAVATICA emulator's files, folders, multipart uploads and the storage behind them.

API (under /v2):
- `GET /files?project=|parent=` (exactly one): a folder's items (a project: its root
  folder), filtered by `name` (repeatable, any of them), `metadata.<key>` (repeatable
  values, any), `tag` (repeatable, any), `origin.task`; paginated; `fields`.
- `POST /files` `{"name", "type": "folder", "project"|"parent"}`: a folder (201).
- `GET|PATCH|DELETE /files/{id}` (PATCH: name, metadata (merged), tags; DELETE 204);
  `GET|PATCH|PUT /files/{id}/metadata` (PATCH merges, PUT replaces); `GET|PUT|PATCH
  /files/{id}/tags`; `GET /files/{id}/list` (a folder's items); `GET
  /files/{id}/download_info` -> `{"url": <presigned storage URL>}`;
  `POST /bulk/files/get` `{"file_ids": [...]}`.
- Multipart upload: `POST /upload/multipart[?overwrite=true]` `{"name", "size",
  "part_size", "project"|"parent"}` -> `{"upload_id", "part_size", ...}` (201; the part
  size the server will take); `GET /upload/multipart/{id}` (its details and the parts
  stored so far, for resuming); `GET /upload/multipart/{id}/part/{n}` -> `{"method": "PUT",
  "url", "expires", "headers", "success_codes", "report"}`; `POST
  /upload/multipart/{id}/part[/]` `{"part_number", "response": {"headers": {"ETag"}}}`
  (also all at once: `POST /upload/multipart/{id}` `{"parts": [...]}`); `POST
  /upload/multipart/{id}/complete` -> the file (every part stored, reported with the ETag
  the storage gave it, sizes adding up; else 400 code 8007 naming each problem);
  `DELETE /upload/multipart/{id}` (204).

Storage (under /storage, presigned, no auth): `PUT /storage/uploads/{upload}/{n}` stores a
part and answers 200 with its `ETag` (quoted md5); `GET|HEAD /storage/files/{id}` serves
a file with `Content-Length`, `ETag`, `Accept-Ranges: bytes`, and one `Range: bytes=a-b`
(206, the end clamped to the file's last byte; a start past it: 416).
"""

from __future__ import annotations

from typing import Any, Iterator

from flask import Blueprint, Response, current_app, request

from .cavatica_store import CavaticaStore, FileRecord, StoreError, Upload, platform_time
from .cavatica_wire import (
    bulk_get_response,
    file_json,
    general_error,
    json_body,
    json_object_body,
    json_response,
    page_response,
    presigned_url,
    query_flag,
    resource_response,
    signature_problem,
    storage_error,
)
from .framework import ENVIRON_FAULTS

files_api = Blueprint("cavatica_files", __name__)
storage = Blueprint("cavatica_storage", __name__)

STREAM_CHUNK = 1024 * 1024


def store() -> CavaticaStore:
    return current_app.extensions["cavatica"]


def _folder_of_query(state: CavaticaStore) -> FileRecord:
    project_id = request.args.get("project")
    parent_id = request.args.get("parent")
    if (project_id is None) == (parent_id is None):
        raise general_error(400, "Bad request: give exactly one of project or parent.")
    if project_id is not None:
        return state.folder(state.project(project_id).root_folder)
    return state.folder(parent_id)


def _matches(record: FileRecord) -> bool:
    args = request.args
    names = args.getlist("name")
    if names and record.name not in names:
        return False
    tags = args.getlist("tag")
    if tags and not set(tags) & set(record.tags):
        return False
    task = args.get("origin.task")
    if task is not None and record.origin_task != task:
        return False
    for key in {key for key in args if key.startswith("metadata.")}:
        wanted = args.getlist(key)
        if str(record.metadata.get(key[len("metadata."):])) not in wanted:
            return False
    return True


@files_api.route("/files", methods=["GET"])
def query_files():
    state = store()
    with state.lock:
        folder = _folder_of_query(state)
        items = [record for record in state.children(folder.id) if _matches(record)]
        return page_response(items, "file", file_json)


@files_api.route("/files", methods=["POST"])
def create_folder():
    body = json_object_body()
    if body.get("type") != "folder":
        raise StoreError(400, 5012, "Invalid `type` supplied. Allowed values: [folder].")
    name = body.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise StoreError(400, 5024, "Invalid name parameter. Check the documentation.")
    state = store()
    with state.lock:
        if ("project" in body) == ("parent" in body):
            raise StoreError(400, 5031 if "project" in body else 5029,
                             "Providing both `parent` and `project` is not allowed."
                             if "project" in body else
                             "Missing `parent` or `project` field. These fields must be included together.")
        parent = (state.folder(state.project(body["project"]).root_folder) if "project" in body
                  else state.folder(body["parent"]))
        return resource_response(file_json(state.add_folder(name, parent)), "file", 201)


@files_api.route("/files/<file_id>", methods=["GET"])
def get_file(file_id: str):
    with store().lock:
        return resource_response(file_json(store().file(file_id)), "file")


def _metadata_value(value: Any) -> dict:
    if not isinstance(value, dict):
        raise StoreError(400, 5006, "Metadata validation failed.")
    return value


def _tags_value(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise general_error(400, "Bad request: tags must be a list of strings.")
    return list(value)


@files_api.route("/files/<file_id>", methods=["PATCH"])
def update_file(file_id: str):
    body = json_object_body()
    with store().lock:
        record = store().file(file_id)
        if record.type == "folder":
            raise StoreError(400, 5023, "Updating folder details is not supported.")
        if "name" in body:
            name = body["name"]
            if not isinstance(name, str) or not name or "/" in name:
                raise StoreError(400, 5024, "Invalid name parameter. Check the documentation.")
            clash = store().child_named(record.parent, name)
            if clash is not None and clash is not record:
                raise StoreError(409, 5003, "Requested file already exists.")
            record.name = name
        if "metadata" in body:
            record.metadata.update(_metadata_value(body["metadata"]))
        if "tags" in body:
            record.tags = _tags_value(body["tags"])
        return resource_response(file_json(record), "file")


@files_api.route("/files/<file_id>", methods=["DELETE"])
def delete_file(file_id: str):
    with store().lock:
        store().delete_file(store().file(file_id))
    return Response(status=204)


@files_api.route("/files/<file_id>/metadata", methods=["GET", "PATCH", "PUT"])
def file_metadata(file_id: str):
    body = json_object_body() if request.method != "GET" else None
    with store().lock:
        record = store().file(file_id)
        if request.method != "GET":
            if record.type == "folder":
                raise StoreError(400, 5025, "Updating folder metadata is not supported.")
            if request.method == "PUT":
                record.metadata = dict(_metadata_value(body))
            else:
                record.metadata.update(_metadata_value(body))
        return json_response(dict(record.metadata))


@files_api.route("/files/<file_id>/tags", methods=["GET", "PUT", "PATCH"])
def file_tags(file_id: str):
    with store().lock:
        record = store().file(file_id)
        if request.method != "GET":
            tags = _tags_value(json_body())
            if record.type == "folder":
                raise StoreError(400, 5027, "Updating folder tags is not supported.")
            record.tags = tags if request.method == "PUT" else record.tags + [
                tag for tag in tags if tag not in record.tags]
        return json_response(list(record.tags))


@files_api.route("/files/<file_id>/list", methods=["GET"])
def list_folder(file_id: str):
    with store().lock:
        folder = store().folder(file_id)
        return page_response(store().children(folder.id), "file", file_json)


@files_api.route("/files/<file_id>/download_info", methods=["GET"])
def download_info(file_id: str):
    with store().lock:
        record = store().file(file_id)
        if record.type == "folder":
            raise StoreError(400, 5017, "Downloading folders is not supported.")
    url, _ = presigned_url("GET", f"/files/{record.id}")
    return json_response({"url": url})


@files_api.route("/bulk/files/get", methods=["POST"])
def bulk_get_files():
    return bulk_get_response("file_ids", store().file, file_json, store().lock)


# Multipart upload.
def upload_json(upload: Upload) -> dict:
    return {"upload_id": upload.id, "project": upload.project, "parent": upload.parent,
            "name": upload.name, "size": upload.size, "part_size": upload.part_size,
            "initiated": platform_time(upload.initiated), "parallel_uploads": True,
            "total_parts": upload.total_parts, "uploaded_parts_count": len(upload.parts),
            "parts": [{"part_number": part.number, "size": part.size, "etag": part.etag,
                       "reported": part.reported_etag is not None}
                      for part in sorted(upload.parts.values(), key=lambda p: p.number)]}


def _positive_int(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise StoreError(400, 8013, f"Invalid `init` request: {name} must be an integer >= {minimum}.")
    return value


@files_api.route("/upload/multipart", methods=["POST"])
def init_upload():
    body = json_object_body()
    name = body.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise StoreError(400, 8013, "Invalid `init` request: name is missing or invalid.")
    size = _positive_int(body.get("size"), "size")
    part_size = _positive_int(body.get("part_size", 32 * 1024 * 1024), "part_size", 1)
    state = store()
    with state.lock:
        if ("project" in body) == ("parent" in body):
            raise StoreError(400, 8013, "Invalid `init` request: give exactly one of project or parent.")
        if "project" in body:
            project_id = body["project"]
            if not isinstance(project_id, str) or project_id.count("/") != 1:
                raise StoreError(400, 8010, "Malformed project id. Expecting `owner/project`.")
            parent = state.folder(state.project(project_id).root_folder)
        else:
            parent = state.folder(str(body["parent"]))
        upload = state.start_upload(name, size, part_size, parent, query_flag("overwrite"))
        return json_response(upload_json(upload), 201)


@files_api.route("/upload/multipart/<upload_id>", methods=["GET"])
def upload_details(upload_id: str):
    with store().lock:
        return json_response(upload_json(store().upload(upload_id)))


@files_api.route("/upload/multipart/<upload_id>", methods=["DELETE"])
def abort_upload(upload_id: str):
    with store().lock:
        store().drop_upload(store().upload(upload_id))
    return Response(status=204)


@files_api.route("/upload/multipart/<upload_id>/part/<int:part_number>", methods=["GET"])
def part_url(upload_id: str, part_number: int):
    with store().lock:
        upload = store().upload(upload_id)
        store().check_part_number(upload, part_number)
    url, expires = presigned_url("PUT", f"/uploads/{upload.id}/{part_number}")
    return json_response({"method": "PUT", "url": url, "expires": platform_time(expires),
                          "headers": {}, "success_codes": [200],
                          "report": {"headers": ["ETag"]}})


def _report(upload: Upload, report: Any) -> None:
    if not isinstance(report, dict):
        raise StoreError(400, 8014, "Invalid `part` report.")
    headers = (report.get("response") or {}).get("headers") or {}
    etag = next((value for key, value in headers.items() if key.lower() == "etag"), None) \
        if isinstance(headers, dict) else None
    store().report_part(upload, report.get("part_number"), etag)


@files_api.route("/upload/multipart/<upload_id>/part", methods=["POST"])
@files_api.route("/upload/multipart/<upload_id>/part/", methods=["POST"])
def report_part(upload_id: str):
    body = json_object_body()
    with store().lock:
        upload = store().upload(upload_id)
        _report(upload, body)
        return json_response(upload_json(upload))


@files_api.route("/upload/multipart/<upload_id>", methods=["POST"])
def report_parts(upload_id: str):
    parts = json_object_body().get("parts")
    if not isinstance(parts, list):
        raise StoreError(400, 8015, "Invalid list of parts. Expecting an object with `parts`: "
                                    "[ array of part reports ].")
    with store().lock:
        upload = store().upload(upload_id)
        for report in parts:
            _report(upload, report)
        return json_response(upload_json(upload))


@files_api.route("/upload/multipart/<upload_id>/complete", methods=["POST"])
def complete_upload(upload_id: str):
    record = store().complete_upload(upload_id)  # takes the lock itself, joins outside it
    with store().lock:
        return json_response(file_json(record))


# Storage: presigned URLs, no platform auth.
def _take(kind: str):
    faults = request.environ.get(ENVIRON_FAULTS)
    return faults.take(kind, request.method, request.path) if faults is not None else None


@storage.route("/uploads/<upload_id>/<int:part_number>", methods=["PUT"])
def put_part(upload_id: str, part_number: int):
    problem = signature_problem("PUT", f"/uploads/{upload_id}/{part_number}")
    if problem:
        return storage_error(403, "AccessDenied", f"Request not allowed: {problem}.")
    with store().lock:
        upload = store().uploads.get(upload_id)
        if upload is None or not 1 <= part_number <= upload.total_parts:
            return storage_error(404, "NoSuchUpload", "The upload or part does not exist.")
        if upload.completing:
            return storage_error(409, "OperationAborted", "The upload is being completed.")
    part = store().store_part(upload, part_number, request.stream, request.content_length)
    return Response(status=200, headers={"ETag": f'"{part.etag}"'})


def _byte_range(size: int) -> tuple[int, int] | None | Response:
    """The (first, last) bytes a `Range: bytes=a-b` asks for, clamped to the file; None
    for the whole file; a 416 answer when it starts past the end."""
    header = request.headers.get("Range")
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_text, _, last_text = header[len("bytes="):].strip().partition("-")
    try:
        if first_text == "":  # a suffix: the last N bytes
            count = int(last_text)
            return (max(0, size - count), size - 1) if count > 0 and size else None
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size or last < first:
        return Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    return first, min(last, size - 1)


def _file_bytes(record: FileRecord, first: int, count: int) -> Iterator[bytes]:
    with open(record.path, "rb") as handle:
        handle.seek(first)
        while count > 0:
            chunk = handle.read(min(STREAM_CHUNK, count))
            if not chunk:
                return
            count -= len(chunk)
            yield chunk


@storage.route("/files/<file_id>", methods=["GET", "HEAD"])
def get_object(file_id: str):
    problem = signature_problem("GET", f"/files/{file_id}")
    if problem:
        return storage_error(403, "AccessDenied", f"Request not allowed: {problem}.")
    with store().lock:
        record = store().files.get(file_id)
        if record is None or record.path is None:
            return storage_error(404, "NoSuchKey", "The specified key does not exist.")
    size = record.size
    if _take("short_download"):
        size -= 1  # consistently short: headers and body agree, the file record does not
    wanted = None if _take("ignore_range") else _byte_range(size)
    if isinstance(wanted, Response):
        return wanted
    headers = {"ETag": f'"{record.etag}"', "Accept-Ranges": "bytes",
               "Content-Type": "application/octet-stream"}
    first, last, status = 0, size - 1, 200
    if wanted is not None:
        (first, last), status = wanted, 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    count = max(0, last - first + 1)
    headers["Content-Length"] = str(count)
    body = [] if request.method == "HEAD" else _file_bytes(record, first, count)
    return Response(body, status=status, headers=headers, direct_passthrough=True)
