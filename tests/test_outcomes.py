"""A graded launch sends its score to a platform's Basic Outcomes endpoint over real HTTP.

The endpoint below checks the request the way the spec says a platform must: OAuth 1.0a
signature in the Authorization header (verified with oauthlib) and ``oauth_body_hash``
equal to the SHA-1 of the body.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import xml.etree.ElementTree as ET
from typing import NamedTuple

import pytest
from oauthlib.oauth1.rfc5849 import signature
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from conftest import KEY, SECRET, build_tool
from ltikit.errors import LTIPostMessageException
from ltikit.lti11.outcomes import NS, build_request, parse_response

BASE = "https://tool.example.edu"


class Secrets(NamedTuple):
    client_secret: str
    resource_owner_secret: str


def pox_response(code_major: str, *, score: str | None = None,
                 description: str = "") -> str:
    body = "<replaceResultResponse/>"
    if score is not None:
        body = (f"<readResultResponse><result><resultScore><language>en</language>"
                f"<textString>{score}</textString></resultScore></result></readResultResponse>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><imsx_POXEnvelopeResponse xmlns="{NS}">'
            "<imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version>"
            "<imsx_messageIdentifier>1</imsx_messageIdentifier><imsx_statusInfo>"
            f"<imsx_codeMajor>{code_major}</imsx_codeMajor><imsx_severity>status"
            f"</imsx_severity><imsx_description>{description}</imsx_description>"
            "</imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader>"
            f"<imsx_POXBody>{body}</imsx_POXBody></imsx_POXEnvelopeResponse>")


class OutcomesEndpoint:
    """A platform's outcome service on 127.0.0.1, recording what it received."""

    def __init__(self):
        self.mode = "verify"
        self.received: list[dict] = []
        self.server = make_server("127.0.0.1", 0, self.app)
        self.url = f"http://127.0.0.1:{self.server.server_port}/outcomes"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @Request.application
    def app(self, request: Request) -> Response:
        body = request.get_data()
        if self.mode == "slow":  # an outcome service that takes 5 s to answer
            import time

            time.sleep(5)
        if self.mode == "redirect":  # a consumer sending the grade elsewhere
            return Response(status=307, headers={"Location": self.url + "?moved"})
        if self.mode == "http500":
            return Response(pox_response("success"), status=500)
        headers = {"Authorization": request.headers.get("Authorization", "")}
        params = dict(signature.collect_parameters(headers=headers,
                                                   exclude_oauth_signature=False))
        body_hash_ok = params.get("oauth_body_hash") == \
            base64.b64encode(hashlib.sha1(body).digest()).decode()
        base_string = signature.signature_base_string(
            request.method, signature.base_string_uri(request.base_url),
            signature.normalize_parameters(signature.collect_parameters(headers=headers)))
        expected = signature.sign_hmac_sha1_with_client(base_string, Secrets(SECRET, ""))
        signature_ok = expected == params.get("oauth_signature") and \
            params.get("oauth_consumer_key") == KEY
        if request.method == "PUT":  # Open edX's LTI 2.0 result service
            self.received.append({"signature_ok": signature_ok, "body_hash_ok": body_hash_ok,
                                  "content_type": request.content_type, "path": request.path,
                                  "json": json.loads(body)})
            return Response(status=200 if signature_ok and body_hash_ok else 401)
        root = ET.fromstring(body)
        self.received.append({"signature_ok": signature_ok, "body_hash_ok": body_hash_ok,
                              "content_type": request.content_type, "xml": root})
        if not (signature_ok and body_hash_ok):
            return Response(pox_response("failure", description="bad signature"),
                            mimetype="application/xml")
        if self.mode == "refuse":
            return Response(pox_response("failure", description="no such sourcedid"),
                            mimetype="application/xml")
        if root.find(f".//{{{NS}}}readResultRequest") is not None:
            return Response(pox_response("success", score="0.75"), mimetype="application/xml")
        return Response(pox_response("success"), mimetype="application/xml")

    def close(self):
        self.server.shutdown()


@pytest.fixture
def endpoint():
    server = OutcomesEndpoint()
    yield server
    server.close()


