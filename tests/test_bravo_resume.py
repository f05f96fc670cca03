"""`bravo region` and `bravo gene` stream their pages into a checkpoint under the state dir;
a rerun of a call that failed or was stopped asks only for what it does not have yet, and
writes the same bytes as a run that was never stopped.

A run is made to fail midway by an emulator of its own that allows only N requests per
15 minutes (every later one is answered 429 until its window is reset), so which requests
succeed is exact; a run is stopped midway by SIGINT while the emulator delays each page.
"""

import json
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers import BRAVO_TOKEN, add_fault, run_gensvc, send_json, stats
from test_bravo_operations import frequency_input, write_vcf
from gensvc.core.checkpoint import Checkpoint
from gensvc.core.disk_sort import sorted_on_disk
from gensvc.emulators.server import start_emulator
from gensvc.services.bravo import write_variants

# 883 records in three windows at 100 a page: 11 requests
REGION = ["bravo", "region", "--chrom", "22", "--start", "30000000", "--end", "30600000",
          "--allele-freq", "gte:0.05", "--limit", "100"]
# NF1 spans more than one window's width; 388 records at 50 a page: 8 requests
GENE = ["bravo", "gene", "--name", "NF1", "--allele-freq", "gte:0.05", "--limit", "50"]


@pytest.fixture
def quick(env):
    """No host limiter (the emulators' own limits are what the tests exercise), two attempts."""
    return env | {"GENSVC_BRAVO_RATE_LIMIT": "off", "GENSVC_BRAVO_MAX_ATTEMPTS": "2"}


@pytest.fixture
def allowing():
    """A Bravo emulator that answers only the first N requests of its window."""
    started = []

    def start(requests_allowed: int):
        emulator = start_emulator("bravo", tokens=[BRAVO_TOKEN], rate_limit=(requests_allowed, 900))
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


def checkpoints(env) -> list[Path]:
    return sorted(p for p in (Path(env["GENSVC_STATE_DIR"]) / "checkpoints" / "bravo").glob("*") if p.is_dir())


def paged_requests(emulator) -> int:
    return sum(n for path, n in stats(emulator)["by_path"].items() if path.endswith(("/region", "/gene", "/variant")))


def uninterrupted(tmp_path, env, bravo, args, name, output="variants"):
    """The output of a run never stopped, and how many requests it made."""
    out = tmp_path / "whole" / name
    done = run_gensvc([*args, "--output", f"{output}={out}"], env)
    assert done.returncode == 0, done.stderr
    assert not (Path(env["GENSVC_STATE_DIR"]) / "checkpoints").exists()  # a finished run leaves nothing
    return out.read_bytes(), paged_requests(bravo)


CASES = [
    pytest.param(REGION, "region.tsv", id="region-tsv"),
    pytest.param(REGION, "region.json", id="region-json"),
    pytest.param(REGION, "region.vcf", id="region-vcf"),
    pytest.param([*REGION, "--sort", "allele_freq:desc"], "region.tsv", id="region-sorted-tsv"),
    pytest.param([*REGION, "--sort", "filter,allele_count:desc"], "region.vcf", id="region-sorted-vcf"),
    pytest.param(GENE, "gene.json", id="gene-json"),
    pytest.param([*GENE, "--sort", "allele_freq:desc"], "gene.vcf", id="gene-sorted-vcf"),
]


@pytest.mark.parametrize("args, name", CASES)
def test_a_rerun_after_a_failure_midway_asks_only_for_the_rest_and_writes_the_same_bytes(
        tmp_path, quick, bravo, allowing, args, name):
    whole, needed = uninterrupted(tmp_path, quick, bravo, args, name)
    served = 5  # the second window's second page, or the gene's fifth
    assert needed > served + 2
    limited = allowing(served)
    env = quick | {"GENSVC_BRAVO_URL": limited.url}
    out = tmp_path / "resumed" / name

    failed = run_gensvc([*args, "--output", f"variants={out}"], env)
    assert failed.returncode == 5, failed.stderr
    assert not out.exists()
    assert len(checkpoints(env)) == 1
    assert paged_requests(limited) == served + 2  # two attempts at the one refused

    limited.reset()  # a new window: the service answers again; counters from zero
    done = run_gensvc([*args, "--output", f"variants={out}"], env)
    assert done.returncode == 0, done.stderr
    assert paged_requests(limited) == needed - served
    assert out.read_bytes() == whole
    assert checkpoints(env) == []


