"""Local, faithful emulators of the remote services, with fault injection.

Independent of `gensvc.services` and `gensvc.core` on purpose: shared code could hide a
shared mistake. Each service module exposes `create_app(config) -> WSGI app` and
`BASE_PATH`; the advertised service URL is `http://HOST:PORT` + BASE_PATH.

    with start_emulator("bravo", tokens=["t"]) as bravo:
        requests.get(bravo.url + "region", params=..., headers={"Authorization": "Bearer t"})

`python -m gensvc.emulators bravo --port 0` (and `gensvc emulate`) serve in the foreground.
"""

from .framework import EmulatorApp, EmulatorConfig, FaultSpecError, load_fault_specs
from .server import (
    EMULATORS,
    RunningEmulator,
    add_emulate_arguments,
    build_app,
    run_from_args,
    serve_forever,
    start_emulator,
)

__all__ = [
    "EMULATORS",
    "EmulatorApp",
    "EmulatorConfig",
    "FaultSpecError",
    "RunningEmulator",
    "add_emulate_arguments",
    "build_app",
    "load_fault_specs",
    "run_from_args",
    "serve_forever",
    "start_emulator",
]
