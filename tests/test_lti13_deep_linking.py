"""The tool's Deep Linking 2.0 response: what it signs, and what it refuses to send."""

from __future__ import annotations

import jwt
import pytest

from ltikit.crypto import SecretBox
from ltikit.launch import DeepLinkingSettings
from ltikit.lti13.deep_linking import (
    DeepLinkingError,
    Html,
    LineItemSpec,
    Link,
    LtiResourceLink,
    auto_post_page,
    response_jwt,
)
from ltikit.lti13.registrations import Registration
from ltikit.lti13.tool_keys import ToolKeys
from ltikit.storage import SQLStorage, upgrade

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


@pytest.fixture
def keys(tmp_path):
    storage = SQLStorage(f"sqlite:///{tmp_path}/t.sqlite3")
    upgrade(storage.engine)
    keys = ToolKeys(storage.engine, SecretBox(SecretBox.generate_key()))
    keys.generate()
    return keys


REGISTRATION = Registration(id=1, name="p", issuer="https://platform.example.edu",
                            client_id="client-9", auth_login_url="https://p/auth",
                            token_url="https://p/token", jwks_url="https://p/jwks",
                            public_jwk=None, token_audience=None, deployment_policy="allow_list")


def settings(**changes) -> DeepLinkingSettings:
    values = {"return_url": "https://p/dl", "accept_types": ("ltiResourceLink", "link"),
              "accept_multiple": True, "data": "opaque-42"}
    return DeepLinkingSettings(**{**values, **changes})


def decoded(token: str, keys: ToolKeys) -> dict:
    public = jwt.PyJWK(keys.jwks()["keys"][0]).key
    return jwt.decode(token, public, algorithms=["RS256"], audience=REGISTRATION.issuer)


def test_the_response_is_signed_for_the_platform_and_echoes_its_data(keys):
    item = LtiResourceLink(url="https://tool/launch", title="Quiz 7", custom={"quiz": "7"},
                           line_item=LineItemSpec(score_maximum=10, label="Quiz 7"))
    claims = decoded(response_jwt(settings(), REGISTRATION, "dep-1",
                                  [item, Link(url="https://example.com", title="Read")], keys,
                                  message="Added"), keys)
    assert claims["iss"] == "client-9" and claims["aud"] == "https://platform.example.edu"
    assert claims[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[CLAIM + "version"] == "1.3.0" and claims[CLAIM + "deployment_id"] == "dep-1"
    assert claims[DL + "data"] == "opaque-42" and claims[DL + "msg"] == "Added"
    assert claims[DL + "content_items"] == [
        {"type": "ltiResourceLink", "url": "https://tool/launch", "title": "Quiz 7",
         "custom": {"quiz": "7"}, "lineItem": {"scoreMaximum": 10, "label": "Quiz 7"}},
        {"type": "link", "url": "https://example.com", "title": "Read"}]
    assert claims["nonce"] and claims["exp"] > claims["iat"]


@pytest.mark.parametrize(("changes", "items"), [
    ({"accept_types": ("ltiResourceLink",)}, [Html(html="<b>hi</b>")]),
    ({"accept_multiple": False}, [Link(url="https://a"), Link(url="https://b")]),
    ({"accept_lineitem": False}, [LtiResourceLink(line_item=LineItemSpec(score_maximum=1))]),
    ({"return_url": "javascript:alert(document.cookie)"}, []),
])
def test_items_the_platform_does_not_accept_are_refused_before_signing(keys, changes, items):
    with pytest.raises(DeepLinkingError):
        response_jwt(settings(**changes), REGISTRATION, "dep-1", items, keys)


def test_nothing_chosen_is_an_empty_list_and_the_page_posts_it(keys):
    token = response_jwt(settings(), REGISTRATION, "dep-1", [], keys)
    assert decoded(token, keys)[DL + "content_items"] == []
    page = auto_post_page("https://p/dl?x=1&y='2'", {"JWT": token})
    assert "action='https://p/dl?x=1&amp;y=&#x27;2&#x27;'" in page.body
    assert f"value='{token}'" in page.body and "script-src 'nonce-" in page.headers[
        "Content-Security-Policy"]


# -- the platform's side: what it accepts back ----------------------------------------------

def test_the_platform_takes_a_signed_response_once_from_the_user_who_asked(tmp_path):
    import html as html_module
    import re

    from flask import Flask

    from browser import serve
    from ltikit.flask import LTIKit, lti
    from ltikit.lti13 import Registrations
    from ltikit.platform import DevPlatform
    from ltikit.testing.platform import PlatformUser

    app = Flask("dl", instance_path=str(tmp_path / "dl"))
    app.config.update(SECRET_KEY="s", LTIKIT_ENCRYPTION_KEYS=SecretBox.generate_key())
    LTIKit(app)
    chosen: list = []

    @app.route("/pick", methods=["POST"])
    @lti(request="initial", message_types=("LtiDeepLinkingRequest",))
    def pick(lti):
        return lti.deep_link_response(chosen)

    def form_of(page):
        action = html_module.unescape(re.search(r"action='([^']+)'", page.text).group(1))
        token = re.search(r"name='JWT' value='([^']+)'", page.text).group(1)
        return action, token

    with DevPlatform(tmp_path / "p.sqlite3", PLATFORM_STORAGE=False) as platform, \
            serve(app) as tool_url:
        LTIKit.state(app).lti13.tool_keys().generate()
        tool_id, client_id, deployment_id = platform.add_lti13_tool(
            "Picker", oidc_initiation_url=f"{tool_url}/lti13/login",
            target_link_uri=f"{tool_url}/pick", public_jwk_url=f"{tool_url}/lti13/jwks",
            # The editor button takes links back (Canvas's link_selection takes only
            # ltiResourceLink items).
            placements={"editor_button": {"enabled": "true", "url": f"{tool_url}/pick",
                                          "message_type": "LtiDeepLinkingRequest"}})
        Registrations(LTIKit.state(app).storage.engine).add(
            **platform.lti13_registration(client_id), deployments=(deployment_id,))
        course = platform.course_id("BIO101")

        def deep_link(user):
            return form_of(user.launch13(tool_id, course, placement="editor_button"))

        teacher = PlatformUser(platform, "teacher")
        chosen[:] = [Link(url="https://example.com/reading", title="Reading")]
        action, token = deep_link(teacher)
        added = teacher.session.post(action, data={"JWT": token}, timeout=30)
        assert added.status_code == 200 and "Reading" in added.text
        assert [i["title"] for i in platform.store.content_items(course)] == ["Reading"]
        # The same response again (a replay), and from another user's browser.
        assert teacher.session.post(action, data={"JWT": token}, timeout=30).status_code == 400
        action, token = deep_link(teacher)
        other = PlatformUser(platform, "ta")
        assert other.session.post(action, data={"JWT": token}, timeout=30).status_code == 400
        # A script URL is refused; a response signed by another key too.
        chosen[:] = [Link(url="javascript:alert(1)", title="x")]
        action, token = deep_link(teacher)
        assert teacher.session.post(action, data={"JWT": token}, timeout=30).status_code == 400
        header, payload, _ = token.split(".")
        forged = f"{header}.{payload}.{'A' * 342}"
        assert teacher.session.post(action, data={"JWT": forged}, timeout=30).status_code == 400
        assert len(platform.store.content_items(course)) == 1
