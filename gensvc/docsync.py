"""``gensvc dev sync-docs``: the docs of every operation, generated from its schema.

``schemas/<service>/<operation>.yaml`` is the one description of an operation. From it
(and from the service settings every operation shares, ``schemas/settings.yaml`` and
``gensvc.settings``) come the wrapper's ``meta.yaml``, the docstring of its ``wrapper.py``
and the README's wrapper table, between ``<!-- wrappers:begin -->`` and
``<!-- wrappers:end -->``. ``--check`` writes nothing and fails (exit 2) on any drift.

It runs on the checkout the imported gensvc lives in: an installed wheel carries the
schemas but neither wrappers/ nor the README, so there is nothing there to sync.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

import yaml

from gensvc import schema
from gensvc.core.files import replace_text
from gensvc.errors import UsageError
from gensvc.settings import DEFAULT_RATE_LIMITS, DEFAULT_URLS, FOREIGN_ENV, SECRETS, SERVICES

COMMAND = "gensvc dev sync-docs"
BEGIN, END = "<!-- wrappers:begin -->", "<!-- wrappers:end -->"
WIDTH = 100
# what meta.yaml needs that only a schema's x- keys can say
REQUIRED_KEYS = {"x-url": "the address of the service's API docs", "x-authors": "a list of names"}
WRAPPER_BODY = 'from gensvc.runner import run_wrapper\n\nrun_wrapper(__file__, globals().get("snakemake"))\n'
# the marker comment and docstring a generated wrapper.py starts with
WRAPPER_HEAD = re.compile(r'\A(?:# generated from [^\n]*\n)?(?:"""(?:.|\n)*?"""\n)?\n*')


def checkout_root() -> Path:
    root = Path(schema.__file__).resolve().parents[1]
    if not (root / "wrappers").is_dir() or not (root / "README.md").is_file():
        raise UsageError(f"no wrappers/ and README.md beside the gensvc package in {root}",
                         hint="run this in a checkout of gensvc (PYTHONPATH or pip install -e)")
    return root


def marker(source: str) -> str:
    return f"generated from {source}; edit that, then run `{COMMAND}`"


def one_line(text) -> str:
    return " ".join(str(text or "").split())


# ---- meta.yaml ---------------------------------------------------------------------------


def meta_text(service: str, operation: str, spec: dict, shared: dict) -> str:
    props = spec["properties"]
    meta = {
        "name": f"{service} {operation}",
        "description": one_line(spec.get("description")),
        "url": spec.get("x-url"),
        "authors": list(spec.get("x-authors") or []),
    }
    for kind in ("input", "output"):
        files = file_lines(props[kind])
        if files:
            meta[kind] = files
    params = {name: param_line(service, name, prop, props["params"])
              for name, prop in props["params"].get("properties", {}).items()}
    if params:
        meta["params"] = params
    meta["notes"] = "\n".join(bullet(note) for note in notes(service, operation, spec, shared))
    dumped = yaml.dump(meta, Dumper=_MetaDumper, sort_keys=False, allow_unicode=True, width=10**6)
    return f"# {marker(f'schemas/{service}/{operation}.yaml')}\n{dumped}"


def file_lines(spec: dict) -> dict:
    required = set(spec.get("required", []))
    return {name: one_line(prop.get("description")) + (" (required)" if name in required else "")
            for name, prop in schema.named_files(spec).items()}


def param_line(service: str, name: str, prop: dict, params: dict) -> str:
    text = one_line(prop.get("description")).replace("<SERVICE>", service.upper()).rstrip(".")
    extra = []
    choices = prop.get("enum") or prop.get("items", {}).get("enum")
    if choices:
        extra.append("one of " + ", ".join(map(str, choices)))
    default = prop.get("default")
    if default not in (None, "", []) and f"default {shown_value(default)}" not in text:
        extra.append(f"default {shown_value(default)}")
    if name in params.get("required", []):
        extra.append("required")
    return "; ".join([text, *extra]) if text else "; ".join(extra)


def shown_value(value) -> str:
    """A default as a user would type it (a list comma-joined, a boolean in lower case), with
    large byte counts also in GiB."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and value >= 1 << 30 and value % (1 << 30) == 0:
        return f"{value} ({value >> 30} GiB)"
    return str(value)


