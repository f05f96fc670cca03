"""gensvc.core.receipts in process: the idempotency key, the journal, ``submit_once`` (a
journal entry reused, a crash between begin and complete found again, a failed job
resubmitted) and ``send_submission`` (a lost answer looked up before sending again)."""

import threading
import time
from types import SimpleNamespace

import pytest
import requests

from gensvc.core.http import OutcomeUnknown, ServiceSession
from gensvc.core.receipts import Journal, idempotency_key, key_tag, send_submission, submit_once

KEY = "f" * 64
REQUEST = {"params": {"assembly": "hg38"}}


@pytest.fixture
def settings(tmp_path):
    # the url names the host-wide submission spacing: one of its own per test
    return SimpleNamespace(state_dir=tmp_path / "state", service="demo", url=f"http://unit.invalid/{tmp_path.name}")


@pytest.fixture
def session():
    return ServiceSession("demo", max_attempts=4, backoff=0.0, deadline=30.0)


class Server:
    """What a service's job list would say; counts what was asked of it."""

    def __init__(self, *ids):
        self.ids, self.jobs, self.looked_up, self.failed = list(ids), [], 0, set()

    def submit(self) -> str:
        self.jobs.append(self.ids.pop(0))
        return self.jobs[-1]

    def find(self, key) -> str | None:
        self.looked_up += 1
        return self.jobs[-1] if self.jobs else None

    def reusable(self, job_id) -> bool:
        return job_id not in self.failed


def once(settings, session, server, key=KEY):
    return submit_once(settings, key, REQUEST, session=session, find_existing=server.find, submit=server.submit,
                       reusable=server.reusable)


# the key ---------------------------------------------------------------------------------------

def test_the_key_names_service_url_operation_params_and_input_bytes(tmp_path):
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n")
    key = idempotency_key("demo", "http://x", "submit", {"a": 1, "b": 2}, {"vcf": str(vcf)})
    assert key == idempotency_key("demo", "http://x", "submit", {"b": 2, "a": 1}, {"vcf": str(vcf)})
    assert key != idempotency_key("demo", "http://y", "submit", {"a": 1, "b": 2}, {"vcf": str(vcf)})
    assert key != idempotency_key("demo", "http://x", "submit", {"a": 1, "b": 3}, {"vcf": str(vcf)})
    vcf.write_text("##fileformat=VCFv4.3\n")  # same path, other bytes
    assert key != idempotency_key("demo", "http://x", "submit", {"a": 1, "b": 2}, {"vcf": str(vcf)})
    assert key_tag(key) == "gensvc:" + key[:32]


# the journal -----------------------------------------------------------------------------------

def test_a_journal_entry_goes_from_submitting_to_submitted_with_its_job(tmp_path):
    journal = Journal(tmp_path, "demo")
    assert journal.lookup(KEY) is None
    journal.begin(KEY, REQUEST)
    assert journal.lookup(KEY)["state"] == "submitting" and "job_id" not in journal.lookup(KEY)
    journal.complete(KEY, "job-1")
    entry = Journal(tmp_path, "demo").lookup(KEY)  # as a later process reads it
    assert (entry["state"], entry["job_id"], entry["request"]) == ("submitted", "job-1", REQUEST)
    journal.forget(KEY)
    assert journal.lookup(KEY) is None


def test_an_unreadable_journal_entry_counts_as_a_crash_before_completion(tmp_path):
    journal = Journal(tmp_path, "demo")
    journal.directory.joinpath(f"{KEY}.json").write_text('{"key": "ff", "sta')
    assert journal.lookup(KEY) == {"key": KEY, "state": "submitting"}


# submit_once -----------------------------------------------------------------------------------

def test_a_first_submission_is_sent_once_and_journalled(settings, session):
    server = Server("job-1")
    assert once(settings, session, server) == ("job-1", False)
    assert server.jobs == ["job-1"]
    assert Journal(settings.state_dir, "demo").lookup(KEY)["job_id"] == "job-1"


def test_a_journalled_job_is_reused_without_asking_the_server(settings, session):
    first = Server("job-1")
    once(settings, session, first)
    again = Server("job-2")
    assert once(settings, session, again) == ("job-1", True)
    assert again.jobs == [] and again.looked_up == 0


def test_a_crash_between_begin_and_complete_finds_the_job_by_its_tag_instead_of_submitting(settings, session):
    Journal(settings.state_dir, "demo").begin(KEY, REQUEST)  # the run died with the request in flight
    server = Server("job-2")
    server.jobs.append("job-1")  # ... and the server had made the job
    assert once(settings, session, server) == ("job-1", True)
    assert server.jobs == ["job-1"] and server.looked_up == 1
    assert Journal(settings.state_dir, "demo").lookup(KEY)["state"] == "submitted"


