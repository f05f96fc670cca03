"""`python -m gensvc.emulators <service>|all [--host H] [--port P] [--faults SPEC]
[--time-scale X] [--tokens T,...]`: the same as `gensvc emulate`."""

import argparse
import sys

PROG = "python -m gensvc.emulators"


def main(argv: list[str] | None = None) -> int:
    try:
        from .server import add_emulate_arguments, run_from_args
    except ModuleNotFoundError as exc:  # the emulators' extra is not installed
        if (exc.name or "").partition(".")[0] not in ("flask", "werkzeug"):
            raise
        print(f"{PROG}: the emulators need {exc.name}, which is not installed; "
              "pip install 'gensvc[emulators]'", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve local emulators of the remote services until SIGINT/SIGTERM; "
                    "prints one JSON line {\"service\", \"url\"} per service once it serves.",
    )
    add_emulate_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