def notes(service: str, operation: str, spec: dict, shared: dict) -> list[str]:
    props = spec["properties"]
    found = [one_line(note) for note in spec.get("x-notes") or []]
    for kind in ("input", "output"):
        files = props[kind]
        if files.get("x-hint"):
            found.append(f"{kind.capitalize()}s: {one_line(files['x-hint'])}.")
        elif files.get("minProperties") and not files.get("required"):
            found.append(f"{kind.capitalize()}s: give at least one. {one_line(files.get('description'))}".strip())
    if props["params"].get("x-hint"):
        found.append(f"Params: {one_line(props['params']['x-hint'])}.")
    if not spec.get("x-local"):
        found.extend(service_notes(service, shared.get(service) or []))
    found.append(f"Schema: schemas/{service}/{operation}.yaml; `gensvc {service} {operation} --help` shows the same.")
    return found


def service_notes(service: str, shared: list[str]) -> list[str]:
    """What every operation of a service shares: its own notes (``x-service-notes`` in
    schemas/settings.yaml), where its secrets come from, its default URL and rate limit."""
    found = [one_line(note) for note in shared]
    names = SECRETS.get(service, ())
    if names:
        env = [f"GENSVC_{service.upper()}_{name.upper()}" for name in names]
        env += [var for (svc, name), var in FOREIGN_ENV.items() if svc == service and name in names]
        found.append(f"Secrets: {', '.join(env)} in the environment, or `{service}: {{{', '.join(names)}}}` in the "
                     "credentials file GENSVC_CREDENTIALS (default ~/.config/gensvc/credentials.yaml, mode 0600), "
                     f"or the {names[0]} in a file named by the token_file param; never in params.")
    limit = DEFAULT_RATE_LIMITS.get(service)
    found.append(f"Defaults: url {DEFAULT_URLS[service]} (or GENSVC_{service.upper()}_URL); rate_limit "
                 + (f"{limit} (REQUESTS/SECONDS, shared by every process on the host)" if limit else "none")
                 + f" (or GENSVC_{service.upper()}_RATE_LIMIT).")
    return [note.strip() for note in found]


def bullet(note: str) -> str:
    return textwrap.fill(note, WIDTH, initial_indent="* ", subsequent_indent="  ")


class _MetaDumper(yaml.SafeDumper):
    """Block style for the notes, so a reader sees paragraphs, not an escaped string."""


def _represent_text(dumper: yaml.SafeDumper, text: str):
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_MetaDumper.add_representer(str, _represent_text)


# ---- wrapper.py docstring ----------------------------------------------------------------


def wrapper_text(service: str, operation: str, spec: dict, current: str | None) -> str:
    title = f"{service} {operation}: {one_line(spec.get('description'))}"
    doc = textwrap.fill(title, WIDTH - 3, initial_indent='"""')
    doc += f"\n\nInputs, outputs and params: meta.yaml beside this file, or `gensvc {service} {operation} --help`.\n\"\"\""
    body = WRAPPER_HEAD.sub("", current) if current is not None else WRAPPER_BODY
    return f"# {marker(f'schemas/{service}/{operation}.yaml')}\n{doc}\n\n{body}"


# ---- README table ------------------------------------------------------------------------


def readme_table(specs: dict) -> str:
    rows = [BEGIN, f"<!-- {marker('schemas/<service>/<operation>.yaml (x-summary, input, output)')} -->",
            "| wrapper | what it does | input | output |", "|---|---|---|---|"]
    for (service, operation), spec in specs.items():
        props = spec["properties"]
        summary = one_line(spec.get("x-summary") or spec.get("description")).replace("|", "\\|")
        rows.append(f"| `{service}/{operation}` | {summary} | {files_cell(props['input'])} | {files_cell(props['output'])} |")
    rows.append(END)
    return "\n".join(rows)


def files_cell(spec: dict) -> str:
    names = list(schema.named_files(spec))
    required = [n for n in names if n in spec.get("required", [])]
    optional = [n for n in names if n not in required]
    if not names:
        return "–"
    if not required and spec.get("minProperties"):
        return f"any of {quoted(optional)}"
    if not required:
        return f"{quoted(optional)} (optional)"
    return quoted(required) + (f" (+ {quoted(optional)})" if optional else "")


