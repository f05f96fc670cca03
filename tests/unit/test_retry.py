"""gensvc.core.http's retry policy in process, as urllib3's test/test_retry.py tests Retry:
full-jitter backoff, Retry-After and X-RateLimit-Reset, the deadline, and one step's budget."""

import random
import socket
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from requests.structures import CaseInsensitiveDict
from urllib3.response import HTTPResponse

from gensvc.core.http import DeadlineExceeded, OutcomeUnknown, ServiceRetry, ServiceSession
from gensvc.errors import ServiceUnavailable
from helpers import send_json


def answer(status: int, **headers) -> HTTPResponse:
    return HTTPResponse(body=b"", status=status, headers={k.replace("_", "-"): v for k, v in headers.items()},
                        preload_content=False)


def retry(**kw) -> ServiceRetry:
    defaults = dict(total=10, backoff_factor=1.0, backoff_max=120.0, status_forcelist={429, 500, 502, 503, 504},
                    respect_retry_after_header=True, raise_on_status=False)
    return ServiceRetry(**(defaults | kw))


def after_failures(policy: ServiceRetry, count: int) -> ServiceRetry:
    for _ in range(count):
        policy = policy.increment("GET", "/x", response=answer(503))
    return policy


# backoff ---------------------------------------------------------------------------------------

def test_no_failure_yet_means_no_backoff():
    assert retry().get_backoff_time() == 0.0


@pytest.mark.parametrize(("failures", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (9, 30.0)])
def test_the_backoff_is_full_jitter_between_zero_and_the_doubled_base_capped(failures, ceiling):
    policy = after_failures(retry(backoff_factor=1.0, backoff_max=30.0), failures)
    random.seed(failures)
    waits = [policy.get_backoff_time() for _ in range(400)]
    assert all(0 <= wait <= ceiling for wait in waits)
    # full jitter spreads over the whole range, not near the ceiling alone (equal jitter) or fixed
    assert min(waits) < ceiling * 0.1 and max(waits) > ceiling * 0.9


def test_an_increment_returns_a_new_policy_and_leaves_the_old_one_as_it_was():
    first = retry(deadline_at=123.0, started_at=100.0)
    second = first.increment("GET", "/x", response=answer(503))
    assert first.total == 10 and first.history == ()
    assert second.total == 9 and len(second.history) == 1
    assert (second.deadline_at, second.started_at) == (123.0, 100.0)  # the deadline goes on across attempts


# Retry-After and X-RateLimit-Reset -----------------------------------------------------------

def test_retry_after_in_seconds_is_the_wait():
    assert retry().get_retry_after(answer(429, Retry_After="7")) == 7
    assert after_failures(retry(), 3).wait_time(answer(503, Retry_After="7")) == 7  # not the backoff


def test_retry_after_as_an_http_date_is_the_time_until_then():
    when = formatdate(time.time() + 40, usegmt=True)
    assert 35 <= retry().get_retry_after(answer(503, Retry_After=when)) <= 40


@pytest.mark.parametrize("hint", ["soon", "12 seconds", "-5", "Tue, 99 Foo 2026"])
def test_a_malformed_retry_after_falls_back_to_the_backoff(hint):
    policy = after_failures(retry(backoff_factor=0.5), 2)
    assert policy.get_retry_after(answer(503, Retry_After=hint)) is None
    assert 0 <= policy.wait_time(answer(503, Retry_After=hint)) <= 1.0


@pytest.mark.parametrize("scale", [1, 1000], ids=["seconds", "milliseconds"])
def test_a_rate_limit_reset_in_epoch_seconds_or_milliseconds_is_the_time_until_then(scale):
    reset = str(int((time.time() + 30) * scale))
    assert 25 <= retry().get_retry_after(answer(429, X_RateLimit_Reset=reset)) <= 30
    # a 5xx with the budget spent waits for the reset too
    spent = answer(503, X_RateLimit_Reset=reset, X_RateLimit_Remaining="0")
    assert 25 <= retry().get_retry_after(spent) <= 30