@pytest.fixture
def graded_tool(tmp_path, endpoint):
    from ltikit.flask import lti

    app = build_tool(tmp_path)

    @app.route("/grade", methods=["POST"])
    @lti(request="session")
    def grade(lti):
        from flask import request

        score = request.form["score"]
        return {"ok": lti.post_grade(float(score), result_text=request.form.get("text"))}

    @app.route("/read")
    @lti(request="session")
    def read(lti):
        return {"score": lti.read_grade()}

    @app.route("/grade2", methods=["POST"])
    @lti(request="session")
    def grade2(lti):
        from flask import request

        return {"ok": lti.post_grade2(float(request.form["score"]),
                                      comment=request.form.get("comment", ""))}

    return app


def launch_graded(client, signed, endpoint, **overrides):
    launch = signed(roles="Learner", lis_outcome_service_url=endpoint.url,
                    lis_result_sourcedid="course-1:link-1:student-42", **overrides)
    assert client.open(**launch.for_flask()).status_code == 200


def test_post_grade_sends_a_signed_replace_result_with_body_hash(graded_tool, signed,
                                                                  endpoint):
    client = graded_tool.test_client()
    launch_graded(client, signed, endpoint)
    response = client.post("/grade", base_url=BASE, data={"score": "0.9", "text": "Good <b>"})
    assert response.get_json() == {"ok": True}
    (request,) = endpoint.received
    assert request["signature_ok"] and request["body_hash_ok"]
    assert request["content_type"] == "application/xml"
    xml = request["xml"]
    assert xml.findtext(f".//{{{NS}}}sourcedId") == "course-1:link-1:student-42"
    assert xml.findtext(f".//{{{NS}}}resultScore/{{{NS}}}textString") == "0.9"
    assert xml.findtext(f".//{{{NS}}}resultData/{{{NS}}}text") == "Good <b>"


def test_out_of_range_scores_return_false_and_send_nothing(graded_tool, signed, endpoint):
    client = graded_tool.test_client()
    launch_graded(client, signed, endpoint)
    assert client.post("/grade", base_url=BASE, data={"score": "1.5"}).get_json() == \
        {"ok": False}
    assert client.post("/grade", base_url=BASE, data={"score": "nan"}).get_json() == \
        {"ok": False}
    assert endpoint.received == []


def test_post_grade2_puts_an_lti_2_result_as_open_edx_takes_it(graded_tool, signed,
                                                                 endpoint):
    """PyLTI's post_grade2 (Open edX's LTI 2.0 result REST handler), so PyLTI apps that
    call it keep working after the import change."""
    client = graded_tool.test_client()
    handler = endpoint.url.replace("/outcomes", "/courses/x/block/handler/grade_handler")
    launch = signed(roles="Learner", user_id="student-42", lis_outcome_service_url=handler,
                    lis_result_sourcedid="course-1:link-1:student-42")
    assert client.open(**launch.for_flask()).status_code == 200
    answer = client.post("/grade2", base_url=BASE, data={"score": "0.8", "comment": "Nice"})
    assert answer.get_json() == {"ok": True}
    (put,) = endpoint.received
    assert put["signature_ok"] and put["body_hash_ok"]
    assert put["path"] == "/courses/x/block/handler/lti_2_0_result_rest_handler/user/student-42"
    assert put["content_type"] == "application/vnd.ims.lis.v2.result+json"
    assert put["json"] == {"@context": "http://purl.imsglobal.org/ctx/lis/v2/Result",
                           "@type": "Result", "resultScore": 0.8, "comment": "Nice"}
    assert client.post("/grade2", base_url=BASE, data={"score": "2"}).get_json() == \
        {"ok": False}


def test_read_grade(graded_tool, signed, endpoint):
    client = graded_tool.test_client()
    launch_graded(client, signed, endpoint)
    assert client.get("/read", base_url=BASE).get_json() == {"score": 0.75}


@pytest.mark.parametrize("mode", ["refuse", "http500"])
def test_a_refused_or_failed_outcome_raises_post_message_exception(
        graded_tool, signed, endpoint, mode):
    client = graded_tool.test_client()
    launch_graded(client, signed, endpoint)
    endpoint.mode = mode
    response = client.post("/grade", base_url=BASE, data={"score": "0.5"})
    # The view did not catch it: the decorator's error page says what went wrong.
    assert response.status_code == 502
    text = response.get_data(as_text=True)
    assert ("no such sourcedid" in text) if mode == "refuse" else ("HTTP 500" in text)