def quoted(names: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def readme_text(current: str, table: str) -> str:
    if current.count(BEGIN) != 1 or current.count(END) != 1 or current.index(BEGIN) > current.index(END):
        raise UsageError(f"README.md must hold {BEGIN} and then {END} once each",
                         hint="put them around the wrapper table; the text between them is generated")
    before, rest = current.split(BEGIN)
    return before + table + rest.split(END, 1)[1]


# ---- the command -------------------------------------------------------------------------


def ordered(operations: list[tuple[str, str]], specs: dict) -> list[tuple[str, str]]:
    """Services in their usual order, then the local steps; within a service, the receipt's
    way (submit, poll, what reads the status), then the rest by name."""
    def step(key):
        props = specs[key]["properties"]
        outputs, inputs = props["output"].get("properties", {}), props["input"].get("properties", {})
        return 0 if "receipt" in outputs else 1 if "status" in outputs else 2 if "status" in inputs else 3

    rank = {service: i for i, service in enumerate(SERVICES)}
    return sorted(operations, key=lambda key: (rank.get(key[0], len(SERVICES)), key[0], step(key), key[1]))


def generate(root: Path) -> dict[Path, str]:
    """Every generated file (relative to ``root``) and the text it should hold."""
    shared = (yaml.safe_load((schema.SCHEMA_DIR / "settings.yaml").read_text()) or {}).get("x-service-notes", {})
    found = [(service, operation) for service, operation, _ in schema.operations()]
    specs = {key: schema.load(*key) for key in found}
    for (service, operation), spec in specs.items():
        missing = [key for key in REQUIRED_KEYS if not spec.get(key)]
        if missing:
            raise UsageError(f"schemas/{service}/{operation}.yaml lacks {', '.join(missing)}",
                             hint=f"add {' and '.join(f'{k} ({REQUIRED_KEYS[k]})' for k in missing)}, as the other schemas do")
    specs = {key: specs[key] for key in ordered(found, specs)}
    files = {}
    for (service, operation), spec in specs.items():
        folder = Path("wrappers") / service / operation
        files[folder / "meta.yaml"] = meta_text(service, operation, spec, shared)
        wrapper = root / folder / "wrapper.py"
        files[folder / "wrapper.py"] = wrapper_text(service, operation, spec,
                                                    wrapper.read_text() if wrapper.is_file() else None)
    files[Path("README.md")] = readme_text((root / "README.md").read_text(), readme_table(specs))
    return files


def source_of(path: Path) -> str:
    if path.name == "README.md":
        return "schemas/*/*.yaml"
    return f"schemas/{path.parent.parent.name}/{path.parent.name}.yaml"


def sync(root: Path, check: bool) -> list[Path]:
    """The generated files whose text differs from what is on disk; written unless ``check``."""
    drifted = []
    for path, text in generate(root).items():
        target = root / path
        if target.is_file() and target.read_text() == text:
            continue
        drifted.append(path)
        if not check:
            target.parent.mkdir(parents=True, exist_ok=True)
            replace_text(target, text)
    return drifted


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description="Generate every wrapper's meta.yaml, its wrapper.py docstring and the README's wrapper "
        "table from schemas/<service>/<operation>.yaml (a wrapper.py is made if missing).",
        epilog="exit codes: 0 in sync (or written); 2 --check found text that differs from the schemas, "
        "or this is no checkout",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; fail if any generated text differs")
    args = parser.parse_args(argv)
    try:
        root = checkout_root()
        drifted = sync(root, check=args.check)
    except UsageError as exc:
        print(f"{COMMAND}: {exc}", file=sys.stderr)
        return exc.exit_code
    for path in drifted:
        if args.check:
            print(f"{path} differs from what {source_of(path)} says", file=sys.stderr)
        else:
            print(f"wrote {path}")
    if args.check and drifted:
        print(f"{len(drifted)} generated file(s) out of date: run `{COMMAND}` and commit the result", file=sys.stderr)
        return 2
    return 0
