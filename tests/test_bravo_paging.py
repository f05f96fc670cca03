"""`bravo region` and `bravo gene` against stand-in servers whose paging never ends.

Each stand-in is a plain http.server started by the test, independent of the emulator:
it answers every /region or /gene request with a page of records and a next link.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers import run_gensvc, send_json

REGION = ["bravo", "region", "--chrom", "22", "--start", "1000", "--end", "1100", "--limit", "10"]
GENE = ["bravo", "gene", "--name", "LOOP1", "--limit", "10"]
GENE_EXTENT = {"name": "LOOP1", "id": "ENSG00000000001", "chrom": "22", "start": 1000, "stop": 1100, "strand": "+"}
# what gensvc may read at most: 101 bp hold at most 101 * 4 + 1000 records, at 10 a page
PAGE_BOUND = (101 * 4 + 1000) // 10 + 1


class EndlessBravo(BaseHTTPRequestHandler):
    """Pages for ever. ``mode``: "self" links each page to itself, "distinct" to a new
    cursor each time; "replay" links to new cursors but sends the same records again."""

    mode = "self"
    total = None
    served = 0

    def do_GET(self):
        type(self).served += 1
        url = urlsplit(self.path)
        cursor = int(parse_qs(url.query).get("last", ["0"])[0])
        first = 0 if self.mode == "replay" else type(self).served * 10
        records = [
            {"variant_id": f"22-{1000 + n % 100}-A-G{n}", "chrom": "22", "pos": 1000 + n % 100, "ref": "A", "alt": f"G{n}",
             "allele_count": 1, "allele_num": 125568, "allele_freq": 7.96381e-06, "filter": "PASS", "site_quality": 255.0}
            for n in range(first, first + 10)
        ]
        link = self.path if self.mode == "self" else f"{url.path}?{url.query.split('&last=')[0]}&last={cursor + 1}"
        body = {"data": records, "format": "json", "next": f"http://{self.headers['Host']}{link}"}
        if url.path.endswith("/gene"):
            body["gene"] = GENE_EXTENT
        if self.total is not None:
            body["total"] = self.total
        send_json(self, body)

    def log_message(self, *args):
        pass


@pytest.fixture
def endless():
    servers = []

    def start(mode, total=None):
        handler = type("Handler", (EndlessBravo,), {"mode": mode, "total": total, "served": 0})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return handler, f"http://127.0.0.1:{server.server_port}/freeze5/hg38/api/v1/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def run_against(tmp_path, env, url, args):
    out = tmp_path / "variants.tsv"
    done = run_gensvc([*args, "--output", f"variants={out}"], env | {"GENSVC_BRAVO_URL": url, "GENSVC_BRAVO_RATE_LIMIT": "off"},
                      timeout=120)  # a guard against hanging the suite, not a timed assertion
    return done, out


def assert_stopped_clearly(done, out):
    assert done.returncode == 5, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "bravo paging does not end" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("args", [REGION, GENE], ids=["region", "gene"])
def test_a_next_link_that_repeats_stops_at_once(tmp_path, env, endless, args):
    handler, url = endless("self")
    done, out = run_against(tmp_path, env, url, args)
    assert_stopped_clearly(done, out)
    assert "links to a page already read" in done.stderr
    assert handler.served == 2


@pytest.mark.parametrize("args", [REGION, GENE], ids=["region", "gene"])
def test_distinct_next_links_that_never_end_stop_at_the_query_bound(tmp_path, env, endless, args):
    handler, url = endless("distinct")
    done, out = run_against(tmp_path, env, url, args)
    assert_stopped_clearly(done, out)
    assert f"at most {PAGE_BOUND} pages" in done.stderr
    assert handler.served == PAGE_BOUND


def test_the_servers_own_total_bounds_the_pages(tmp_path, env, endless):
    handler, url = endless("distinct", total=35)
    done, out = run_against(tmp_path, env, url, REGION)
    assert_stopped_clearly(done, out)
    assert handler.served == 35 // 10 + 1


def test_pages_that_repeat_their_records_stop_at_the_second(tmp_path, env, endless):
    handler, url = endless("replay")
    done, out = run_against(tmp_path, env, url, REGION)
    assert_stopped_clearly(done, out)
    assert "repeats records already read" in done.stderr
    assert handler.served == 2
