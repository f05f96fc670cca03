"""The server's own count of its window (X-RateLimit-Remaining/-Reset), shared by the limiter."""

import time

from gensvc.core.ratelimit import RateLimit, ServerBudget, SharedRateLimiter


def limiter(tmp_path) -> SharedRateLimiter:
    return SharedRateLimiter(RateLimit(1000, 300), tmp_path, "cavatica", "token")


def test_requests_are_counted_down_from_what_the_server_says_is_left(tmp_path):
    shared = limiter(tmp_path)
    reset = time.time() + 60
    shared.observe({"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": str(int(reset))})
    assert shared._server_wait(time.time()) == 0 and shared._server_wait(time.time()) == 0
    assert shared._server_wait(time.time()) > 50  # spent: wait for the reset, not for a 429


def test_a_second_process_sees_the_count_the_first_one_left(tmp_path):
    first, second = limiter(tmp_path), limiter(tmp_path)
    first.observe({"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": str(int(time.time() + 60))})
    assert first._server_wait(time.time()) == 0
    assert second._server_wait(time.time()) > 50


def test_a_late_answer_does_not_raise_the_count_within_one_window(tmp_path):
    shared = limiter(tmp_path)
    reset = str(int(time.time() + 60))
    shared.observe({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": reset})
    shared.observe({"X-RateLimit-Remaining": "9", "X-RateLimit-Reset": reset})
    assert shared._read_budget().remaining == 3


def test_a_new_window_starts_from_the_servers_figure_and_milliseconds_are_read_as_such(tmp_path):
    shared = limiter(tmp_path)
    shared.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time() - 1))})
    assert shared._server_wait(time.time()) == 0  # that window is over
    later = time.time() + 120
    budget = ServerBudget.from_headers({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": str(int(later * 1000))})
    assert abs(budget.reset - later) < 1
    assert ServerBudget.from_headers({"X-RateLimit-Remaining": "x"}) is None