def test_a_rate_limit_reset_is_ignored_while_the_budget_is_not_spent():
    reset = str(int(time.time() + 30))
    assert retry().get_retry_after(answer(503, X_RateLimit_Reset=reset, X_RateLimit_Remaining="4")) is None
    assert retry().get_retry_after(answer(503, X_RateLimit_Reset=reset)) is None


@pytest.mark.parametrize(("reset", "expected"), [("not-a-time", None), (str(int(time.time() - 60)), 0.0)])
def test_a_malformed_reset_is_no_hint_and_one_in_the_past_means_now(reset, expected):
    assert retry().get_retry_after(answer(429, X_RateLimit_Reset=reset)) == expected


def test_retry_after_wins_over_the_rate_limit_reset():
    later = str(int(time.time() + 300))
    assert retry().get_retry_after(answer(429, Retry_After="3", X_RateLimit_Reset=later)) == 3


# the deadline ----------------------------------------------------------------------------------

def test_a_wait_that_would_pass_the_deadline_raises_before_sleeping():
    policy = retry(deadline_at=time.monotonic() + 5)
    policy.check_deadline(0.0)
    policy.check_deadline(1.0)
    with pytest.raises(DeadlineExceeded):
        policy.check_deadline(10.0)
    with pytest.raises(DeadlineExceeded):  # refused before the hour's sleep, not after it
        policy.sleep(answer(429, Retry_After="3600"))


def test_without_a_deadline_any_wait_is_allowed():
    retry(deadline_at=None).check_deadline(1e9)


# the session's budget --------------------------------------------------------------------------

def session(**kw) -> ServiceSession:
    return ServiceSession("demo", **({"max_attempts": 3, "backoff": 0.0, "deadline": 60.0} | kw))


def request() -> requests.PreparedRequest:
    return requests.Request("GET", "http://127.0.0.1:9/api/x").prepare()


def failed(status: int, **headers) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.raw = answer(status, **headers)
    response.headers = CaseInsensitiveDict(response.raw.headers)
    response.request = request()
    return response


def test_one_budget_spends_max_attempts_then_says_how_many_were_made():
    s = session(max_attempts=3)
    with s.budget() as budget:
        s.next_attempt(budget, request(), response=failed(503))
        s.next_attempt(budget, request(), error=requests.ConnectionError("reset"))
        with pytest.raises(ServiceUnavailable, match="after 3 attempts"):
            s.next_attempt(budget, request(), response=failed(503))


def test_requests_inside_one_budget_share_it_and_a_nested_budget_is_the_outer_one():
    s = session()
    with s.budget() as outer:
        with s.budget() as inner:
            assert inner is outer
        s.next_attempt(outer, request(), response=failed(500))
    with s.budget() as fresh:  # a new step starts whole
        assert fresh is not outer and fresh.retry.total == 2


def test_a_budget_belongs_to_the_thread_that_opened_it():
    s = session()
    seen = []
    with s.budget() as mine:
        worker = threading.Thread(target=lambda: seen.append(getattr(s._budgets, "active", None)))
        worker.start()
        worker.join()
        assert getattr(s._budgets, "active", None) is mine
    assert seen == [None]


def test_a_retry_after_past_the_sessions_deadline_ends_the_step_naming_the_deadline():
    s = session(max_attempts=6, deadline=5.0)
    with s.budget() as budget:
        with pytest.raises(ServiceUnavailable, match="would pass the 5 s deadline") as caught:
            s.next_attempt(budget, request(), response=failed(429, Retry_After="600"))
    assert "GENSVC_DEMO_DEADLINE" in caught.value.hint


def test_an_attempts_timeouts_are_cut_to_what_is_left_of_the_deadline():
    s = session(connect_timeout=10.0, read_timeout=120.0, deadline=2.0)
    connect, read = s._attempt_timeout(s.new_retry())
    assert 0 < connect <= 2.0 and 0 < read <= 2.0
    assert session(deadline=3600.0)._attempt_timeout(session(deadline=3600.0).new_retry()) == (10.0, 120.0)


# a POST, against a stand-in server on loopback ----------------------------------------------