def test_a_rerun_of_frequencies_after_a_failure_midway_asks_only_for_the_rest(tmp_path, quick, bravo, allowing):
    _, records = frequency_input(tmp_path)
    vcf = tmp_path / "in.vcf"
    write_vcf(vcf, records, chrom_prefix="chr")
    args = ["bravo", "frequencies", "--input", f"vcf={vcf}", "--density", "0.5", "--page-size", "100"]
    whole, needed = uninterrupted(tmp_path, quick, bravo, args, "freq.tsv", output="table")
    served = (needed + 1) // 2  # the rerun needs no more than the emulator then allows
    assert served > 3
    limited = allowing(served)
    env = quick | {"GENSVC_BRAVO_URL": limited.url}
    out = tmp_path / "resumed" / "freq.tsv"

    failed = run_gensvc([*args, "--output", f"table={out}"], env)
    assert failed.returncode == 5, failed.stderr
    assert not out.exists() and len(checkpoints(env)) == 1

    limited.reset()
    done = run_gensvc([*args, "--output", f"table={out}"], env)
    assert done.returncode == 0, done.stderr
    assert paged_requests(limited) == needed - served
    assert out.read_bytes() == whole
    assert checkpoints(env) == []


def test_a_run_stopped_by_sigint_resumes_where_it_stopped(tmp_path, quick, bravo):
    name = "region.json"
    whole, needed = uninterrupted(tmp_path, quick, bravo, REGION, name)
    bravo.reset()
    add_fault(bravo, path="*/region", kind="delay", seconds=0.3)
    out = tmp_path / "resumed" / name
    process = subprocess.Popen([sys.executable, "-m", "gensvc.cli", *REGION, "--output", f"variants={out}"],
                               env=quick, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if stats(bravo)["by_status"].get("200", 0) >= 5 or process.poll() is not None:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert not out.exists()
    answered = stats(bravo)["by_status"]["200"]
    assert answered < needed

    bravo.clear_faults()
    bravo.reset()
    done = run_gensvc([*REGION, "--output", f"variants={out}"], quick)
    assert done.returncode == 0, done.stderr
    # the page in flight when the signal came may be asked for again, nothing else
    assert needed - answered <= paged_requests(bravo) <= needed - answered + 1
    assert out.read_bytes() == whole
    assert checkpoints(quick) == []


def test_records_reach_the_checkpoint_page_by_page_while_the_run_goes_on(tmp_path, quick, bravo):
    add_fault(bravo, path="*/region", kind="delay", seconds=0.25)
    out = tmp_path / "region.tsv"
    process = subprocess.Popen([sys.executable, "-m", "gensvc.cli", *REGION, "--output", f"variants={out}"],
                               env=quick, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sizes = []
    try:
        while process.poll() is None:
            found = [p / "records.jsonl" for p in checkpoints(quick) if (p / "records.jsonl").exists()]
            if found and not out.exists():
                sizes.append(found[0].stat().st_size)
            time.sleep(0.05)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    grown = sorted(set(size for size in sizes if size > 0))
    assert len(grown) >= 5, sizes  # one step per page, before the output exists
    assert out.exists() and checkpoints(quick) == []


def test_a_changed_call_does_not_take_another_calls_checkpoint(tmp_path, quick, bravo, allowing):
    other = [*REGION[:-1], "200"]  # another page size: other cursors, other pages
    _, needed = uninterrupted(tmp_path, quick, bravo, other, "other.tsv")
    limited = allowing(5)
    env = quick | {"GENSVC_BRAVO_URL": limited.url}
    failed = run_gensvc([*REGION, "--output", f"variants={tmp_path / 'a.tsv'}"], env)
    assert failed.returncode == 5, failed.stderr
    limited.reset()
    done = run_gensvc([*other, "--output", f"variants={tmp_path / 'b.tsv'}"], env)
    assert done.returncode == 0, done.stderr
    assert paged_requests(limited) == needed  # every page, none taken from the other call
    assert len(checkpoints(env)) == 1  # the failed call's, still there for its own rerun


class PageNumberBravo(BaseHTTPRequestHandler):
    """A stand-in whose next links count pages (``page=N``) instead of naming the last record
    read: such a link is not known to give the same page later, so it is never resumed from.
    One record every 1000 bp; from request ``fail_from`` on, every answer is a 503."""

    served = 0
    fail_from = None

    def do_GET(self):
        type(self).served += 1
        if self.fail_from is not None and self.served >= self.fail_from:
            return self._send(503, {"error": "unavailable"})
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        start, end, limit, page = int(query["start"]), int(query["end"]), int(query["limit"]), int(query.get("page", 0))
        positions = [p for p in range(start - start % 1000, end + 1, 1000) if p >= start]
        chunk = positions[page * limit:(page + 1) * limit]
        records = [{"variant_id": f"22-{p}-A-G", "chrom": "22", "pos": p, "ref": "A", "alt": "G", "allele_count": p % 97,
                    "allele_num": 125568, "allele_freq": (p % 97) / 125568, "filter": "PASS", "site_quality": 255.0}
                   for p in chunk]
        more = (page + 1) * limit < len(positions)
        link = f"http://{self.headers['Host']}{self.path.split('&page=')[0]}&page={page + 1}" if more else None
        self._send(200, {"data": records, "format": "json", "next": link})

    def _send(self, status, body):
        send_json(self, body, status)

    def log_message(self, *args):
        pass


def test_a_window_whose_links_cannot_be_resumed_is_read_again_from_its_start(tmp_path, quick):
    handler = type("Handler", (PageNumberBravo,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = quick | {"GENSVC_BRAVO_URL": f"http://127.0.0.1:{server.server_port}/freeze5/hg38/api/v1/"}
    # two windows of 251 records each, sharing the edge one (kept once), at 100 a page: 3 + 3 requests
    args = ["bravo", "region", "--chrom", "22", "--start", "1000000", "--end", "1500000", "--limit", "100"]
    try:
        whole = tmp_path / "whole.json"
        assert run_gensvc([*args, "--output", f"variants={whole}"], env).returncode == 0
        assert handler.served == 6
        handler.served, handler.fail_from = 0, 5  # the second window's second page fails
        out = tmp_path / "resumed.json"
        failed = run_gensvc([*args, "--output", f"variants={out}"], env)
        assert failed.returncode == 5, failed.stderr
        handler.served, handler.fail_from = 0, None
        done = run_gensvc([*args, "--output", f"variants={out}"], env)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    assert handler.served == 3  # the first window kept; the second read again, from its first page
    assert out.read_bytes() == whole.read_bytes()
    assert len(json.loads(out.read_text())["variants"]) == 501


# ---- in-process: the pieces the streaming rests on --------------------------------


def test_records_appended_after_the_last_commit_are_cut_off_when_the_checkpoint_is_opened_again(tmp_path):
    state = tmp_path / "state"
    request = {"operation": "region", "params": {"chrom": "22", "filter": ["PASS"]}}
    with Checkpoint(state, "bravo", "k", request) as checkpoint:
        assert checkpoint.position is None
        checkpoint.append([{"n": 1}, {"n": 2}])
        checkpoint.commit({"query": 1})
        checkpoint.append([{"n": 3}])  # the run stops before its next commit
    with Checkpoint(state, "bravo", "k", request) as checkpoint:
        assert checkpoint.position == {"query": 1} and checkpoint.count == 2
        assert list(checkpoint.records()) == [{"n": 1}, {"n": 2}]
        checkpoint.append([{"n": 4}])
        assert list(checkpoint.records()) == [{"n": 1}, {"n": 2}, {"n": 4}]
    with Checkpoint(state, "bravo", "k", {**request, "params": {}}) as checkpoint:
        assert checkpoint.position is None and list(checkpoint.records()) == []  # another request's: afresh
    checkpoint.discard()
    assert not state.exists()  # nothing left: lock file, and the folders it made


def test_sorting_on_disk_gives_what_a_stable_sort_in_memory_gives(tmp_path):
    items = [[n, {"pos": (n * 7919) % 101, "tie": n % 3}] for n in range(1000)]
    key = lambda item: (item[1]["tie"], -item[1]["pos"])  # noqa: E731 - many ties, so stability shows
    got = list(sorted_on_disk(items, key, tmp_path, run_size=17, fan_in=4))  # several merge passes
    assert got == sorted(items, key=key)
    assert list(tmp_path.iterdir()) == []  # scratch files gone


@pytest.mark.parametrize("extra", [None, {"gene": {"name": "NF1", "start": 1}}, {"gene": None}])
@pytest.mark.parametrize("count", [0, 1, 3])
def test_streamed_json_is_byte_for_byte_what_json_dump_writes(tmp_path, extra, count):
    variants = [{"variant_id": f"22-{n}-A-G", "pos": n, "allele_freq": 1e-05 * n, "filter": "SVM;DISC",
                 "nested": {"a": [1, 2]}} for n in range(count)]
    out = tmp_path / "v.json"
    write_variants(str(out), iter(variants), "json", extra)
    assert out.read_text() == json.dumps({**(extra or {}), "variants": variants}, indent=1) + "\n"
