"""`python -m gensvc.emulators <service>|all [--host H] [--port P] [--faults SPEC]
[--time-scale X] [--tokens T,...]`: the same as `gensvc emulate`."""

import argparse
import sys

from .server import add_emulate_arguments, run_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gensvc.emulators",
        description="Serve local emulators of the remote services until SIGINT/SIGTERM; "
                    "prints one JSON line {\"service\", \"url\"} per service once it serves.",
    )
    add_emulate_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
