"""ltikit.testing.lti13: a tool author tests an LTI 1.3 view with a Flask test client,
no platform running."""

from __future__ import annotations

import pytest
from flask import Flask

from ltikit.flask import LTIKit, lti
from ltikit.testing.lti13 import TestPlatform

TOOL = "https://tool.example.edu"


@pytest.fixture
def app(tmp_path):
    app = Flask("tool", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="tool-secret")
    app.kit = LTIKit(app)  # the tool's extension, kept where the test can reach it

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        return f"{lti.user.name} in {lti.context.title} as {','.join(r.name for r in lti.roles)}"

    @app.route("/grades", methods=["POST"])
    @lti(request="initial", role="staff")
    def grades(lti):
        return "grades"

    return app


@pytest.fixture
def platform(app):
    platform = TestPlatform()
    platform.register(app.kit.registrations)
    return platform


def test_a_teacher_and_a_student_launch_a_13_view(app, platform):
    client = app.test_client()
    page = platform.launch(client, TOOL + "/launch")
    assert page.status_code == 200
    assert page.get_data(as_text=True) == "Ada Teacher in Introduction to Biology as Instructor"
    student = platform.launch(app.test_client(), TOOL + "/launch", roles=["Learner"],
                              name="Sam Student", context={"id": "c2", "title": "Chemistry"})
    assert student.get_data(as_text=True) == "Sam Student in Chemistry as Learner"


def test_the_tools_own_checks_still_apply(app, platform):
    refused = platform.launch(app.test_client(), TOOL + "/grades", roles=["Learner"])
    assert refused.status_code == 403
    # A deep linking request is not what a plain @lti view takes.
    other = platform.launch(app.test_client(), TOOL + "/launch",
                            message_type="LtiDeepLinkingRequest")
    assert other.status_code in (400, 403)
    # A platform the tool does not know is refused at the login.
    stranger = TestPlatform(issuer="https://other.example.edu")
    with pytest.raises(AssertionError, match="did not redirect"):
        stranger.launch(app.test_client(), TOOL + "/launch")


def test_a_token_signed_with_another_key_is_refused(app, platform):
    impostor = TestPlatform(kid=platform.kid)  # same names, another key
    client = app.test_client()
    login = client.get("/lti13/login", base_url=TOOL, query_string={
        "iss": platform.issuer, "login_hint": "h", "target_link_uri": TOOL + "/launch",
        "client_id": platform.client_id})
    from urllib.parse import parse_qs, urlsplit

    auth = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["Location"]).query).items()}
    token = impostor.id_token(impostor.claims(nonce=auth["nonce"],
                                              target_link_uri=TOOL + "/launch"))
    answer = client.post("/launch", base_url=TOOL, data={"id_token": token,
                                                         "state": auth["state"]})
    assert answer.status_code == 401