def test_a_crash_before_the_server_took_the_request_submits_it(settings, session):
    Journal(settings.state_dir, "demo").begin(KEY, REQUEST)
    server = Server("job-1")
    assert once(settings, session, server) == ("job-1", False)
    assert server.jobs == ["job-1"] and server.looked_up == 1


def test_each_attempt_notes_in_the_journal_until_when_its_answer_may_come(settings, session):
    server = Server("job-1")
    noted = []

    def submit():
        noted.append(Journal(settings.state_dir, "demo").lookup(KEY)["unknown_until"] - time.time())
        return server.submit()

    submit_once(settings, KEY, REQUEST, session=session, find_existing=server.find, submit=submit)
    assert 0 < noted[0] <= sum(session.timeout)


def dead_run(settings, answer_within: float) -> None:
    """A run that sent its submission and was killed before the answer came."""
    journal = Journal(settings.state_dir, "demo")
    journal.begin(KEY, REQUEST)
    journal.sending(KEY, answer_within)


def test_a_rerun_right_after_a_run_died_mid_request_waits_for_the_job_that_request_makes(settings, session):
    dead_run(settings, answer_within=20)
    server = Server("job-2")
    looked_up = server.find

    def find(key):  # the server was still making it: there from the second look on
        if server.looked_up == 1:
            server.jobs.append("job-1")
        return looked_up(key)

    server.find = find
    assert once(settings, session, server) == ("job-1", True)
    assert server.jobs == ["job-1"] and server.looked_up >= 2


def test_a_rerun_whose_dead_run_s_answer_would_have_come_by_now_submits_at_once(settings, session):
    dead_run(settings, answer_within=-1)
    server = Server("job-1")
    assert once(settings, session, server) == ("job-1", False)
    assert server.looked_up == 1


def test_a_rerun_submits_when_no_job_appears_within_the_dead_run_s_answer_time(settings, session):
    dead_run(settings, answer_within=1.5)
    server = Server("job-1")
    assert once(settings, session, server) == ("job-1", False)
    assert server.jobs == ["job-1"] and server.looked_up >= 2


def test_a_journalled_job_that_failed_is_submitted_again(settings, session):
    server = Server("job-1", "job-2")
    once(settings, session, server)
    server.failed.add("job-1")
    server.find = lambda key: None  # a failed job is not reusable on the server either
    assert once(settings, session, server) == ("job-2", False)
    assert server.jobs == ["job-1", "job-2"]
    assert Journal(settings.state_dir, "demo").lookup(KEY)["job_id"] == "job-2"


def test_two_runs_with_one_key_at_once_make_one_job(settings, session):
    server = Server("job-1", "job-2")
    slow_submit = server.submit

    def submit():
        time.sleep(0.2)  # the other run arrives while this one is in flight
        return slow_submit()

    results = []
    run = lambda: results.append(submit_once(settings, KEY, REQUEST, session=session, find_existing=lambda k: None,  # noqa: E731
                                             submit=submit))
    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    assert server.jobs == ["job-1"]
    assert sorted(results) == [("job-1", False), ("job-1", True)]


# send_submission -------------------------------------------------------------------------------

def lost(error=None) -> OutcomeUnknown:
    request = requests.Request("POST", "http://127.0.0.1:9/jobs").prepare()
    return OutcomeUnknown("demo POST failed: a dropped connection", where=request.url, hint="try again",
                          request=request, error=error or requests.ConnectionError("reset"))


def test_a_lost_answer_whose_job_exists_is_not_sent_again(session):
    sent = []

    def submit():
        sent.append(1)
        raise lost()

    assert send_submission(session, submit, lambda: "job-7") == ("job-7", True)
    assert len(sent) == 1


def test_a_lost_answer_with_no_job_behind_it_is_sent_again(session):
    answers = iter([lost(), "job-8"])
    looked_up = []

    def submit():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert send_submission(session, submit, lambda: looked_up.append(1)) == ("job-8", False)
    assert len(looked_up) == 1


def test_a_refusal_is_not_a_lost_answer_and_is_neither_looked_up_nor_sent_again(session):
    from gensvc.errors import RequestRejected

    def submit():
        raise RequestRejected("demo refused the job", where="http://127.0.0.1:9/jobs", hint="fix the input")

    with pytest.raises(RequestRejected):
        send_submission(session, submit, lambda: pytest.fail("looked up after a refusal"))
