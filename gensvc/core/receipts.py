"""Exactly-once submission and the receipt handed from submit to poll to download.

An idempotency key (sha256 of service, base URL, operation, canonical params
and input digests) names a submission. A journal entry under the state dir is
written before the request and completed after it; the key travels with the
job (its note, title or name), so a rerun after a crash finds the job — in the
journal, or in the server's own job list — instead of submitting it again. The
same tag makes a submission safe to retry: when its answer is lost, the job is
looked up before the submission is sent again. The journal also notes when each attempt
was sent: a rerun that finds a run died with its request at the server waits, looking for
the job, as long as that run would have waited for its answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from filelock import FileLock

import gensvc
from gensvc.core.files import file_sha256, replace_json
from gensvc.core.http import OutcomeUnknown
from gensvc.core import progress

log = logging.getLogger("gensvc.receipts")

KEY_PREFIX = "gensvc:"


def idempotency_key(service: str, base_url: str, operation: str, params: dict, inputs: dict) -> str:
    digests = {
        name: [file_sha256(p) for p in paths] if isinstance(paths, list) else file_sha256(paths)
        for name, paths in sorted(inputs.items())
    }
    canonical = json.dumps(
        {"service": service, "url": base_url, "operation": operation, "params": params, "inputs": digests},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_tag(key: str) -> str:
    """How the key is written into a job's note or title."""
    return f"{KEY_PREFIX}{key[:32]}"


def now_iso(timespec: str = "seconds") -> str:
    return datetime.now(timezone.utc).isoformat(timespec=timespec)


def submitted_epoch(receipt: dict) -> float | None:
    """When the receipt's job was submitted (epoch seconds), for a poll to know the job's age;
    None if the receipt does not say. A reused job is older than its receipt: the age is
    then too short, which only makes the checks come sooner."""
    try:
        stamp = datetime.fromisoformat(str(receipt["submitted_at"]))
    except (KeyError, ValueError):
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)).timestamp()


