"""gensvc.core.download against a tiny http.server thread on loopback that honours Range
(or not): a body cut short resumes where it broke, a server ignoring Range starts over,
and whatever happens no half file is left."""

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gensvc.core.download import download
from gensvc.core.http import ServiceSession
from gensvc.errors import ServiceUnavailable

BODY = bytes(range(256)) * 12_000  # 3 MB: more than one of the download's 1 MiB chunks before the cut
SHA = hashlib.sha256(BODY).hexdigest()


class Storage(BaseHTTPRequestHandler):
    """Serves BODY. ``cuts``: how many answers stop halfway; ``ranges``: honour Range
    (``"yes"``), ignore it (``"no"``) or answer another range than asked (``"wrong"``)."""

    protocol_version = "HTTP/1.1"
    cuts, ranges, seen = 0, "yes", []

    def do_GET(self):
        asked = self.headers.get("Range")
        type(self).seen.append(asked)
        start = int(re.match(r"bytes=(\d+)-", asked).group(1)) if asked else 0
        if asked and self.ranges == "wrong":
            start = max(start - 1000, 0)
        if asked and self.ranges != "no":
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        else:
            self.send_response(200)
            start = 0
        body = BODY[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if type(self).cuts > 0:
            type(self).cuts -= 1
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True  # the rest never comes
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def storage():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Storage)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    Storage.cuts, Storage.ranges, Storage.seen = 0, "yes", []
    yield Storage, f"http://127.0.0.1:{server.server_port}/results/out.bin"
    server.shutdown()
    server.server_close()


@pytest.fixture
def session():
    return ServiceSession("demo", max_attempts=4, backoff=0.0, deadline=30.0, read_timeout=10.0)


def test_a_whole_body_is_written_in_one_request(tmp_path, storage, session):
    handler, url = storage
    got = download(session, url, str(tmp_path / "out.bin"), sha256=SHA)
    assert (got.size, got.sha256, got.resumed) == (len(BODY), SHA, 0)
    assert handler.seen == [None]


def test_a_body_cut_short_resumes_from_where_it_broke(tmp_path, storage, session):
    handler, url = storage
    handler.cuts = 1
    got = download(session, url, str(tmp_path / "out.bin"), sha256=SHA)
    assert (tmp_path / "out.bin").read_bytes() == BODY
    assert got.resumed == 1
    assert handler.seen[0] is None and len(handler.seen) == 2
    resumed_at = int(re.match(r"bytes=(\d+)-$", handler.seen[1]).group(1))
    assert 0 < resumed_at <= len(BODY) // 2  # only the rest was asked for


def test_a_server_ignoring_range_is_read_again_from_the_start(tmp_path, storage, session):
    handler, url = storage
    handler.cuts, handler.ranges = 1, "no"
    got = download(session, url, str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == BODY  # not the first half twice
    assert got.resumed == 1 and got.sha256 == SHA
    assert handler.seen[0] is None and handler.seen[1].startswith("bytes=")  # asked, and not given


def test_a_server_answering_another_range_than_asked_is_read_again_from_the_start(tmp_path, storage, session):
    handler, url = storage
    handler.cuts, handler.ranges = 1, "wrong"
    got = download(session, url, str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == BODY
    assert got.sha256 == SHA
    assert handler.seen[0] is None and handler.seen[1].startswith("bytes=") and handler.seen[2] is None


def test_a_body_cut_short_on_every_attempt_ends_after_the_budget_leaving_no_file(tmp_path, storage, session):
    handler, url = storage
    handler.cuts = 100
    with pytest.raises(ServiceUnavailable, match="after 4 attempts"):
        download(session, url, str(tmp_path / "out.bin"))
    assert len(handler.seen) == 4
    assert list(tmp_path.iterdir()) == []  # no out.bin, no out.bin.part


def test_bytes_that_do_not_match_the_checksum_are_not_kept(tmp_path, storage, session):
    _, url = storage
    with pytest.raises(ServiceUnavailable, match="does not match its checksum"):
        download(session, url, str(tmp_path / "out.bin"), sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_an_old_file_is_replaced_only_once_the_new_one_is_whole(tmp_path, storage, session):
    handler, url = storage
    (tmp_path / "out.bin").write_bytes(b"old")
    handler.cuts = 100
    with pytest.raises(ServiceUnavailable):
        download(session, url, str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == b"old"
