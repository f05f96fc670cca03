"""gensvc.core.client.ServiceClient, the shape of every client, against a stand-in
http.server on loopback: endpoints by name, credentials per request, errors from the map."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gensvc.core.auth import BearerToken
from gensvc.core.client import ServiceClient
from gensvc.core.errormap import ErrorMap, Rule, json_field
from gensvc.core.http import ServiceSession
from gensvc.errors import AuthError, RequestRejected, ServiceUnavailable
from helpers import send_json


class StandIn(BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):
        StandIn.seen.append((self.path, self.headers.get("Authorization")))
        status, body = ANSWERS.get(self.path.split("?")[0], (404, {"error": "no such path"}))
        send_json(self, body, status)

    def log_message(self, *args):
        pass


ANSWERS = {
    "/api/jobs/j1": (200, {"id": "j1", "status": "done"}),
    "/api/jobs/expired": (400, {"error": "token expired"}),
    "/api/jobs/broken": (500, {"error": "internal"}),
    "/api/jobs/wrong": (500, {"error": "refused: bad options"}),
}

DEMO_ERRORS = ErrorMap("demo", message=json_field("error"), auth_hint="set GENSVC_DEMO_TOKEN", rules=(
    Rule(400, AuthError, says="token expired"),
    Rule(500, RequestRejected, says="refused:"),
))


class DemoClient(ServiceClient):
    SERVICE = "demo"
    ENDPOINTS = {"jobs": "jobs", "job": "jobs/{job_id}"}
    ERRORS = DEMO_ERRORS


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api/"
    httpd.shutdown()


@pytest.fixture
def session():
    StandIn.seen.clear()
    with ServiceSession("demo", max_attempts=3, backoff=0.01, backoff_max=0.02, deadline=30,
                        is_final=DEMO_ERRORS.is_final) as made:
        yield made


def test_an_endpoint_is_named_once_and_its_ids_cannot_add_a_path():
    client = DemoClient(None, "https://demo.example/api/")
    assert client.url("job", job_id="j1") == "https://demo.example/api/jobs/j1"
    assert client.url("job", job_id="../admin") == "https://demo.example/api/jobs/..%2Fadmin"
    assert client.url("jobs") == "https://demo.example/api/jobs"


def test_a_call_sends_its_credential_with_the_request_and_leaves_the_session_unchanged(server, session):
    before = dict(session.headers)
    client = DemoClient(session, server, auth=BearerToken("s3cret"))
    assert client.call("GET", "job", job_id="j1", params={"fields": "status"}) == {"id": "j1", "status": "done"}
    assert StandIn.seen == [("/api/jobs/j1?fields=status", "Bearer s3cret")]
    assert dict(session.headers) == before and session.auth is None
    assert "s3cret" not in repr(client.auth)


def test_a_refusal_raises_the_services_error_carrying_status_url_and_message(server, session):
    client = DemoClient(session, server, auth=BearerToken("old"))
    with pytest.raises(AuthError) as raised:
        client.call("GET", "job", job_id="expired")
    error = raised.value
    assert (error.service, error.status, error.message) == ("demo", 400, "token expired")
    assert error.url == f"{server}jobs/expired" and error.hint == "set GENSVC_DEMO_TOKEN"
    assert len(StandIn.seen) == 1  # a 4xx is never retried


def test_a_5xx_the_map_calls_final_is_answered_at_once_and_any_other_is_retried(server, session):
    client = DemoClient(session, server)
    with pytest.raises(RequestRejected) as refused:
        client.call("GET", "job", job_id="wrong")
    assert refused.value.status == 500 and len(StandIn.seen) == 1
    StandIn.seen.clear()
    with pytest.raises(ServiceUnavailable):
        client.call("GET", "job", job_id="broken")
    assert len(StandIn.seen) == 3  # every attempt of the budget
