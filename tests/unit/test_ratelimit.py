"""gensvc.core.ratelimit in process: the limit's spelling, the exact sliding window, the
server's own budget, and two processes sharing one state dir (counted, not timed)."""

import json
import multiprocessing
import time

import pytest

from gensvc.core.ratelimit import RateLimit, ServerBudget, SharedRateLimiter
from gensvc.errors import UsageError
from helpers import most_in_any_window


@pytest.mark.parametrize(("text", "expected"), [
    ("180/900", RateLimit(180, 900.0)), (" 5/2.5 ", RateLimit(5, 2.5)),
    ("off", None), ("none", None), ("", None), ("0", None), (None, None),
])
def test_a_rate_limit_is_written_requests_slash_seconds_or_off(text, expected):
    assert RateLimit.parse(text) == expected


@pytest.mark.parametrize("text", ["lots", "5", "5/x", "0/10", "3/0", "-1/5"])
def test_a_rate_limit_that_is_not_positive_requests_slash_seconds_is_a_usage_error(text):
    with pytest.raises(UsageError, match="180/900"):
        RateLimit.parse(text)


def test_a_rate_limit_prints_as_it_is_written():
    assert str(RateLimit.parse("5/2.5")) == "5/2.5" and str(RateLimit(180, 900.0)) == "180/900"


def limiter(tmp_path, requests=3, seconds=0.2, credential="token-a") -> SharedRateLimiter:
    return SharedRateLimiter(RateLimit(requests, seconds), tmp_path, "demo", credential)


def test_requests_within_the_limit_start_without_waiting_and_the_next_one_waits(tmp_path):
    gate = limiter(tmp_path, requests=3, seconds=0.2)
    for _ in range(3):
        gate.acquire()
    assert gate.waited == 0.0
    gate.acquire()
    assert gate.waited > 0  # for the first start to leave the window (how long depends on the machine's load)
    kept = json.loads(gate.path.read_text())
    assert len(kept) <= 3 and max(kept) - min(kept) < gate.window  # starts older than a window are dropped


def test_the_window_slides_over_recorded_starts_rather_than_resetting(tmp_path):
    gate = limiter(tmp_path, requests=4, seconds=100.0)
    now = time.time()
    gate.path.write_text(json.dumps([now - 90, now - 80, now - 10, now - 5]))
    # the fifth request waits for the oldest start to leave, not for a fixed window to end
    assert gate.time_for(1) == pytest.approx(gate.window - 90, abs=0.5)
    assert gate.time_for(2) == pytest.approx(gate.window - 80, abs=0.5)
    assert gate.time_for(5) == pytest.approx(gate.window - 90 + gate.window, abs=0.5)


def test_an_empty_window_lets_a_whole_window_of_requests_start_now(tmp_path):
    gate = limiter(tmp_path, requests=4, seconds=100.0)
    assert gate.time_for(0) == 0.0 and gate.time_for(4) == 0.0
    assert gate.time_for(5) == pytest.approx(gate.window, abs=0.5)


def test_a_filled_window_makes_everyone_wait_a_whole_window(tmp_path):
    gate = limiter(tmp_path, requests=4, seconds=100.0)
    gate.fill()
    assert limiter(tmp_path, requests=4, seconds=100.0).time_for(1) == pytest.approx(gate.window, abs=0.5)


def test_each_service_and_credential_has_a_window_of_its_own(tmp_path):
    assert limiter(tmp_path, credential="a").path == limiter(tmp_path, credential="a").path
    assert limiter(tmp_path, credential="a").path != limiter(tmp_path, credential="b").path
    assert "token" not in limiter(tmp_path, credential="token-a").path.name  # the credential is hashed


@pytest.mark.parametrize("scale", [1, 1000], ids=["seconds", "milliseconds"])
def test_the_servers_budget_is_read_in_epoch_seconds_or_milliseconds(scale):
    budget = ServerBudget.from_headers({"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": str(1_900_000_000 * scale)})
    assert budget == ServerBudget(7, 1_900_000_000.0)


@pytest.mark.parametrize("headers", [{}, {"X-RateLimit-Remaining": "7"}, {"X-RateLimit-Remaining": "x",
                                                                           "X-RateLimit-Reset": "1"}])
def test_answers_without_a_whole_budget_tell_nothing(headers):
    assert ServerBudget.from_headers(headers) is None


def test_within_one_window_the_lower_count_wins_and_a_new_window_replaces_it():
    assert ServerBudget(9, 1000.0).merged_with(ServerBudget(3, 1000.2)) == ServerBudget(3, 1000.2)
    assert ServerBudget(2, 1000.0).merged_with(ServerBudget(3, 1000.0)) == ServerBudget(2, 1000.0)
    assert ServerBudget(9, 2000.0).merged_with(ServerBudget(3, 1000.0)) == ServerBudget(9, 2000.0)


def test_the_servers_budget_is_counted_down_by_every_start_then_waited_for(tmp_path):
    gate = limiter(tmp_path, requests=100, seconds=100.0)
    reset = time.time() + 300
    gate.observe({"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": str(reset)})
    other = limiter(tmp_path, requests=100, seconds=100.0)  # another process's view of the same state
    now = time.time()
    assert other._server_wait(now) == 0.0 and gate._server_wait(now) == 0.0
    assert gate._server_wait(now) == pytest.approx(reset - now, abs=1)
    assert gate._server_wait(reset + 1) == 0.0  # past the reset the budget no longer holds


# two processes, one state dir ------------------------------------------------------------------

LIMIT, WINDOW, EACH = 4, 0.3, 6


def take_turns(state_dir, starts):
    gate = SharedRateLimiter(RateLimit(LIMIT, WINDOW), state_dir, "demo", "shared-token")
    for _ in range(EACH):
        gate.acquire()
        starts.put(time.time())


def test_two_processes_sharing_a_state_dir_never_start_more_than_the_limit_in_a_window(tmp_path):
    context = multiprocessing.get_context("fork")
    starts = context.Queue()
    workers = [context.Process(target=take_turns, args=(tmp_path, starts)) for _ in range(2)]
    for worker in workers:
        worker.start()
    times = [starts.get(timeout=20) for _ in range(2 * EACH)]
    for worker in workers:
        worker.join(timeout=20)
        assert worker.exitcode == 0
    assert len(times) == 2 * EACH
    # counted over a window a little shorter than the limiter's, so that the moment a
    # process notes its start (after the lock is let go) cannot make a false count
    assert most_in_any_window(times, WINDOW * 0.8) <= LIMIT