class Journal:
    """One small JSON file per submission under ``<state_dir>/journal/<service>/``."""

    def __init__(self, state_dir: Path, service: str):
        self.directory = Path(state_dir) / "journal" / service
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def lock(self, key: str) -> FileLock:
        # two processes with the same key must not both submit
        return FileLock(str(self._path(key)) + ".lock")

    def lookup(self, key: str) -> dict | None:
        try:
            return json.loads(self._path(key).read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("journal entry %s is unreadable; treating it as a crash before completion", key)
            return {"key": key, "state": "submitting"}

    def begin(self, key: str, request: dict) -> None:
        self._write(key, {"key": key, "state": "submitting", "began": now_iso(), "request": request})

    def sending(self, key: str, answer_within: float) -> None:
        """An attempt leaves now; its answer may take ``answer_within`` seconds: until then,
        a job it makes may still appear on the server."""
        entry = self.lookup(key) or {"key": key, "state": "submitting"}
        self._write(key, {**entry, "unknown_until": time.time() + answer_within})

    def complete(self, key: str, job_id: str) -> None:
        entry = self.lookup(key) or {"key": key}
        self._write(key, {**entry, "state": "submitted", "job_id": job_id, "completed": now_iso()})

    def forget(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _write(self, key: str, entry: dict) -> None:
        replace_json(self._path(key), entry, indent=1)


def submit_once(
    settings,
    key: str,
    request: dict,
    *,
    session,
    find_existing: Callable[[str], str | None],
    submit: Callable[[], str],
    reusable: Callable[[str], bool] = lambda job_id: True,
    find_sent: Callable[[str], str | None] | None = None,
) -> tuple[str, bool]:
    """The job for ``key``: found again if it was submitted before, else submitted now.

    A job the journal remembers is reused unless ``reusable`` says it failed or
    is gone, so a rerun after a failure submits afresh. ``find_existing`` finds a
    reusable job carrying the key's tag on the server; ``find_sent`` (default: the
    same) any job carrying it, failed or not: what a lost answer may have made.
    The submission is retried as ``send_submission`` says. Returns (job_id, reused).
    """
    journal = Journal(settings.state_dir, settings.service)
    with journal.lock(key):
        entry = journal.lookup(key)
        if entry and entry.get("job_id"):
            if reusable(entry["job_id"]):
                log.info("reusing job %s submitted earlier with the same inputs and params", entry["job_id"])
                return entry["job_id"], True
            log.info("job %s from an earlier submission failed or is gone; submitting again", entry["job_id"])
            journal.forget(key)
        existing = find_existing(key)
        if not existing and entry and _sent_by_a_dead_run(entry):
            existing = _await_dead_runs_job(entry["unknown_until"], lambda: (find_sent or find_existing)(key),
                                            lambda: find_existing(key))
        if existing:
            log.info("found job %s on the server for this submission; not submitting again", existing)
            journal.complete(key, existing)
            return existing, True
        journal.begin(key, request)
        gap = SubmissionGap(host_lock_dir(), settings.service, settings.url)
        answer_within = sum(session.timeout) if isinstance(session.timeout, tuple) else float(session.timeout)

        def spaced_submit() -> str:
            with gap.turn():  # every attempt: a resubmission must not share a second-resolution id
                journal.sending(key, answer_within)
                return submit()

        job_id, _ = send_submission(session, spaced_submit, lambda: (find_sent or find_existing)(key))
        journal.complete(key, job_id)
        return job_id, False


def _sent_by_a_dead_run(entry: dict) -> bool:
    """The journal holds a submission sent and never completed (its run was killed) whose
    answer might still be coming: the server may be making its job right now."""
    return entry.get("state") == "submitting" and isinstance(entry.get("unknown_until"), (int, float)) \
        and entry["unknown_until"] > time.time()


def _await_dead_runs_job(until: float, find_sent: Callable[[], str | None],
                         find_reusable: Callable[[], str | None], every: float = 1.0) -> str | None:
    """Look for the job of a dead run's submission until ``until`` (epoch seconds): the
    reusable job if it appears, None if it does not or it failed (then submit afresh)."""
    log.info("an earlier run died while its submission was with the server, which may still be making its job; "
             "looking for it until %s before submitting again",
             datetime.fromtimestamp(until, timezone.utc).isoformat(timespec="seconds"))
    while True:
        if find_sent():
            return find_reusable()
        left = until - time.time()
        if left <= 0:
            log.info("no job appeared for the earlier run's submission; submitting it now")
            return None
        time.sleep(min(every, left))


def submit_job(step, key: str, request: dict, *, find_job: Callable[..., str | None], submit: Callable[[], str],
               reusable: Callable[[str], bool]) -> dict:
    """The end every submit operation shares: the job for ``key`` (``submit_once``),
    then its receipt in the ``receipt`` output. ``find_job(tag, failed_too=False)``
    finds a job carrying ``tag`` on the server (a failed one too if asked). Returns
    the operation's details."""
    job_id, reused = submit_once(
        step.settings, key, request, session=step.session,
        find_existing=lambda k: find_job(key_tag(k)),
        find_sent=lambda k: find_job(key_tag(k), failed_too=True),
        submit=submit,
        reusable=reusable,
    )
    receipt = make_receipt(step.settings, "submit", job_id, key, request)
    receipt["reused"] = reused
    write_json(step.output["receipt"], receipt)
    return {"job_id": job_id, "reused": reused}


def send_submission(session, submit: Callable[[], str], find_sent: Callable[[], str | None]) -> tuple[str, bool]:
    """Submit, retrying without ever making two jobs; one budget of attempts and one
    deadline (the session's) for every request in it. Returns (job_id, found).

    The session itself sends a submission again after 429/503 or when no connection
    was made: the server did not take it. After any other 5xx, a connection lost
    after sending or no answer in time, the server may have made the job: wait as
    before a retry, look for it by its tag (``find_sent``), and submit again only if
    it is not there; ``found`` says the job came from that look-up.
    """
    with session.budget() as budget:
        while True:
            try:
                return submit(), False
            except OutcomeUnknown as unknown:
                log.info("the submission's answer was lost (%s); looking for its job before sending it again",
                         unknown.what)
                session.wait_after(budget, unknown)
            job_id = find_sent()
            if job_id:
                log.info("the submission went through after all: job %s; not sending it again", job_id)
                return job_id, True
            log.info("no job carries this submission's tag; sending it again")


class SubmissionGap:
    """One submission at a time to a service at a URL from this host, each sent at least ``SECONDS``
    after the one before it was answered.

    Some services (OpenCRAVAT) name a job by the second its request arrived and give a second
    submission in that second the first one's job. Spacing the sends is not enough: a request
    can reach the server at any moment until its answer is back (a busy host, a slow network),
    so the next one waits for that answer and then for the gap.
    """

    SECONDS = 1.1

    def __init__(self, directory: Path, service: str, url: str | None):
        key = hashlib.sha256(f"{service}\0{url or ''}".encode()).hexdigest()[:16]
        directory.mkdir(parents=True, exist_ok=True)
        self.service = service
        self._lock = FileLock(str(directory / f"{service}-submit-{key}.lock"))
        self._last = directory / f"{service}-submit-{key}.last"

    @contextmanager
    def turn(self):
        with self._lock:
            wait = self._last_sent() + self.SECONDS - time.time()
            if wait > 0:
                progress.current().sleep(wait, f"for {self.service}'s previous submission")
            self._mark()  # before sending too: a process killed mid-request still holds the next one back
            try:
                yield
            finally:
                self._mark()

    def _last_sent(self) -> float:
        try:
            return float(self._last.read_text())
        except (OSError, ValueError):
            return 0.0

    def _mark(self) -> None:
        self._last.write_text(repr(time.time()))  # read under the lock only: no torn value


def host_lock_dir() -> Path:
    """Shared by every workflow of this user on the host, whatever its state dir:
    two workflows submitting in the same second would still collide."""
    return Path(tempfile.gettempdir()) / f"gensvc-{os.getuid()}"


def make_receipt(settings, operation: str, job_id: str, key: str, request: dict, versions: dict | None = None) -> dict:
    return {
        "service": settings.service,
        "operation": operation,
        "base_url": settings.url,
        "job_id": job_id,
        "idempotency_key": key,
        "submitted_at": now_iso("milliseconds"),  # after the job was made: its age is never overstated
        "request": request,
        "versions": {"gensvc": gensvc.__version__, **(versions or {})},
    }


def write_json(path: str, document: dict) -> None:
    with open(path, "w") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")
