"""Operation schemas: ``schemas/<service>/<operation>.yaml`` (JSON Schema in YAML).

A schema describes one call as ``{input, output, params}``. The settings every
operation accepts (url, rate_limit, token_file, ...) live once in
``schemas/settings.yaml`` and are merged into each operation's params. A receipt handed from
``submit`` to ``poll`` is read here too, checked against ``schemas/receipt.yaml`` (core/, which
writes it, knows no schema).
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml

from gensvc.core.jobids import is_job_id, shown
from gensvc.errors import UsageError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
# libyaml's loader when PyYAML has it: the pure-Python one took most of a call's start-up
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_documents_read = 0


def parse_yaml(text: str):
    """A YAML document, read safely (as yaml.safe_load does), with the fastest loader there is."""
    global _documents_read
    _documents_read += 1
    return yaml.load(text, Loader=YAML_LOADER)


def yaml_documents_read() -> int:
    """How many YAML documents this process has parsed: start-up should parse few."""
    return _documents_read


@lru_cache(maxsize=None)
def load(service: str, operation: str) -> dict:
    path = SCHEMA_DIR / service / f"{operation}.yaml"
    if not path.is_file():
        raise UsageError(f"unknown operation {service} {operation}", hint="run `gensvc list` to see every operation")
    schema = parse_yaml(path.read_text())
    params = schema["properties"]["params"]
    merged = dict(params.get("properties", {}))
    if not schema.get("x-local"):  # operations that call no service take no service settings
        settings = parse_yaml((SCHEMA_DIR / "settings.yaml").read_text())
        for name, spec in settings["properties"].items():
            merged.setdefault(name, copy.deepcopy(spec))
    params["properties"] = {name: _inline(spec, schema) for name, spec in merged.items()}
    return schema


def _inline(spec: dict, root: dict) -> dict:
    """Replace a local ``$ref`` by what it names, so readers of a property see its type."""
    if "$ref" not in spec:
        return spec
    target = root
    for part in spec["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in spec.items() if k != "$ref"}}


def services_with_operations() -> set[str]:
    """The services that have a schema, from the file names alone (nothing parsed)."""
    return {path.parent.name for path in SCHEMA_DIR.glob("*/*.yaml")}


def operations() -> list[tuple[str, str, str]]:
    """Every (service, operation, one-line description) with a schema."""
    found = []
    for path in sorted(SCHEMA_DIR.glob("*/*.yaml")):
        schema = parse_yaml(path.read_text())
        found.append((path.parent.name, path.stem, schema.get("description", "").strip().splitlines()[0]))
    return found


def named_files(spec: dict) -> dict:
    """The files by name, then those a name pattern allows, under the pattern's ``x-name``."""
    patterned = {prop["x-name"]: prop for prop in (spec.get("patternProperties") or {}).values() if "x-name" in prop}
    return {**spec.get("properties", {}), **patterned}


def validate(service: str, operation: str, call: dict) -> None:
    """Refuse a call that does not match its schema, naming every problem."""
    schema = load(service, operation)
    validator = jsonschema.Draft202012Validator(schema)
    problems = sorted(validator.iter_errors(call), key=lambda e: list(e.absolute_path))
    if problems:
        described = "; ".join(_describe(p) for p in problems[:5])
        raise UsageError(
            f"invalid call to {service} {operation}: {described}",
            hint=f"see `gensvc {service} {operation} --help`",
        )


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "call"
    if error.validator in ("oneOf", "anyOf", "minProperties") and "x-hint" in error.schema:
        return f"{where}: {error.schema['x-hint']}"
    if error.validator == "additionalProperties":
        return f"{where}: {error.message.replace('Additional properties are not allowed', 'unknown names')}"
    if "x-expected" in error.schema:  # the schema says in words what a pattern or enum wants
        return f"{where}: {error.instance!r} is not {error.schema['x-expected']}"
    return f"{where}: {error.message}"


def read_receipt(path: str, service: str) -> dict:
    """A receipt written by ``<service> submit``, checked against schemas/receipt.yaml."""
    try:
        receipt = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read receipt {path}: {exc}", hint=f"give the receipt written by `{service} submit`") from None
    job_id = receipt.get("job_id") if isinstance(receipt, dict) else None
    if isinstance(job_id, str) and not is_job_id(job_id):
        # said before the schema's own wording; it goes into URLs and file names
        raise UsageError(f"receipt {path} holds the job id {shown(job_id)}, which is not a job id",
                         hint=f"give the receipt written by `{service} submit`, unchanged")
    try:
        jsonschema.validate(receipt, parse_yaml((SCHEMA_DIR / "receipt.yaml").read_text()))
    except jsonschema.ValidationError as exc:
        raise UsageError(f"receipt {path} is not valid: {exc.message}") from None
    if receipt["service"] != service:
        raise UsageError(f"receipt {path} is for {receipt['service']}, not {service}")
    return receipt
