"""Retries, waits and failures against injected faults, over real HTTP."""

import time

import pytest

from helpers import add_fault, read_json, read_tsv, run_gensvc, stats
from gensvc.emulators.bravo_data import variants_in

REGION = ["bravo", "region", "--chrom", "22", "--start", "30000000", "--end", "30030000"]


def region(tmp_path, env, *extra):
    out = tmp_path / "r.tsv"
    return run_gensvc([*REGION, *extra, "--output", f"variants={out}"], env), out


def truth_ids():
    return [v["variant_id"] for v in variants_in("22", 30000000, 30030000)]


def test_429_with_retry_after_waits_then_succeeds(tmp_path, env, bravo):
    add_fault(bravo, path="*/region", kind="status", status=429, headers={"Retry-After": "1"},
              body={"error": "too many requests"}, count=2)
    started = time.monotonic()
    done, out = region(tmp_path, env)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert elapsed >= 2.0  # waited the server's Retry-After twice
    assert stats(bravo)["by_status"]["429"] == 2
    assert [r["variant_id"] for r in read_tsv(out)] == truth_ids()


def test_429_with_ratelimit_reset_header(tmp_path, env, bravo):
    reset = int(time.time()) + 2
    add_fault(bravo, path="*/region", kind="status", status=429, headers={"X-RateLimit-Reset": str(reset)}, count=1)
    done, _ = region(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert time.time() >= reset - 0.05


def test_429_without_headers_waits_for_the_shared_window(tmp_path, env, bravo):
    add_fault(bravo, path="*/region", kind="status", status=429, body={"error": "too many requests"}, count=1)
    started = time.monotonic()
    done, _ = region(tmp_path, env | {"GENSVC_BRAVO_RATE_LIMIT": "50/2"})
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 2.0  # a whole window, not a short backoff


def test_503_burst_is_retried(tmp_path, env, bravo):
    add_fault(bravo, path="*/region", kind="status", status=503, count=3)
    done, out = region(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert stats(bravo)["by_status"]["503"] == 3
    assert [r["variant_id"] for r in read_tsv(out)] == truth_ids()


def test_every_retryable_status(tmp_path, env, bravo):
    for status in (500, 502, 504):
        add_fault(bravo, path="*/region", kind="status", status=status, count=1)
    done, _ = region(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert {s: stats(bravo)["by_status"].get(str(s)) for s in (500, 502, 504)} == {500: 1, 502: 1, 504: 1}


def test_dropped_connection_is_retried(tmp_path, env, bravo):
    add_fault(bravo, path="*/region", kind="drop", count=2)
    done, out = region(tmp_path, env, "--limit", "500")
    assert done.returncode == 0, done.stderr
    assert stats(bravo)["by_status"]["drop"] == 2
    assert [r["variant_id"] for r in read_tsv(out)] == truth_ids()


def test_page_cut_short_is_fetched_again(tmp_path, env, bravo):
    add_fault(bravo, path="*/region", kind="truncate", count=2)
    done, out = region(tmp_path, env, "--limit", "500")
    assert done.returncode == 0, done.stderr
    assert [r["variant_id"] for r in read_tsv(out)] == truth_ids()


def test_service_down_through_every_retry_exits_5(tmp_path, env, bravo):
    add_fault(bravo, path="*/region", kind="status", status=503, count=100)
    done, out = region(tmp_path, env | {"GENSVC_BRAVO_MAX_ATTEMPTS": "4"})
    assert done.returncode == 5
    assert stats(bravo)["by_status"]["503"] == 4
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and "503" in line and "4 attempts" in line and bravo.url in line
    assert not out.exists()
    assert not list(tmp_path.glob(".r.tsv*"))  # no staged file left behind


def test_retry_after_beyond_the_deadline_gives_up_at_once(tmp_path, env, bravo):
    add_fault(bravo, path="*/region", kind="status", status=429, headers={"Retry-After": "600"}, count=5)
    started = time.monotonic()
    done, _ = region(tmp_path, env | {"GENSVC_BRAVO_DEADLINE": "5"})
    assert done.returncode == 5
    assert time.monotonic() - started < 30
    assert "deadline" in done.stderr


def test_slow_answer_past_read_timeout_is_retried(tmp_path, env, bravo):
    assert region(tmp_path, env)[0].returncode == 0
    pages = stats(bravo)["requests"]
    bravo.reset()
    add_fault(bravo, path="*/region", kind="delay", seconds=3, count=1)
    done, _ = region(tmp_path, env | {"GENSVC_BRAVO_READ_TIMEOUT": "1"})
    assert done.returncode == 0, done.stderr
    # the abandoned slow answer is counted once the emulator has sent it: wait for it,
    # so that it does not land in the next test's counters
    waited = time.monotonic() + 10
    while stats(bravo)["requests"] <= pages and time.monotonic() < waited:
        time.sleep(0.1)
    assert stats(bravo)["requests"] == pages + 1  # the slow one, then its retry


@pytest.mark.parametrize(("status", "body", "says"), [
    (400, {"error": "invalid query parameters"}, "invalid query parameters"),  # the service's own words
    (404, {"error": "not found"}, "GENSVC_BRAVO_URL"),  # most likely a wrong base URL
], ids=["400", "404"])
def test_a_400_or_404_is_not_retried_and_exits_2_saying_what_to_fix(tmp_path, env, bravo, status, body, says):
    add_fault(bravo, path="*/region", kind="status", status=status, body=body, count=5)
    done, _ = region(tmp_path, env)
    assert done.returncode == 2
    assert says in done.stderr
    assert stats(bravo)["requests"] == 1


def test_provenance_counts_retries(tmp_path, env, bravo):
    add_fault(bravo, path="*/region", kind="status", status=502, count=2)
    done, out = region(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert read_json(f"{out}.prov.json")["requests"] == stats(bravo)["requests"]


def test_malformed_retry_after_falls_back_to_backoff(tmp_path, env, bravo):
    add_fault(bravo, path="*/region", kind="status", status=503, headers={"Retry-After": "soon, maybe"}, count=2)
    done, out = region(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert stats(bravo)["by_status"]["503"] == 2


def test_retry_after_as_an_http_date(tmp_path, env, bravo):
    from email.utils import formatdate

    when = time.time() + 2
    add_fault(bravo, path="*/region", kind="status", status=503, headers={"Retry-After": formatdate(when, usegmt=True)}, count=1)
    done, _ = region(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert time.time() >= when - 1  # HTTP dates have one-second resolution
