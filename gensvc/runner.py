"""One way in for every operation: a Snakemake object or argv -> outputs.

The runner validates the call (inputs readable, outputs writable) before any
network call, resolves settings and secrets, runs the operation with its outputs
staged (gensvc.outputs), moves them into place only when everything succeeded,
writes a provenance record for each, and turns expected failures into one line
and an exit code.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import gensvc
from gensvc import schema
from gensvc.call import Call
from gensvc.core import progress
from gensvc.core.files import file_sha256, replace_text
from gensvc.core.redaction import RedactingFilter, redact
from gensvc.errors import GensvcError, UsageError
from gensvc.outputs import plan_outputs, staged_outputs, write_provenance
from gensvc.settings import SECRETS, ServiceSettings, resolve, state_dir

log = logging.getLogger("gensvc")

# operations that send nothing anywhere: no settings, no session
LOCAL_MODULES = {"merge": "gensvc.merge"}


@dataclass
class Step:
    """What an operation gets: its settings, one HTTP session, staged file paths."""

    call: Call
    settings: ServiceSettings | None
    session: object | None
    input: dict
    output: dict
    versions: dict = field(default_factory=dict)
    committed: list = field(default_factory=list)  # callables run once every output is in place

    @property
    def url(self) -> str | None:
        return self.settings.url if self.settings else None


def run_wrapper(wrapper_file: str, smk=None) -> None:
    """Entry of every ``wrappers/<service>/<operation>/wrapper.py``; run as a script (no
    Snakemake object), its argv is that of ``gensvc <service> <operation>``."""
    service, operation = Path(wrapper_file).parts[-3:-1]
    try:
        if smk is None:
            from gensvc.flags import call_from_argv

            call = call_from_argv(service, operation, sys.argv[1:])
        else:
            call = Call.from_snakemake(service, operation, smk)
    except GensvcError as exc:
        message = f"gensvc {service} {operation}: {exc}"
        log_files = list(smk.log) if smk is not None else []
        if log_files:  # Snakemake points the user at the rule's log
            with logging_to(str(log_files[0])):
                log.error(message)
        print(message, file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(execute(call))


def execute(call: Call) -> int:
    """Run one call; returns the exit code."""
    try:
        _check_log_file(call.log)
    except UsageError as exc:  # nowhere to log to yet: stderr alone
        print(f"gensvc {call.service} {call.operation}: {exc}", file=sys.stderr)
        return exc.exit_code
    with logging_to(call.log):
        previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
        try:
            run(call)
            return 0
        except GensvcError as exc:
            message = redact(f"gensvc {call.service} {call.operation}: {exc}")
            if call.log:
                log.error(message)
            print(message, file=sys.stderr)
            return exc.exit_code
        except OSError as exc:  # a path the user gave cannot be read or written
            message = redact(f"gensvc {call.service} {call.operation}: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
            if call.log:
                log.error(message)
            print(f"{message}; check the path and its permissions", file=sys.stderr)
            return UsageError.exit_code
        except Terminated as exc:
            log.error("gensvc %s %s: terminated (%s); no output was written", call.service, call.operation,
                      signal.Signals(exc.signum).name)
            return 128 + exc.signum
        except KeyboardInterrupt:
            log.error("gensvc %s %s: interrupted; no output was written", call.service, call.operation)
            return 130
        except Exception as exc:  # a bug or a broken install, not the user's doing
            return _report_internal_error(call, exc)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


INTERNAL_ERROR = 1  # exit code of an unexpected exception (README: exit codes)


def _report_internal_error(call: Call, exc: Exception) -> int:
    """One line on stderr; the traceback in the rule's log, or, with no log, in a file of its
    own under the state dir that the line names."""
    summary = redact(f"internal error in gensvc {call.service} {call.operation}: "
                     f"{type(exc).__name__}: {' '.join(str(exc).split())}")
    if isinstance(exc, ImportError):
        summary += " (gensvc's install is incomplete: pip install gensvc again, which brings its dependencies)"
    details = redact("".join(traceback.format_exception(exc))).rstrip()
    if call.log:
        log.error("%s\n%s", summary, details)
        print(f"{summary}; the log has the details ({call.log})", file=sys.stderr)
        return INTERNAL_ERROR
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = state_dir() / "errors" / f"{call.service}-{call.operation}-{stamp}-{os.getpid()}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_text(path, f"{summary}\n{details}\n")
    except OSError:  # nowhere to keep it: the traceback goes to stderr after the line
        print(f"{summary}; the traceback follows\n{details}", file=sys.stderr)
        return INTERNAL_ERROR
    print(f"{summary}; the traceback is in {path}", file=sys.stderr)
    return INTERNAL_ERROR


def run(call: Call) -> dict:
    """Validate, resolve, run, commit outputs. Raises GensvcError."""
    _refuse_secret_params(call)
    schema.validate(call.service, call.operation, call.as_document())
    _check_inputs(call)
    progress.interval()  # a bad GENSVC_PROGRESS_INTERVAL stops the call before anything is sent
    outputs = plan_outputs(call.output)  # before any request: an unwritable output costs no network work
    if call.service in LOCAL_MODULES:
        settings, session, params = None, None, dict(call.params)
        module = importlib.import_module(LOCAL_MODULES[call.service])
    else:
        from gensvc.core.http import build_session

        settings, params = resolve(call.service, call.params)
        module = importlib.import_module(f"gensvc.services.{call.service}")
        errors = getattr(module, "ERRORS", None)  # the service's error map says which 5xx are final
        session = build_session(settings, is_final=errors.is_final if errors else None,
                                maintenance=errors.maintenance if errors else None)
    operation = module.OPERATIONS[call.operation]
    started = time.time()
    log.info("gensvc %s %s%s", call.service, call.operation, f" against {settings.url}" if settings else "")
    with staged_outputs(outputs) as staged:
        step = Step(call, settings, session, input=call.input, output=staged)
        details = operation(step, **params) or {}
        record = _provenance(call, step, details, started)
    for callback in step.committed:  # e.g. a checkpoint no longer needed
        callback()
    write_provenance(outputs, record, log)
    log.info("gensvc %s %s done: %d requests in %.1f s", call.service, call.operation, record["requests"], record["seconds"])
    return record


def _refuse_secret_params(call: Call) -> None:
    for name in SECRETS.get(call.service, ()) + ("password", "token", "auth_token", "api_key"):
        if name in call.params:
            env = f"GENSVC_{call.service.upper()}_{name.upper()}"
            raise UsageError(
                f"{call.service} {call.operation}: a secret ({name}) was given in params",
                hint=f"set {env}, a credentials file, or params token_file instead; params are recorded in plain text",
            )


def _check_inputs(call: Call) -> None:
    for name, paths in call.input.items():
        for path in paths if isinstance(paths, list) else [paths]:
            if not Path(path).is_file():
                raise UsageError(f"input {name} {path} does not exist or is not a file")


def _provenance(call: Call, step: Step, details: dict, started: float) -> dict:
    finished = time.time()
    return {
        "gensvc": gensvc.__version__,
        "service": call.service,
        "operation": call.operation,
        "url": step.settings.url if step.settings else None,
        "versions": {**step.versions, **details.get("versions", {})},
        "request": {
            "params": {k: v for k, v in call.params.items() if k != "token_file"},
            "input": {name: _digest(paths) for name, paths in call.input.items()},
        },
        "requests": step.session.request_count if step.session else 0,
        "details": {k: v for k, v in details.items() if k != "versions"},
        "started": _iso(started),
        "finished": _iso(finished),
        "seconds": round(finished - started, 3),
    }


def _digest(paths):
    if isinstance(paths, list):
        return [_digest(p) for p in paths]
    return {"path": str(paths), "sha256": file_sha256(paths)}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def _check_log_file(log_file: str | None) -> None:
    if not log_file:
        return
    try:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a"):
            pass
    except OSError as exc:
        raise UsageError(f"log {log_file} cannot be written ({exc.strerror or exc})",
                         hint="choose another log path or fix its directory's permissions") from None


@contextmanager
def logging_to(log_file: str | None):
    """Log to the rule's log file, or stderr; secrets masked on every line.

    On stderr the default is WARNING, so a shell user sees only what matters.
    """
    level = os.environ.get("GENSVC_LOG_LEVEL", "INFO" if log_file else "WARNING").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        level = "INFO"

    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, mode="w")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's kill): unwinds like Ctrl-C, so staged outputs are removed, but
    exits 128 + the signal (143), the code schedulers report for it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame):
    raise Terminated(signum)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
