"""Serving emulators over HTTP: in a background thread (`start_emulator`, for tests and
`gensvc demo`) or in the foreground until SIGINT/SIGTERM (`serve_forever`, behind
`gensvc emulate` and `python -m gensvc.emulators`).

Each service gets its own threaded werkzeug server; its advertised URL is
`http://HOST:PORT` + the service's BASE_PATH.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
from dataclasses import fields
from types import ModuleType
from typing import Any, TextIO

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .framework import EmulatorApp, EmulatorConfig, FaultSpecError, load_fault_specs

# service name -> module with create_app(config) and BASE_PATH
EMULATORS: dict[str, str] = {
    "bravo": "gensvc.emulators.bravo",
    "cgi": "gensvc.emulators.cgi",
    "opencravat": "gensvc.emulators.opencravat",
    "opencga": "gensvc.emulators.opencga",
    "cavatica": "gensvc.emulators.cavatica",
}

_CONFIG_FIELDS = {f.name for f in fields(EmulatorConfig)}


class QuietRequestHandler(WSGIRequestHandler):
    """Logs errors but not every request line (tests and demos make thousands)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def load_service(service: str) -> ModuleType:
    try:
        module_path = EMULATORS[service]
    except KeyError:
        known = ", ".join(sorted(EMULATORS))
        raise ValueError(f"no emulator for service {service!r}; known: {known}") from None
    return importlib.import_module(module_path)


def build_app(service: str, config: EmulatorConfig | None = None) -> EmulatorApp:
    """The service's app wrapped in the control API, faults and counters."""
    config = config or EmulatorConfig()
    module = load_service(service)
    return EmulatorApp(module.create_app(config), config,
                       service_kinds=getattr(module, "FAULT_KINDS", ()))


def make_config(config: EmulatorConfig | None = None, **settings: Any) -> EmulatorConfig:
    """An EmulatorConfig from keywords; unknown keywords go to `extra` (e.g. rate_limit)."""
    if config is not None and settings:
        raise TypeError("pass either config or keyword settings, not both")
    if config is not None:
        return config
    known = {key: value for key, value in settings.items() if key in _CONFIG_FIELDS}
    extra = dict(known.pop("extra", None) or {})
    extra.update({key: value for key, value in settings.items() if key not in _CONFIG_FIELDS})
    if isinstance(known.get("tokens"), str):
        known["tokens"] = parse_tokens(known["tokens"])
    known["faults"] = load_fault_specs(known.get("faults"))
    return EmulatorConfig(extra=extra, **known)


def parse_tokens(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [token.strip() for token in text.split(",") if token.strip()]


def url_host(host: str) -> str:
    """The host to put in an advertised URL: a wildcard bind is reached on loopback."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _listen(host: str, port: int, app: EmulatorApp, log_requests: bool) -> BaseWSGIServer:
    handler = WSGIRequestHandler if log_requests else QuietRequestHandler
    try:
        return make_server(host, port, app, threaded=True, request_handler=handler)
    except SystemExit:
        # werkzeug prints why and exits when it cannot bind; a library caller wants an error.
        raise OSError(f"cannot listen on {host}:{port}") from None


class RunningEmulator:
    """One emulator serving in a background thread. Use as a context manager or call stop()."""

    def __init__(self, service: str, app: EmulatorApp, server: BaseWSGIServer, host: str):
        self.service = service
        self.app = app
        self.config = app.config
        self.server = server
        self.host = host
        self.port: int = server.port
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1},
            name=f"emulator-{service}-{self.port}", daemon=True,
        )
        self._thread.start()

    @property
    def root(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def url(self) -> str:
        return self.root + load_service(self.service).BASE_PATH

    # In-process equivalents of the control API.
    def add_faults(self, specs: dict | list) -> list[dict]:
        return self.app.faults.add(specs)

    def clear_faults(self) -> None:
        self.app.faults.clear()

    def stats(self) -> dict:
        return self.app.stats.snapshot()

    def reset(self) -> None:
        self.app.reset()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningEmulator({self.service!r}, url={self.url!r})"


def start_emulator(service: str, host: str = "127.0.0.1", port: int = 0,
                   config: EmulatorConfig | None = None, log_requests: bool = False,
                   **settings: Any) -> RunningEmulator:
    """Serve one emulator in a background thread; `settings` are EmulatorConfig fields
    (time_scale, tokens, faults, seed, extra) or service extras such as rate_limit=(5, 900)."""
    config = make_config(config, **settings)
    app = build_app(service, config)
    server = _listen(host, port, app, log_requests)
    return RunningEmulator(service, app, server, host)


def _resolve_services(services: str | list[str]) -> list[str]:
    if services == "all" or services == ["all"]:
        return list(EMULATORS)
    names = [services] if isinstance(services, str) else list(services)
    for name in names:
        load_service(name)  # fails early on an unknown name
    return names


def serve_forever(services: str | list[str], host: str = "127.0.0.1", port: int = 0,
                  faults: str | list | dict | None = None, time_scale: float = 1.0,
                  tokens: list[str] | str | None = None, seed: int = 0,
                  log_requests: bool = False, out: TextIO | None = None,
                  stop: threading.Event | None = None) -> int:
    """Serve the services until SIGINT/SIGTERM (or until `stop` is set, for callers that
    embed it); print one JSON line per service when it serves. With an explicit port,
    services take port, port+1, ...; with 0, free ports. Returns 0 after a clean stop."""
    out = out or sys.stdout
    names = _resolve_services(services)
    running: list[RunningEmulator] = []
    stop = stop or threading.Event()
    previous_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous_handlers[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        for offset, name in enumerate(names):
            config = make_config(time_scale=time_scale, tokens=tokens, faults=faults, seed=seed)
            running.append(start_emulator(name, host, port + offset if port else 0,
                                          config=config, log_requests=log_requests))
        for emulator in running:
            out.write(json.dumps({"service": emulator.service, "url": emulator.url}) + "\n")
        out.flush()
        while not stop.wait(0.5):
            pass
        return 0
    finally:
        for emulator in running:
            emulator.stop()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)


def add_emulate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of `gensvc emulate` / `python -m gensvc.emulators`."""
    parser.add_argument("service", choices=sorted(EMULATORS) + ["all"],
                        help="the service to emulate, or all of them")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0,
                        help="port; 0 picks free ports; with several services: port, port+1, ...")
    parser.add_argument("--faults", default=None, metavar="SPEC",
                        help="faults active from the start: a JSON list (or object) or @file")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                        help="multiplies every window and job duration (0.01: 15 min -> 9 s)")
    parser.add_argument("--tokens", default=None, metavar="T,...",
                        help="comma-separated secrets to accept instead of the default set")
    parser.add_argument("--seed", type=int, default=0, help="seed for fault rates (default 0)")
    parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    """Run what add_emulate_arguments parsed. 0 after SIGINT/SIGTERM, 2 on a bad
    argument (faults, time scale, service), 1 when a port cannot be opened."""
    try:
        faults = load_fault_specs(args.faults)
        if not args.time_scale > 0:
            raise ValueError("--time-scale must be positive")
        return serve_forever(args.service, host=args.host, port=args.port, faults=faults,
                             time_scale=args.time_scale, tokens=parse_tokens(args.tokens),
                             seed=args.seed, log_requests=args.log_requests)
    except (FaultSpecError, ValueError) as error:
        print(f"gensvc emulate: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"gensvc emulate: {error}", file=sys.stderr)
        return 1
