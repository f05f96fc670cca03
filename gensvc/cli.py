"""``gensvc``: every operation from the command line, plus list, emulate and demo.

``gensvc <service> <operation> [--<param> VALUE]... [--input NAME=PATH]...
[--output NAME=PATH]... [--log PATH]``; flags and help come from the schema.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import re
import textwrap

from gensvc import schema
from gensvc.errors import GensvcError, UsageError
from gensvc.settings import FOREIGN_ENV, SECRETS, SERVICES

EXIT_CODES = """exit codes: 0 done; 1 internal error (the log has the traceback); 2 bad call, input or config (nothing was sent);
3 authentication or authorisation; 4 the remote job failed;
5 the service stayed unavailable through every retry, the deadline passed, or it
answered what it never sends (not JSON, a job id that is not one);
130 interrupted (SIGINT); 143 terminated (SIGTERM)"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command = argv[0]
    if command == "list":
        rows = schema.operations() + [(svc, op, text) for (svc, op), (_, text) in LOCAL_COMMANDS.items()]
        for service, operation, description in sorted(rows):
            print(f"{service:<11} {operation:<14} {description}")
        return 0
    if command == "emulate":
        return _with_emulators(command, _emulate, argv[1:])
    if command == "demo":
        from gensvc.demo import main as demo

        return _with_emulators(command, demo, argv[1:])
    if command == "dev":
        return _dev(argv[1:])
    if command in _services_with_operations():
        if tuple(argv[:2]) in LOCAL_COMMANDS:
            return LOCAL_COMMANDS[tuple(argv[:2])][0](argv[2:])
        return _operation(argv)
    if command in SERVICES:
        print(f"gensvc: {command} has no operations yet; run `gensvc list` to see every operation", file=sys.stderr)
        return 2
    print(f"gensvc: unknown command {command!r}\n{_usage()}", file=sys.stderr)
    return 2


def _services_with_operations() -> list[str]:
    """Services in their usual order, then the local steps (merge)."""
    found = {service for service, _, _ in schema.operations()}
    return [s for s in SERVICES if s in found] + sorted(found - set(SERVICES))


def _usage() -> str:
    return (
        "usage: gensvc list | gensvc <service> <operation> [options] | "
        "gensvc emulate <service>|all [options] | gensvc demo [options]\n"
        f"services: {', '.join(_services_with_operations())}\n{EXIT_CODES}"
    )


def _cancer_types(argv: list[str]) -> int:
    from gensvc.services.cgi import cancer_types

    parser = argparse.ArgumentParser(
        prog="gensvc cgi cancer-types",
        description="CGI's cancer type codes and names (tab-separated), from the list shipped with gensvc; "
        "sends nothing. `gensvc cgi submit --cancer-type` takes a code, in any case.",
    )
    parser.add_argument("words", nargs="*", metavar="WORD", help="show only codes or names containing every WORD")
    words = [w.lower() for w in parser.parse_args(argv).words]
    for code, name in cancer_types().items():
        if all(w in f"{code} {name}".lower() for w in words):
            print(f"{code}\t{name}")
    return 0


# (service, command) -> (function of argv, its line in `gensvc list`): local commands that send nothing
LOCAL_COMMANDS = {("cgi", "cancer-types"): (_cancer_types, "CGI's cancer type codes and names (local: sends nothing).")}


def _dev(argv: list[str]) -> int:
    """Tools for working on gensvc itself; left out of the usage line, as users never need them."""
    if argv[:1] == ["sync-docs"]:
        from gensvc.docsync import main as sync_docs

        return sync_docs(argv[1:])
    usage = "usage: gensvc dev sync-docs [--check]  (the docs generated from schemas/)"
    if argv[:1] in (["-h"], ["--help"]):
        print(usage)
        return 0
    print(usage, file=sys.stderr)
    return 2


EMULATOR_DEPENDENCIES = ("flask", "werkzeug")  # pyproject.toml's `emulators` extra


def _with_emulators(command: str, run, argv: list[str]) -> int:
    """emulate and demo serve the emulators; without their extra, one line says how to get it."""
    try:
        import gensvc.emulators.server  # noqa: F401  (imports Flask and werkzeug)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in EMULATOR_DEPENDENCIES:
            raise
        print(f"gensvc {command}: the emulators need {exc.name}, which is not installed; "
              "pip install 'gensvc[emulators]'", file=sys.stderr)
        return 2
    return run(argv)


def _emulate(argv: list[str]) -> int:
    from gensvc.emulators.server import add_emulate_arguments, run_from_args

    parser = argparse.ArgumentParser(prog="gensvc emulate", description="Serve local emulators of the services.")
    add_emulate_arguments(parser)
    return run_from_args(parser.parse_args(argv)) or 0


def _operation(argv: list[str]) -> int:
    from gensvc.runner import Call, execute

    if len(argv) < 2 or argv[1].startswith("-"):
        names = [op for svc, op, _ in schema.operations() if svc == argv[0]]
        names += [op for svc, op in LOCAL_COMMANDS if svc == argv[0]]
        print(f"usage: gensvc {argv[0]} <operation> ...; operations: {', '.join(names)}", file=sys.stderr)
        return 2
    service, operation = argv[0], argv[1]
    try:
        operation_schema = schema.load(service, operation)
    except GensvcError as exc:
        print(f"gensvc: {exc}", file=sys.stderr)
        return exc.exit_code
    parser = build_parser(service, operation, operation_schema)
    args = parser.parse_args(argv[2:])
    try:
        call = Call(
            service,
            operation,
            input=_pairs(getattr(args, "input", []), "--input", operation_schema["properties"]["input"]),
            output=_pairs(getattr(args, "output", []), "--output", operation_schema["properties"]["output"]),
            params=_params(args, operation_schema["properties"]["params"]),
            log=args.log,
        )
    except UsageError as exc:
        print(f"gensvc {service} {operation}: {exc}", file=sys.stderr)
        return exc.exit_code
    return execute(call)


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
    for name, file_spec in spec["properties"].items():
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


if __name__ == "__main__":
    sys.exit(main())
