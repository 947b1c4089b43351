"""A registered platform's launch names the URLs of its services (AGS line items, NRPS
memberships, ``Link`` headers); the tool sends its bearer token only to the origins the
registration allows.

Everything here is real HTTP on 127.0.0.1: a platform with a token endpoint and a roster,
and a "canary" standing for an internal address, which records every request it gets.
The launch goes through the tool's real routes, as the platform would send it.
"""

from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, request

from browser import serve
from ltikit.crypto import SecretBox
from ltikit.flask import LTIKit, lti
from ltikit.lti13 import Registrations
from ltikit.lti13.services import ServiceError
from test_lti13_id_token import CLAIM, PlatformKeys, claims

TOOL = "https://tool.example.edu"
AGS = "https://purl.imsglobal.org/spec/lti-ags/"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/"
CLIENT = "client-7"


class Recorder:
    """A small HTTP app that records what it was sent."""

    def __init__(self, name):
        self.app, self.seen = Flask(name), []

        @self.app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE"])
        def anything(path):
            self.seen.append((request.method, "/" + path, request.headers.get("Authorization")))
            return self.answer(path)

    def answer(self, path):
        return {"members": []}


class Platform(Recorder):
    """The registered platform: a token endpoint, and a roster whose next link is set by
    the test."""

    def __init__(self):
        super().__init__("platform")
        self.next_link = None
        self.delay = 0.0

    def answer(self, path):
        if path != "token" and self.delay:
            import time

            time.sleep(self.delay)
        if path == "token":
            return {"access_token": "platform-token", "token_type": "Bearer",
                    "expires_in": 3600}
        response = self.app.response_class(
            '{"members": [{"user_id": "u1", "roles": []}]}',
            mimetype="application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
        if self.next_link:
            response.headers["Link"] = f'<{self.next_link}>; rel="next"'
        return response


def service_tool(tmp_path):
    app = Flask("tool", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="tool-secret", LTIKIT_ENCRYPTION_KEYS=SecretBox.generate_key(),
                      LTIKIT_DATABASE_URL=f"sqlite:///{tmp_path}/tool.sqlite3",
                      LTIKIT_LTI13_SERVICE_TIMEOUT="1 1.5")
    LTIKit(app)

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        return f"<p id=launch>{lti.launch_id}</p>"

    @app.route("/grade", methods=["POST"])
    @lti(request="session")
    def grade(lti):
        return f"sent={lti.post_grade(0.5)}"

    @app.route("/roster")
    @lti(request="session")
    def roster(lti):
        try:
            return ",".join(m.user_id for m in lti.nrps.members())
        except ServiceError as exc:
            return f"refused:{exc.reason}", 502

    return app


@pytest.fixture
def world(tmp_path):
    platform, canary, keys = Platform(), Recorder("canary"), PlatformKeys()
    app = service_tool(tmp_path)
    LTIKit.state(app).lti13.tool_keys().generate()
    with serve(platform.app) as platform_url, serve(canary.app) as canary_url:
        registrations = Registrations(LTIKit.state(app).storage.engine)

        def register(**extra):
            registrations.add(name="Platform", issuer=platform_url, client_id=CLIENT,
                              auth_login_url=platform_url + "/auth",
                              token_url=platform_url + "/token", public_jwk=keys.published[0],
                              deployments=("1",), **extra)

        yield SimpleNamespace(app=app, keys=keys, platform=platform, platform_url=platform_url,
                              canary=canary, canary_url=canary_url, register=register)


def launched(app, keys, issuer, **services):
    """A launch through the tool's real login and launch routes, with the service claims
    the platform chose; returns (browser, launch id)."""
    browser = app.test_client()
    login = browser.get("/lti13/login", base_url=TOOL, query_string={
        "iss": issuer, "login_hint": "u", "target_link_uri": TOOL + "/launch",
        "client_id": CLIENT})
    query = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["Location"]).query).items()}
    token = keys.sign(claims(iss=issuer, aud=CLIENT, nonce=query["nonce"], **{
        CLAIM + "deployment_id": "1", CLAIM + "target_link_uri": TOOL + "/launch",
        **services}))
    page = browser.post("/launch", data={"id_token": token, "state": query["state"]},
                        base_url=TOOL)
    assert page.status_code == 200, page.get_data(as_text=True)
    return browser, re.search(r"<p id=launch>([^<]+)", page.get_data(as_text=True)).group(1)


def ags(lineitem):
    return {AGS + "claim/endpoint": {"scope": [AGS + "scope/score"], "lineitem": lineitem}}


def nrps(url):
    return {NRPS + "claim/namesroleservice": {"context_memberships_url": url,
                                              "service_versions": ["2.0"]}}


@pytest.mark.parametrize("where", ["canary", "canary with backslash trick"])
def test_a_grade_is_not_posted_to_a_line_item_on_another_origin(world, where):
    w = world
    w.register()
    lineitem = f"{w.canary_url}/canary/internal-admin/lineitems/7"
    if where != "canary":  # browsers and requests read host 127.0.0.1:<canary port>
        lineitem = f"{w.canary_url}\\@{urlsplit(w.platform_url).netloc}/lineitems/7"
    browser, launch_id = launched(w.app, w.keys, w.platform_url, **ags(lineitem))
    refused = browser.post("/grade", data={"ltikit_launch": launch_id}, base_url=TOOL)
    assert refused.status_code == 502
    # Nothing was sent: not the score, and not even a token request.
    assert w.canary.seen == [] and w.platform.seen == []


