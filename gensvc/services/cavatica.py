"""CAVATICA (Seven Bridges Platform API v2): upload, run, poll, download, abort, and the
projects, apps and files lists.

The client (endpoints, auth, the platform's errors, pages, the rate-limit headers) is
``cavatica_client``; the transfers are ``cavatica_upload`` and ``cavatica_download``;
tasks are ``cavatica_tasks``.
"""

from __future__ import annotations

from gensvc.core.files import replace_json, replace_text
from gensvc.errors import UsageError
from gensvc.services.cavatica_client import ERRORS, CavaticaClient, destination
from gensvc.services.cavatica_download import download
from gensvc.services.cavatica_tasks import abort, poll, run
from gensvc.services.cavatica_upload import upload

COLUMNS = {
    "projects": ("id", "name", "category", "created_on"),
    "apps": ("id", "name", "revision", "project"),
    "files": ("id", "name", "type", "size", "project", "parent"),
}


def _write_listing(step, kind: str, items: list[dict], columns=None) -> dict:
    if not ({"table", "json"} & set(step.output)):
        raise UsageError(f"cavatica {kind} needs an output: table (TSV) or json")
    if "json" in step.output:
        replace_json(step.output["json"], {"service": "cavatica", kind: items})
    if "table" in step.output:
        columns = columns or COLUMNS[kind]
        lines = ["\t".join(columns)] + ["\t".join(_cell(item.get(c)) for c in columns) for item in items]
        replace_text(step.output["table"], "\n".join(lines) + "\n")
    return {kind: len(items)}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, sort_keys=True)
    return " ".join(str(value).split())  # no tab or newline breaks a row


def _given(**filters) -> dict:
    """The query filters the caller set: an unset one is left out of the query, not sent empty."""
    return {key: value for key, value in filters.items() if value}


def projects(step, *, name=None, limit=100, offset=0) -> dict:
    client = CavaticaClient(step)
    query = {"fields": "_all", **_given(name=name)}
    return _write_listing(step, "projects", client.all("projects", query, limit=limit, offset=offset))


def apps(step, *, project=None, visibility=None, q=None, limit=100, offset=0) -> dict:
    client = CavaticaClient(step)
    query = {"fields": "_all", **_given(project=project, visibility=visibility, q=q)}
    return _write_listing(step, "apps", client.all("apps", query, limit=limit, offset=offset))


def files(step, *, project=None, parent=None, name=None, metadata=None, tag=None, origin_task=None, fields=None,
          limit=100, offset=0) -> dict:
    client = CavaticaClient(step)
    query: dict = {**destination(project, parent), "fields": ",".join(fields) if fields else "_all",
                   **_given(name=name, tag=tag, **{"origin.task": origin_task})}
    for key, value in (metadata or {}).items():
        query[f"metadata.{key}"] = value
    columns = tuple(fields) if fields else None
    return _write_listing(step, "files", client.all("files", query, limit=limit, offset=offset), columns)


__all__ = ["ERRORS", "OPERATIONS"]

OPERATIONS = {"upload": upload, "run": run, "poll": poll, "download": download, "abort": abort,
              "projects": projects, "apps": apps, "files": files}