def test_a_launch_without_outcome_service_cannot_be_graded(graded_tool, signed, endpoint):
    client = graded_tool.test_client()
    assert client.open(**signed().for_flask()).status_code == 200
    response = client.post("/grade", base_url=BASE, data={"score": "0.5"})
    assert response.status_code == 502
    assert "cannot take a grade" in response.get_data(as_text=True)


def test_unreachable_outcome_service_is_a_clean_error(graded_tool, signed, endpoint):
    client = graded_tool.test_client()
    endpoint.close()
    launch_graded(client, signed, endpoint)
    response = client.post("/grade", base_url=BASE, data={"score": "0.5"})
    assert response.status_code == 502
    assert "could not be reached" in response.get_data(as_text=True)


def test_pylti_url_fix_rewrites_the_outcome_url(tmp_path, signed, endpoint):
    from ltikit.flask import lti

    app = build_tool(tmp_path, PYLTI_URL_FIX={
        "https://localhost:8000/": {"https://localhost:8000/": endpoint.url.rsplit("/", 1)[0]
                                    + "/"}})

    @app.route("/url")
    @lti(request="session")
    def url(lti):
        return lti.response_url

    client = app.test_client()
    launch = signed(roles="Learner", lis_outcome_service_url="https://localhost:8000/outcomes",
                    lis_result_sourcedid="s")
    client.open(**launch.for_flask())
    assert client.get("/url", base_url=BASE).get_data(as_text=True) == endpoint.url


def test_the_xml_is_built_and_parsed_not_string_matched():
    body = build_request("replaceResult", "a&b<c>", score=1.0, result_url="https://x/?a=1&b=2")
    root = ET.fromstring(body)
    assert root.findtext(f".//{{{NS}}}sourcedId") == "a&b<c>"
    assert root.findtext(f".//{{{NS}}}resultData/{{{NS}}}url") == "https://x/?a=1&b=2"
    # A success string inside the description is not a success.
    sneaky = pox_response("failure", description="&lt;imsx_codeMajor&gt;success"
                                                 "&lt;/imsx_codeMajor&gt;")
    assert parse_response(sneaky.encode()).code_major == "failure"
    with pytest.raises(LTIPostMessageException):
        parse_response(b"<html>success</html>")


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<imsx_POXEnvelopeResponse xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">
<imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_statusInfo>
<imsx_codeMajor>success&lol2;</imsx_codeMajor></imsx_statusInfo></imsx_POXResponseHeaderInfo>
</imsx_POXHeader></imsx_POXEnvelopeResponse>"""


def test_outcome_responses_with_entities_are_refused_not_expanded():
    import pytest

    from ltikit.errors import LTIPostMessageException
    from ltikit.lti11.outcomes import parse_response

    with pytest.raises(LTIPostMessageException, match="not usable XML"):
        parse_response(BOMB)


def test_a_slow_outcome_service_is_given_up_at_its_deadline(tmp_path, signed, endpoint):
    import time

    from ltikit.flask import lti

    app = build_tool(tmp_path, LTIKIT_OUTCOMES_TIMEOUT="1 1.5")

    @app.route("/grade", methods=["POST"])
    @lti(request="session")
    def grade(lti):
        return {"ok": lti.post_grade(0.5)}

    client = app.test_client()
    launch_graded(client, signed, endpoint)
    endpoint.mode = "slow"
    started = time.monotonic()
    response = client.post("/grade", base_url=BASE)
    assert response.status_code == 502 and time.monotonic() - started < 3
    assert "did not answer within 1.5 s" in response.get_data(as_text=True)


def test_an_outcome_redirect_is_not_followed(graded_tool, signed, endpoint):
    client = graded_tool.test_client()
    launch_graded(client, signed, endpoint)
    endpoint.mode = "redirect"
    response = client.post("/grade", base_url=BASE, data={"score": "0.5"})
    assert response.status_code == 502 and "HTTP 307" in response.get_data(as_text=True)
    assert endpoint.received == []  # the signed grade was not sent again elsewhere

