"""``gensvc``: every operation from the command line, plus list, emulate and demo.

``gensvc <service> <operation> [--<param> VALUE]... [--input NAME=PATH]...
[--output NAME=PATH]... [--log PATH]``; flags and help come from the schema.
"""

from __future__ import annotations

import argparse
import json
import sys

from gensvc import schema
from gensvc.errors import GensvcError, UsageError
from gensvc.settings import SERVICES

EXIT_CODES = """exit codes: 0 done; 2 bad call, input or config (nothing was sent);
3 authentication or authorisation; 4 the remote job failed;
5 the service stayed unavailable through every retry or the deadline passed;
130 interrupted (SIGINT); 143 terminated (SIGTERM)"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command = argv[0]
    if command == "list":
        for service, operation, description in schema.operations():
            print(f"{service:<11} {operation:<14} {description}")
        return 0
    if command == "emulate":
        return _emulate(argv[1:])
    if command == "demo":
        from gensvc.demo import main as demo

        return demo(argv[1:])
    if command in SERVICES or command == "merge":
        return _operation(argv)
    print(f"gensvc: unknown command {command!r}\n{_usage()}", file=sys.stderr)
    return 2


def _usage() -> str:
    return (
        "usage: gensvc list | gensvc <service> <operation> [options] | "
        "gensvc emulate <service>|all [options] | gensvc demo\n"
        f"services: {', '.join(SERVICES)}\n{EXIT_CODES}"
    )


def _emulate(argv: list[str]) -> int:
    from gensvc.emulators.server import add_emulate_arguments, run_from_args

    parser = argparse.ArgumentParser(prog="gensvc emulate", description="Serve local emulators of the services.")
    add_emulate_arguments(parser)
    return run_from_args(parser.parse_args(argv)) or 0


def _operation(argv: list[str]) -> int:
    from gensvc.runner import Call, execute

    if len(argv) < 2 or argv[1].startswith("-"):
        names = [op for svc, op, _ in schema.operations() if svc == argv[0]]
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
            input=_pairs(args.input, "--input", operation_schema["properties"]["input"]),
            output=_pairs(args.output, "--output", operation_schema["properties"]["output"]),
            params=_params(args, operation_schema["properties"]["params"]),
            log=args.log,
        )
    except UsageError as exc:
        print(f"gensvc {service} {operation}: {exc}", file=sys.stderr)
        return exc.exit_code
    return execute(call)


def build_parser(service: str, operation: str, operation_schema: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"gensvc {service} {operation}",
        description=operation_schema.get("description", "").strip(),
        epilog=EXIT_CODES + "\nsecrets come from the environment, a 0600 credentials file or --token-file; never from flags",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    props = operation_schema["properties"]
    inputs = ", ".join(props["input"].get("properties", {})) or "none"
    outputs = ", ".join(props["output"].get("properties", {})) or "none"
    parser.add_argument("--input", action="append", default=[], metavar="NAME=PATH", help=f"input files ({inputs})")
    parser.add_argument("--output", action="append", default=[], metavar="NAME=PATH", help=f"output files ({outputs})")
    parser.add_argument("--log", metavar="PATH", help="log file (default: stderr)")
    params = props["params"]
    required = set(params.get("required", []))
    group = parser.add_argument_group("params")
    for name, spec in params.get("properties", {}).items():
        flags = [f"--{name.replace('_', '-')}"] + ([f"--{name}"] if "_" in name else [])
        kind = _kind(spec)
        help_text = (spec.get("description") or "").strip() + (" (required)" if name in required else "")
        help_text = help_text.replace("%", "%%")
        if kind == "boolean":
            group.add_argument(*flags, dest=name, nargs="?", const="true", metavar="true|false", help=help_text)
        elif kind == "array":
            group.add_argument(*flags, dest=name, action="append", metavar="VALUE[,VALUE]", help=help_text)
        else:
            group.add_argument(*flags, dest=name, metavar=kind.upper(), help=help_text)
    return parser


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
