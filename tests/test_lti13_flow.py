"""The LTI 1.3 login and launch decisions, without a web framework (ltikit.lti13.flow).

The same matrix the Flask tests drive through a test client, here on plain requests: what
any adapter (Flask today, Starlette next) gets from the core."""

from __future__ import annotations

import json
import re

import pytest

from ltikit.cookies import CookiePolicy
from ltikit.errors import LTIAuthenticationError, LTIException, LTIStateCookieMissing
from ltikit.http import Reply, Request
from ltikit.lti13 import JWKSCache, Registrations
from ltikit.lti13.flow import Launched, LTI13Flow
from ltikit.lti13.oidc import OIDCStates
from ltikit.storage import SQLStorage, upgrade
from test_lti13_id_token import CLAIM, CLIENT, ISS, PlatformKeys, claims

TOOL = "https://tool.example.edu"
LOGIN = {"iss": ISS, "login_hint": "u-1", "target_link_uri": TOOL + "/launch",
         "client_id": CLIENT, "lti_message_hint": "hint-1"}


@pytest.fixture
def flow(tmp_path):
    storage = SQLStorage(f"sqlite:///{tmp_path}/db.sqlite3")
    upgrade(storage.engine)
    keys = PlatformKeys()
    registrations = Registrations(storage.engine)
    registrations.add(name="Test platform", issuer=ISS, client_id=CLIENT,
                      auth_login_url="https://platform.example.edu/auth",
                      token_url="https://platform.example.edu/token",
                      public_jwk=keys.published[0], deployments=("1:deploy",),
                      platform_storage=True)
    return LTI13Flow(registrations, JWKSCache(storage.engine), OIDCStates("secret"),
                     CookiePolicy()), keys


def login(flow, headers=None, **params) -> Reply:
    return flow.login(Request("GET", TOOL + "/lti13/login", query=tuple(
        {**LOGIN, **params}.items()), headers=headers or {}))


def cookies_of(reply: Reply) -> dict[str, str]:
    return dict(v.split(";", 1)[0].split("=", 1) for k, v in reply.headers
                if k == "Set-Cookie")


def query_of(reply: Reply) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(reply.header("Location") or "").query))


def launch_request(reply: Reply, keys, *, cookies=None, **claim_overrides) -> Request:
    query = query_of(reply)
    token = keys.sign(claims(nonce=query["nonce"], **{
        CLAIM + "target_link_uri": TOOL + "/launch", **claim_overrides}))
    return Request("POST", TOOL + "/launch", form=(("id_token", token),
                                                   ("state", query["state"])),
                   cookies=cookies_of(reply) if cookies is None else cookies)


def test_a_login_redirects_with_a_state_cookie_and_its_launch_is_launched(flow):
    flow, keys = flow
    reply = login(flow)
    assert reply.status == 302 and reply.header("Location").startswith(
        "https://platform.example.edu/auth?")
    assert any(name.startswith("ltikit_lti13_state_") for name in cookies_of(reply))
    decision = flow.launch(launch_request(reply, keys), {"LtiResourceLinkRequest"})
    assert isinstance(decision, Launched)
    assert decision.roles.has("TeachingAssistant")
    assert "Max-Age=0" in decision.clear_state_cookie


@pytest.mark.parametrize(("params", "error"), [
    ({"target_link_uri": "https://evil.example/launch"}, LTIException),
    ({"target_link_uri": "https://evil.example\\@tool.example.edu/launch"}, LTIException),
    ({"iss": "https://unknown.example.edu"}, LTIAuthenticationError),
    ({"login_hint": ""}, LTIException),
])
def test_bad_logins_are_refused(flow, params, error):
    with pytest.raises(error):
        login(flow[0], **params)


def test_launches_that_are_not_this_browsers_login_are_refused(flow):
    flow, keys = flow
    reply = login(flow)
    # Another browser (no cookie) of a platform offering storage, but no storage was set
    # up by this login: refused, with no link replaying the used hint.
    with pytest.raises(LTIStateCookieMissing) as missing:
        flow.launch(launch_request(reply, keys, cookies={}), {"LtiResourceLinkRequest"})
    assert missing.value.relaunch_url is None
    # A cookie with another login's digest.
    forged = {name: "0" * 64 for name in cookies_of(reply)}
    with pytest.raises(LTIAuthenticationError, match="does not belong"):
        flow.launch(launch_request(reply, keys, cookies=forged), {"LtiResourceLinkRequest"})
    # The wrong target, the wrong message type, a forged state.
    with pytest.raises(LTIAuthenticationError, match="target_link_uri"):
        flow.launch(launch_request(reply, keys, **{CLAIM + "target_link_uri": TOOL + "/x"}),
                    {"LtiResourceLinkRequest"})
    with pytest.raises(LTIException):
        flow.launch(launch_request(reply, keys), {"LtiDeepLinkingRequest"})
    with pytest.raises(LTIAuthenticationError, match="unknown or expired"):
        flow.launch(Request("POST", TOOL + "/launch", form=(("state", "x" * 40),)),
                    {"LtiResourceLinkRequest"})


def test_a_framed_login_without_storage_gets_the_cookie_check(flow):
    reply = login(flow[0], headers={"sec-fetch-dest": "iframe"})
    assert reply.status == 200 and "ltikit-cookie-check" in reply.body
    assert "ltikit_cookie_check" in cookies_of(reply)


def test_without_the_cookie_a_storage_login_continues_with_the_check_page(flow):
    flow, keys = flow
    reply = login(flow, lti_storage_target="post_message_forwarding")
    assert reply.status == 200 and "ltikit-storage" in reply.body
    # The auth URL (with the state and nonce) is in the page's config.
    config = json.loads(re.search(r"id=ltikit-storage>(.*?)</script>", reply.body).group(1))
    redirect = Reply.redirect(config["next"])
    decision = flow.launch(launch_request(redirect, keys, cookies={}),
                           {"LtiResourceLinkRequest"})
    assert isinstance(decision, Reply) and "ltikit_storage_secret" in decision.body
    # The secret posted from another site is refused (login CSRF).
    request = launch_request(redirect, keys, cookies={})
    cross = Request("POST", request.url, form=(*request.form, ("ltikit_storage_secret",
                                                                config["value"])),
                    headers={"Sec-Fetch-Site": "cross-site"})
    with pytest.raises(LTIAuthenticationError, match="another site"):
        flow.launch(cross, {"LtiResourceLinkRequest"})
    same = Request("POST", request.url, form=(*request.form, ("ltikit_storage_secret",
                                                               config["value"])),
                   headers={"Sec-Fetch-Site": "same-origin"})
    assert isinstance(flow.launch(same, {"LtiResourceLinkRequest"}), Launched)
