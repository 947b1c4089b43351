"""One redirect URI (LTIKIT_LTI13_REDIRECT_URI): a tool registers only /launch with the
platform, as Moodle, Canvas and D2L require, and launches meant for other pages of the tool
(deep-linked items, content selection) are verified there and handed to their page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from ltikit.errors import LTIConfigurationError
from ltikit.flask import LTIKit, lti
from ltikit.testing import Clock
from ltikit.testing.lti13 import TestPlatform

TOOL = "https://tool.example.edu"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


def deep_linking(return_url="https://platform.example.edu/dl"):
    """The claims of a deep linking request (content selection)."""
    return {"message_type": "LtiDeepLinkingRequest", DL_SETTINGS: {
        "deep_link_return_url": return_url, "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe"]}}


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(tmp_path, clock):
    app = Flask("tool", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="tool-secret", LTIKIT_LTI13_REDIRECT_URI="/launch")
    app.kit = LTIKit(app, clock=clock)

    @app.route("/launch", methods=["GET", "POST"])
    @lti(request="initial")
    def launch(lti):
        return f"launch page: {lti.user.name}"

    @app.route("/item/<int:number>")
    @lti(request="initial")
    def item(lti, number):
        return f"item {number} for {lti.user.name} ({lti.launch.message_type})"

    @app.route("/staff")
    @lti(request="initial", role="staff")
    def staff(lti):
        return "staff only"

    @app.route("/pick")
    @lti(request="initial", message_types=("LtiDeepLinkingRequest",))
    def pick(lti):
        return f"pick content for {lti.launch.deep_linking.return_url}"

    return app


@pytest.fixture
def platform(app):
    platform = TestPlatform()
    platform.register(app.kit.registrations)
    return platform


def login(client, platform, target):
    """The tool's OIDC login for ``target``: the auth request's parameters."""
    answer = client.get("/lti13/login", base_url=TOOL, query_string={
        "iss": platform.issuer, "login_hint": "h", "target_link_uri": target,
        "client_id": platform.client_id, "lti_message_hint": "m"})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def follow(client, answer):
    assert answer.status_code == 302, answer.get_data(as_text=True)
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == TOOL
    return client.get(f"{location.path}?{location.query}", base_url=TOOL)


def test_every_login_names_the_one_redirect_uri(app, platform):
    for target in (TOOL + "/item/7", TOOL + "/launch?item=8", TOOL + "/launch"):
        assert login(app.test_client(), platform, target)["redirect_uri"] == TOOL + "/launch"


def test_a_deep_linked_item_at_its_own_path_is_handed_to_its_page_once(app, platform):
    client = app.test_client()
    handed = platform.launch(client, TOOL + "/item/7")
    location = handed.headers["Location"]
    assert location.startswith(TOOL + "/item/7?ltikit_handoff=")
    page = follow(client, handed)
    assert page.status_code == 200
    assert page.get_data(as_text=True) == "item 7 for Ada Teacher (LtiResourceLinkRequest)"
    # The hand-off is single-use: the same link again (from the history, a log) is refused.
    again = app.test_client().get(location.removeprefix(TOOL), base_url=TOOL)
    assert again.status_code == 401 and b"handoff_used" in again.data


def test_a_target_with_a_query_keeps_it(app, platform):
    client = app.test_client()
    handed = platform.launch(client, TOOL + "/launch?item=8")
    assert urlsplit(handed.headers["Location"]).query.startswith("item=8&ltikit_handoff=")
    assert follow(client, handed).get_data(as_text=True) == "launch page: Ada Teacher"


def test_a_launch_for_the_redirect_uri_itself_is_not_handed_off(app, platform):
    page = platform.launch(app.test_client(), TOOL + "/launch")
    assert page.status_code == 200 and page.get_data(as_text=True) == "launch page: Ada Teacher"


def test_the_target_page_checks_its_own_role_and_message_types(app, platform):
    client = app.test_client()
    student = follow(client, platform.launch(client, TOOL + "/staff", roles=["Learner"]))
    assert student.status_code == 403
    client = app.test_client()
    picked = follow(client, platform.launch(client, TOOL + "/pick", **deep_linking()))
    assert picked.get_data(as_text=True) == "pick content for https://platform.example.edu/dl"
    client = app.test_client()
    wrong = follow(client, platform.launch(client, TOOL + "/item/3", **deep_linking()))
    assert wrong.status_code == 400 and b"wrong_message_type" in wrong.data


def test_a_hand_off_expires_and_cannot_be_forged(app, platform, clock):
    client = app.test_client()
    handed = platform.launch(client, TOOL + "/item/7")
    clock.advance(61)
    late = follow(client, handed)
    assert late.status_code == 401 and b"bad_handoff" in late.data
    forged = client.get("/item/7?ltikit_handoff=1-abc.def.ghi", base_url=TOOL)
    assert forged.status_code == 401 and b"bad_handoff" in forged.data


def test_a_signed_target_on_another_site_is_refused(app, platform):
    """A deep linking request's target is not the login's: the token's own target must
    still be a page of the tool before anything goes there."""
    client = app.test_client()
    auth = login(client, platform, TOOL + "/pick")
    token = platform.id_token(platform.claims(
        nonce=auth["nonce"], target_link_uri="https://evil.example/pick", **deep_linking()))
    answer = client.post("/launch", base_url=TOOL, data={"id_token": token,
                                                         "state": auth["state"]})
    assert answer.status_code == 401 and b"foreign_target_link_uri" in answer.data
    assert "Location" not in answer.headers


@pytest.mark.parametrize("value", ["//evil.example/launch", "javascript:alert(1)",
                                   "/launch#frag", "launch", "ftp://tool.example.edu/x"])
def test_a_redirect_uri_that_is_not_a_page_of_the_tool_fails_at_start_up(tmp_path, value):
    app = Flask("tool", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="s", LTIKIT_LTI13_REDIRECT_URI=value)
    with pytest.raises(LTIConfigurationError, match="LTIKIT_LTI13_REDIRECT_URI"):
        LTIKit(app)