class Jobs(BaseHTTPRequestHandler):
    """/jobs answers the statuses queued in ``answers`` first, then 201 to a POST, 200 to a GET."""

    answers: list = []
    posts = 0

    def do_POST(self):
        type(self).posts += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = type(self).answers.pop(0) if type(self).answers else 201
        send_json(self, {"id": "job-1"} if status == 201 else {"error": "busy"}, status)

    def do_GET(self):
        status = type(self).answers.pop(0) if type(self).answers else 200
        send_json(self, {"id": "job-1"} if status == 200 else {"error": "busy"}, status)

    def log_message(self, *args):
        pass


@pytest.fixture
def jobs():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Jobs)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    Jobs.answers, Jobs.posts = [], 0
    yield f"http://127.0.0.1:{server.server_port}/jobs"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("refusal", [429, 503])
def test_a_post_the_server_says_it_did_not_take_is_sent_again(jobs, refusal):
    Jobs.answers = [refusal, refusal]
    assert session(max_attempts=4).post(jobs, json={}).status_code == 201
    assert Jobs.posts == 3


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_post_answered_by_another_5xx_is_not_sent_again_the_outcome_being_unknown(jobs, status):
    Jobs.answers = [status]
    with pytest.raises(OutcomeUnknown) as caught:
        session(max_attempts=4).post(jobs, json={})
    assert Jobs.posts == 1 and caught.value.response.status_code == status


def test_a_post_that_never_reached_a_server_is_sent_again_until_the_attempts_are_spent():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nothing listens here once the probe is closed
    s = session(max_attempts=3)
    with pytest.raises(ServiceUnavailable, match="no connection, after 3 attempts"):
        s.post(f"http://127.0.0.1:{closed}/jobs", json={})
    assert s.request_count == 3


def test_a_get_is_sent_again_after_any_retryable_status_and_not_after_a_404(jobs):
    Jobs.answers = [502, 500, 504]
    s = session(max_attempts=4)
    assert s.get(jobs).status_code == 200
    assert s.request_count == 4
    Jobs.answers = [404]
    assert s.get(jobs).status_code == 404  # the session returns it; the client's error map reads it
    assert s.request_count == 5


# an outage that lasts (CAVATICA's maintenance) and a rate limit already reset -----------------

def under_maintenance(response) -> str | None:
    return "down for maintenance" if response.status_code == 503 else None


def test_a_maintenance_answer_is_waited_out_in_the_longest_step_the_settings_allow():
    s = session(backoff=0.01, backoff_max=40.0, maintenance=under_maintenance)
    policy = after_failures(s.new_retry(), 1)  # the growing backoff would be at most 0.01 s
    random.seed(3)
    waits = [s.next_wait(policy, failed(503)) for _ in range(200)]
    assert all(20.0 <= wait <= 40.0 for wait in waits)
    assert s.next_wait(policy, failed(503, Retry_After="7")) == 7  # a hint of the service's own wins
    assert all(s.next_wait(policy, failed(502)) <= 0.01 for _ in range(50))


def test_a_service_under_maintenance_through_every_attempt_says_so_and_how_to_wait_longer():
    s = session(max_attempts=2, backoff_max=0.0, maintenance=under_maintenance)
    with s.budget() as budget:
        s.next_attempt(budget, request(), response=failed(503))
        with pytest.raises(ServiceUnavailable) as caught:
            s.next_attempt(budget, request(), response=failed(503))
    line = str(caught.value)
    assert "demo is under maintenance (down for maintenance)" in line and "after 2 attempts" in line
    assert "GENSVC_DEMO_DEADLINE" in line and "GENSVC_DEMO_BACKOFF_MAX" in line


def test_a_429_whose_rate_limit_reset_has_passed_is_retried_now_not_after_a_whole_window(tmp_path):
    from gensvc.core.ratelimit import RateLimit, SharedRateLimiter

    limiter = SharedRateLimiter(RateLimit(100, 300.0), tmp_path, "demo", "secret")
    s = session(limiter=limiter, backoff=0.01)
    policy = after_failures(s.new_retry(), 1)
    past = str(int(time.time()) - 2)
    assert s.next_wait(policy, failed(429, X_RateLimit_Remaining="0", X_RateLimit_Reset=past)) <= 0.01
    assert s.next_wait(policy, failed(429)) is None  # no hint at all: the shared window is taken as spent