def test_a_roster_url_on_another_origin_is_not_called(world):
    w = world
    w.register()
    browser, launch_id = launched(w.app, w.keys, w.platform_url,
                                  **nrps(w.canary_url + "/internal/memberships"))
    answer = browser.get("/roster", query_string={"ltikit_launch": launch_id}, base_url=TOOL)
    assert answer.get_data(as_text=True) == "refused:service_url_not_allowed"
    assert w.canary.seen == [] and w.platform.seen == []


def test_origins_the_registration_allows_are_called_with_the_token(world):
    w = world
    w.register(service_origins=(w.canary_url,))  # services on another origin
    browser, launch_id = launched(w.app, w.keys, w.platform_url,
                                  **nrps(w.canary_url + "/memberships"))
    answer = browser.get("/roster", query_string={"ltikit_launch": launch_id}, base_url=TOOL)
    assert answer.status_code == 200
    assert w.canary.seen == [("GET", "/memberships", "Bearer platform-token")]


@pytest.mark.parametrize("trick", ["other origin", "backslash", "userinfo"])
def test_a_next_page_link_to_another_host_is_not_followed(world, trick):
    """The roster's Link header names the next page; the token goes to the same origin
    only, as an HTTP client reads the link (``\\`` and ``@`` tricks included)."""
    w = world
    w.register()
    platform_host, canary_host = urlsplit(w.platform_url).netloc, urlsplit(w.canary_url).netloc
    w.platform.next_link = {
        "other origin": f"{w.canary_url}/members?page=2",
        # urlsplit reads host <platform>; requests and browsers read <canary>
        "backslash": f"http://{canary_host}\\@{platform_host}/members?page=2",
        "userinfo": f"http://{platform_host}@{canary_host}/members?page=2",
    }[trick]
    browser, launch_id = launched(w.app, w.keys, w.platform_url,
                                  **nrps(w.platform_url + "/members"))
    answer = browser.get("/roster", query_string={"ltikit_launch": launch_id}, base_url=TOOL)
    assert answer.status_code == 502
    assert answer.get_data(as_text=True) in ("refused:foreign_next_link",
                                             "refused:service_url_not_allowed")
    assert w.canary.seen == []
    assert [path for _, path, _ in w.platform.seen] == ["/token", "/members"]


def test_a_slow_service_is_given_up_at_its_deadline(world):
    import time

    w = world
    w.register()
    w.platform.delay = 5  # the roster takes 5 s; the tool's deadline is 1.5 s
    browser, launch_id = launched(w.app, w.keys, w.platform_url,
                                  **nrps(w.platform_url + "/members"))
    started = time.monotonic()
    answer = browser.get("/roster", query_string={"ltikit_launch": launch_id}, base_url=TOOL)
    assert answer.get_data(as_text=True) == "refused:service_timeout"
    assert time.monotonic() - started < 3


def test_service_urls_must_be_https_except_on_this_machine():
    registration = dataclasses.replace(
        _registration("https://platform.example.edu", "https://platform.example.edu/token"),
        service_origins=("https://services.example.edu",))
    allowed = registration.service_url_allowed
    assert allowed("https://platform.example.edu/api/lineitems/1")
    assert allowed("https://PLATFORM.example.edu:443/api/lineitems/1")
    assert allowed("https://services.example.edu/members")
    assert not allowed("http://platform.example.edu/api/lineitems/1")  # plain http
    assert not allowed("https://platform.example.edu:8443/api/lineitems/1")  # another port
    assert not allowed("https://internal.example.edu/api")
    assert not allowed("https://platform.example.edu.evil.example/api")
    assert not allowed("https://evil.example\\@platform.example.edu/api")
    assert not allowed("https://evil.example@platform.example.edu/api")
    assert not allowed("https://platform.example.edu\t/api")
    assert not allowed("ftp://platform.example.edu/api")
    local = _registration("http://localhost:8000", "http://localhost:8000/login/oauth2/token")
    assert local.service_url_allowed("http://localhost:8000/api/lti/courses/1/line_items")
    assert not local.service_url_allowed("http://localhost:9000/api/lti/courses/1/line_items")


def _registration(issuer, token_url):
    from ltikit.lti13.registrations import Registration

    return Registration(id=1, name="p", issuer=issuer, client_id="c",
                        auth_login_url=issuer + "/auth", token_url=token_url,
                        jwks_url=issuer + "/jwks")


def test_service_origins_are_checked_when_registered(tmp_path):
    from ltikit.storage import SQLStorage, upgrade

    storage = SQLStorage(f"sqlite:///{tmp_path}/db.sqlite3")
    upgrade(storage.engine)
    registrations = Registrations(storage.engine)
    with pytest.raises(ValueError, match="service origin"):
        registrations.add(name="p", issuer="https://p.example.edu", client_id="c",
                          auth_login_url="https://p.example.edu/auth",
                          token_url="https://p.example.edu/token",
                          jwks_url="https://p.example.edu/jwks",
                          service_origins=("http://services.example.edu",))
    registrations.add(name="p", issuer="https://p.example.edu", client_id="c",
                      auth_login_url="https://p.example.edu/auth",
                      token_url="https://p.example.edu/token", jwks_url="https://p.example.edu/jwks",
                      service_origins=("https://Services.example.edu:443/ignored/path",))
    stored = registrations.get("https://p.example.edu", "c")
    assert stored.service_origins == ("https://services.example.edu",)
    assert stored.service_url_allowed("https://services.example.edu/lineitems")
