"""An operation's command line, from its schema: the flags of `gensvc <service> <operation>`
(and of a wrapper run as a script), and argv -> Call.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import textwrap

from gensvc import schema
from gensvc.call import Call
from gensvc.errors import UsageError
from gensvc.settings import FOREIGN_ENV, SECRETS

EXIT_CODES = """exit codes: 0 done; 1 internal error (the log has the traceback); 2 bad call, input or config (nothing was sent);
3 authentication or authorisation; 4 the remote job failed;
5 the service stayed unavailable through every retry, the deadline passed, or it
answered what it never sends (not JSON, a job id that is not one);
130 interrupted (SIGINT); 143 terminated (SIGTERM)"""


def call_from_argv(service: str, operation: str, argv: list[str]) -> Call:
    """The call that argv (the words after `gensvc <service> <operation>`) asks for.

    Raises UsageError; argparse itself answers --help and malformed flags (and exits).
    """
    operation_schema = schema.load(service, operation)
    args = build_parser(service, operation, operation_schema).parse_args(argv)
    props = operation_schema["properties"]
    return Call(
        service,
        operation,
        input=_pairs(getattr(args, "input", []), "--input", props["input"]),
        output=_pairs(getattr(args, "output", []), "--output", props["output"]),
        params=_params(args, props["params"]),
        log=args.log,
    )


def build_parser(service: str, operation: str, operation_schema: dict) -> argparse.ArgumentParser:
    local = bool(operation_schema.get("x-local"))
    parser = argparse.ArgumentParser(
        prog=f"gensvc {service} {operation}",
        description=operation_schema.get("description", "").strip(),
        epilog=EXIT_CODES if local else f"{_secrets_line(service)}\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    props = operation_schema["properties"]
    for kind in ("input", "output"):
        files = props[kind]
        if files.get("properties"):
            parser.add_argument(f"--{kind}", action="append", default=[], metavar="NAME=PATH",
                                help=f"one {kind} file, named as below; repeat for each")
    parser.add_argument("--log", metavar="PATH", help="log file (default: stderr)")
    for kind in ("input", "output"):
        if props[kind].get("properties"):
            parser.add_argument_group(f"{kind}s (--{kind} NAME=PATH)", _files_text(props[kind]))
    params = props["params"]
    required = set(params.get("required", []))
    group = parser.add_argument_group("params")
    for name, spec in params.get("properties", {}).items():
        flags = [f"--{name.replace('_', '-')}"] + ([f"--{name}"] if "_" in name else [])
        kind = _kind(spec)
        help_text = _param_text(service, spec) + (" (required)" if name in required else "")
        help_text = help_text.replace("%", "%%")
        choices = spec.get("enum") or spec.get("items", {}).get("enum")
        metavar = "{%s}" % ",".join(map(str, choices)) if choices else None
        if kind == "boolean":
            group.add_argument(*flags, dest=name, nargs="?", const="true", metavar="true|false", help=help_text)
        elif kind == "array":
            group.add_argument(*flags, dest=name, action="append", metavar=metavar or "VALUE[,VALUE]", help=help_text)
        else:
            group.add_argument(*flags, dest=name, metavar=metavar or kind.upper(), help=help_text)
    return parser


def _files_text(spec: dict) -> str:
    """One row per input or output name: the name, whether it is required, what it holds.

    Rows line up with argparse's own (it indents every line of a group's text by 2).
    """
    required = set(spec.get("required", []))
    width, column = _help_width() - 2, 22
    rows = []
    for name, file_spec in schema.named_files(spec).items():
        label = f"{name}{' (required)' if name in required else ''}"
        text = (file_spec.get("description") or "").strip()
        lead = label.ljust(column) if len(label) < column - 1 else label + "\n" + " " * column
        rows.append(textwrap.fill(text, width, initial_indent=lead, subsequent_indent=" " * column) if text else label)
    if spec.get("x-hint"):
        rows.append(f"({spec['x-hint']})")
    elif spec.get("minProperties") and not required:
        rows.append("(give at least one)")
    return "\n".join(rows)


def _help_width() -> int:
    return min(shutil.get_terminal_size().columns, 100) - 2


def _param_text(service: str, spec: dict) -> str:
    """A param's description, with its default when the schema declares one."""
    text = (spec.get("description") or "").strip().replace("<SERVICE>", service.upper())
    default = spec.get("default")
    if default not in (None, "", []):
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        shown = str(shown).lower() if isinstance(default, bool) else shown
        # a description may already say "default 6"; it is never said twice
        if not re.search(rf"\bdefault {re.escape(str(shown))}\b", text):
            text = f"{text}; default {shown}" if text else f"default {shown}"
    return text


def _secrets_line(service: str) -> str:
    """Where this service's secrets come from, by their variables' names."""
    names = SECRETS.get(service, ())
    if not names:
        return "this service needs no secret"
    env = [f"GENSVC_{service.upper()}_{name.upper()}" for name in names]
    env += [var for (svc, name), var in FOREIGN_ENV.items() if svc == service and name in names]
    return textwrap.fill(
        f"secrets: {', '.join(env)} in the environment, or {service}: {{{', '.join(names)}}} in the credentials "
        f"file GENSVC_CREDENTIALS (default ~/.config/gensvc/credentials.yaml, mode 0600), or the {names[0]} "
        "in a file named by --token-file; never as flags",
        _help_width(),
    )


def _kind(spec: dict) -> str:
    """The flag's shape: a list if the schema allows one, else the scalar type."""
    alternatives = spec.get("oneOf") or spec.get("anyOf")
    if alternatives:
        kinds = [_kind(alt) for alt in alternatives]
        return "array" if "array" in kinds else kinds[0]
    kind = spec.get("type", "string")
    if isinstance(kind, list):
        return "array" if "array" in kind else next(k for k in kind if k != "null")
    return kind


def _pairs(items: list[str], flag: str, spec: dict) -> dict:
    found: dict = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"{flag} {item!r} is not NAME=PATH")
        found.setdefault(name, []).append(path)
    props = spec.get("properties", {})
    return {
        name: paths if _kind(props.get(name, {})) == "array" else (paths[0] if len(paths) == 1 else paths)
        for name, paths in found.items()
    }


def _params(args: argparse.Namespace, spec: dict) -> dict:
    params = {}
    for name, prop in spec.get("properties", {}).items():
        value = getattr(args, name, None)
        if value is None:
            continue
        params[name] = _convert(name, value, prop)
    return params


def _convert(name: str, value, prop: dict):
    kind = _kind(prop)
    try:
        if kind == "array":
            items = [part for chunk in value for part in chunk.split(",") if part != ""]
            return [_convert(name, item, prop.get("items", {})) for item in items]
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            lowered = str(value).lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return lowered in ("true", "1", "yes")
        if kind == "object":
            return json.loads(value)
    except (ValueError, json.JSONDecodeError):
        raise UsageError(f"--{name.replace('_', '-')} {value!r} is not a valid {kind}") from None
    return value
