"""``gensvc``: every operation from the command line, plus list, emulate and demo.

``gensvc <service> <operation> [--<param> VALUE]... [--input NAME=PATH]...
[--output NAME=PATH]... [--log PATH]``; flags and help come from the schema.
"""

from __future__ import annotations

import argparse
import sys

from gensvc import schema
from gensvc.errors import GensvcError, UsageError
from gensvc.flags import EXIT_CODES, call_from_argv
from gensvc.settings import SERVICES


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
    found = schema.services_with_operations()
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
    from gensvc.runner import execute

    if len(argv) < 2 or argv[1].startswith("-"):
        names = sorted(path.stem for path in (schema.SCHEMA_DIR / argv[0]).glob("*.yaml"))
        names += [op for svc, op in LOCAL_COMMANDS if svc == argv[0]]
        print(f"usage: gensvc {argv[0]} <operation> ...; operations: {', '.join(names)}", file=sys.stderr)
        return 2
    service, operation = argv[0], argv[1]
    try:
        schema.load(service, operation)
    except GensvcError as exc:
        print(f"gensvc: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        call = call_from_argv(service, operation, argv[2:])
    except UsageError as exc:
        print(f"gensvc {service} {operation}: {exc}", file=sys.stderr)
        return exc.exit_code
    return execute(call)


if __name__ == "__main__":
    sys.exit(main())
