"""gensvc.core.errormap: one table from a refused answer to the error it means, in process.

Each service adds only its own rows (Bravo's 400 "not authorized", OpenCRAVAT's
500 {"status": "error"}, CGI's 403 job quota); everything else is the shared table.
"""

import json

import pytest
import requests

from gensvc.core.errormap import ErrorMap, Rule, json_field
from gensvc.errors import AuthError, RequestRejected, ServiceUnavailable

URL = "http://127.0.0.1:9/api/v1/variant"


def answer(status: int, body=None, *, content_type="application/json", url=URL + "?chrom=22") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = url
    response._content = (body if isinstance(body, str) else json.dumps(body)).encode() if body is not None else b""
    response.headers["Content-Type"] = content_type
    return response


PLAIN = ErrorMap("demo", message=json_field("error"), auth_hint="set GENSVC_DEMO_TOKEN")


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, RequestRejected), (404, RequestRejected), (422, RequestRejected), (401, AuthError), (403, AuthError),
     (429, ServiceUnavailable), (500, ServiceUnavailable), (503, ServiceUnavailable)],
)
def test_the_shared_table_maps_each_status_to_its_kind_of_error(status, error):
    with pytest.raises(error) as raised:
        PLAIN.check(answer(status, {"error": "no"}))
    assert type(raised.value) is error


@pytest.mark.parametrize("status", [200, 201, 204, 206])
def test_an_answer_that_is_ok_raises_nothing(status):
    PLAIN.check(answer(status, {"error": "ignored on success"}))


def test_the_error_carries_service_status_url_and_the_services_message_from_its_constructor():
    error = PLAIN.error_for(answer(422, {"error": "chrom is required"}))
    assert (error.service, error.status, error.url, error.message) == ("demo", 422, URL, "chrom is required")
    assert error.where == URL  # the query is left off
    assert str(error) == f"demo answered HTTP 422: chrom is required [{URL}]"


def test_auth_errors_carry_the_services_hint():
    error = PLAIN.error_for(answer(401, {"error": "expired"}))
    assert isinstance(error, AuthError) and error.hint == "set GENSVC_DEMO_TOKEN"
    assert "refused the credentials" in error.what and "expired" in error.what


def test_an_html_error_page_is_named_by_its_title_never_its_markup():
    page = "<html><head><title>Site maintenance</title></head><body><h1>Down</h1></body></html>"
    error = PLAIN.error_for(answer(404, page, content_type="text/html"))
    assert "Site maintenance" in str(error) and "<" not in str(error) and error.message is None


def test_a_services_own_row_comes_before_the_shared_table():
    bravo_like = ErrorMap("bravo", message=json_field("error"), auth_hint="token", rules=(
        Rule(400, AuthError, says="not authorized", what="bravo: not authorized"),
        Rule(400, RequestRejected, what="bravo refused the query: {message}"),
    ))
    auth = bravo_like.error_for(answer(400, {"error": "not authorized"}))
    refused = bravo_like.error_for(answer(400, {"error": "bad start"}))
    assert isinstance(auth, AuthError) and auth.what == "bravo: not authorized" and auth.hint == "token"
    assert type(refused) is RequestRejected and refused.what == "bravo refused the query: bad start"


def opencravat_message(response):
    try:
        body = json.loads(response.text)
    except ValueError:
        return None
    return str(body.get("msg", "")) if isinstance(body, dict) and body.get("status") == "error" else None


OC_LIKE = ErrorMap("opencravat", message=opencravat_message, auth_hint="login", rules=(
    Rule(None, RequestRejected, says="", what="opencravat answered: {message}"),
))


def test_a_row_for_any_status_that_needs_the_services_own_words_turns_a_5xx_into_a_refusal():
    error = OC_LIKE.error_for(answer(500, {"status": "error", "msg": "no such job"}))
    assert type(error) is RequestRejected and error.what == "opencravat answered: no such job" and error.status == 500
    assert type(OC_LIKE.error_for(answer(500, "Internal Server Error", content_type="text/plain"))) is ServiceUnavailable


def test_a_5xx_is_final_only_when_a_services_row_makes_it_a_refusal():
    assert OC_LIKE.is_final(answer(500, {"status": "error", "msg": "bad options"}))
    assert not OC_LIKE.is_final(answer(500, "Internal Server Error", content_type="text/plain"))
    assert not OC_LIKE.is_final(answer(503, {"status": "busy"}))
    assert not PLAIN.is_final(answer(500, {"error": "boom"}))


def test_a_message_test_reads_the_services_words_not_the_whole_body():
    cgi_like = ErrorMap("cgi", message=json_field("message"), auth_hint="creds", rules=(
        Rule(403, RequestRejected, says="maximum number of jobs"),
    ))
    quota = cgi_like.error_for(answer(403, {"message": "You have reached the maximum number of jobs"}))
    forbidden = cgi_like.error_for(answer(403, {"message": "Forbidden", "note": "maximum number of jobs"}))
    assert type(quota) is RequestRejected and quota.message.endswith("maximum number of jobs")
    assert type(forbidden) is AuthError


def test_a_string_body_is_the_services_message_when_it_has_no_field():
    error = ErrorMap("cgi", message=json_field("message"), auth_hint="x").error_for(answer(404, json.dumps("Job not found")))
    assert error.message == "Job not found" and error.what == "cgi answered HTTP 404: Job not found"


def test_a_row_marked_maintenance_names_the_answers_that_say_the_service_is_down_for_a_while():
    errors = ErrorMap("demo", message=json_field("error"), auth_hint="-",
                      rules=(Rule(503, ServiceUnavailable, says="upgrading", maintenance=True),))
    assert errors.maintenance(answer(503, {"error": "upgrading the database"})) == "upgrading the database"
    assert errors.maintenance(answer(503, {"error": "overloaded"})) is None
    assert errors.maintenance(answer(500, {"error": "upgrading"})) is None
    assert errors.maintenance(answer(200, {"error": "upgrading"})) is None
    assert PLAIN.maintenance(answer(503, {"error": "upgrading"})) is None
