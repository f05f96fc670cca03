"""Local, faithful emulators of the remote services, with fault injection.

Independent of `gensvc.services` and `gensvc.core` on purpose: shared code could hide a
shared mistake. Each service module exposes `create_app(config) -> WSGI app` and
`BASE_PATH`; the advertised service URL is `http://HOST:PORT` + BASE_PATH.

    with start_emulator("bravo", tokens=["t"]) as bravo:
        requests.get(bravo.url + "region", params=..., headers={"Authorization": "Bearer t"})

`python -m gensvc.emulators bravo --port 0` (and `gensvc emulate`) serve in the foreground.
"""

# Loaded on first use (PEP 562), so that `python -m gensvc.emulators` can say in one line that
# Flask is missing: importing this package itself needs neither Flask nor werkzeug.
_EXPORTS = {
    "EmulatorApp": "framework", "EmulatorConfig": "framework", "FaultSpecError": "framework",
    "load_fault_specs": "framework", "EMULATORS": "server", "RunningEmulator": "server",
    "add_emulate_arguments": "server", "build_app": "server", "run_from_args": "server",
    "serve_forever": "server", "start_emulator": "server",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


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
