"""LTI Dynamic Registration: a platform installs a tool from one URL.

The tool is a small Flask app served on 127.0.0.1; the platform is the local platform
(Canvas's way) or, where another platform's shape or a misbehaving one is the point, a
small stand-in served here (Moodle's configuration and answers, a configuration on
another origin, a redirect, a slow server).  The platform's side is driven as the
administrator's browser drives it: open the registration URL, press the one button.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask, jsonify, redirect, request

from browser import serve
from ltikit import _http
from ltikit.errors import LTIConfigurationError
from ltikit.flask import LTIKit
from ltikit.lti13 import Message, ToolConfiguration
from ltikit.lti13.registrations import ALLOW_LIST, RECORD_NEW
from ltikit.platform import DevPlatform
from ltikit.platform.registration import form_of
from ltikit.testing import Clock

NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"


def quiz_configuration(platform):
    """What the quiz tool asks every platform for."""
    return ToolConfiguration(
        name="Quiz tool", description="Quizzes", target_link_uri="/launch",
        messages=(Message("LtiResourceLinkRequest", "/launch", "Quizzes",
                          ("course_navigation", "not_a_real_placement")),
                  Message("LtiDeepLinkingRequest", "/pick", "Add a quiz", ("link_selection",))),
        scopes=(NRPS, SCORE, "https://example.edu/scope/not-offered"),
        custom_parameters={"canvas_course_id": "$Canvas.course.id"} if platform.is_canvas
        else {}, canvas_privacy_level="public")


def quiz_tool(tmp_path, clock=time.time, **config):
    app = Flask("quiz", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="quiz-secret-key", LTIKIT_LTI13_REGISTRATION="links",
                      LTIKIT_LTI13_REDIRECT_URI="/launch",
                      LTIKIT_DATABASE_URL=f"sqlite:///{tmp_path}/quiz.sqlite3")
    app.config.update(config)
    kit = LTIKit(app, clock=clock, tool_configuration=quiz_configuration)
    return app, kit


@pytest.fixture
def quiz(tmp_path):
    app, kit = quiz_tool(tmp_path)
    with serve(app) as url:
        yield app, kit, url


@pytest.fixture
def platform():
    with DevPlatform() as running:
        yield running


def new_link(app, kit, **options):
    with app.app_context():
        return kit.registration_links.create(**options)


def registrations_of(app, kit):
    from sqlalchemy import select

    from ltikit.storage import tables

    with app.app_context(), kit.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(tables.platforms)).mappings()]


def open_registration(platform, registration_url):
    """What the platform's iframe shows when the administrator pastes the URL."""
    framed, registration_id = platform.start_registration(registration_url)
    return requests.get(framed, timeout=30), registration_id


# -- the whole registration ----------------------------------------------------------------

def test_a_platform_registers_the_tool_through_a_single_use_link(quiz, platform):
    app, kit, url = quiz
    link = new_link(app, kit)
    page, _ = open_registration(platform, f"{url}/lti13/register/{link}")
    assert page.status_code == 200
    text = page.text
    # What will be registered, before anything is: the tool, its URLs, its services and
    # placements, and the platform's name and issuer.
    for shown in ("Register Quiz tool with Canvas (ltikit platform, localhost)?",
                  "https://canvas.instructure.com", f"{url}/launch", f"{url}/pick",
                  f"{url}/lti13/login", f"{url}/lti13/jwks", NRPS, SCORE, "course_navigation",
                  "link_selection"):
        assert shown in text, shown
    assert "not-offered" not in text and "not_a_real_placement" not in text
    assert registrations_of(app, kit) == []
    assert page.headers["Cache-Control"] == "no-store"

    # Opening the page used nothing: the same link registers.
    tool_id, client_id, deployment_id = platform.register_tool(f"{url}/lti13/register/{link}")
    installed = platform.store.lti13_tool(tool_id=tool_id)
    assert installed["redirect_uris"] == [f"{url}/launch"]  # the one redirect URI
    assert installed["oidc_initiation_url"] == f"{url}/lti13/login"
    assert installed["public_jwk_url"] == f"{url}/lti13/jwks"
    assert sorted(installed["scopes"]) == sorted([NRPS, SCORE])
    tool = platform.store.tool(tool_id)
    assert tool["name"] == "Quiz tool" and tool["privacy_level"] == "public"
    assert tool["placements"]["course_navigation"]["url"] == f"{url}/launch"
    assert tool["placements"]["link_selection"]["message_type"] == "LtiDeepLinkingRequest"
    assert tool["custom_fields"] == {"canvas_course_id": "$Canvas.course.id"}

    with app.app_context():
        registration = kit.registrations.get("https://canvas.instructure.com", client_id)
        assert registration.auth_login_url == f"{platform.url}/api/lti/authorize_redirect"
        assert registration.jwks_url == f"{platform.url}/api/lti/security/jwks"
        assert registration.token_url == f"{platform.url}/login/oauth2/token"
        assert registration.platform_storage  # Canvas keeps values in its storage frame
        assert registration.service_url_allowed(f"{platform.url}/api/lti/courses/1/names")
        assert registration.deployment_policy == ALLOW_LIST
        assert kit.registrations.accept_deployment(registration, deployment_id)
        assert not kit.registrations.accept_deployment(registration, "another")


def test_a_used_link_is_refused_and_nothing_is_registered_again(quiz, platform):
    app, kit, url = quiz
    link = new_link(app, kit)
    platform.register_tool(f"{url}/lti13/register/{link}")
    page, registration_id = open_registration(platform, f"{url}/lti13/register/{link}")
    assert page.status_code == 403
    assert "registration_link_used" in page.text and "already used" in page.text
    assert len(registrations_of(app, kit)) == 1
    assert platform.store.registration(registration_id)["used_at"] is None


def test_an_expired_link_is_refused(tmp_path, platform):
    clock = Clock()
    app, kit = quiz_tool(tmp_path, clock=clock)
    with serve(app) as url:
        link = new_link(app, kit, lifetime=3600)
        clock.advance(3601)
        page, _ = open_registration(platform, f"{url}/lti13/register/{link}")
        assert page.status_code == 403 and "registration_link_expired" in page.text
        unknown, _ = open_registration(platform, f"{url}/lti13/register/{'x' * 43}")
        assert unknown.status_code == 403 and "registration_link_invalid" in unknown.text
    assert registrations_of(app, kit) == []


def test_a_link_is_given_back_when_the_platform_refuses_the_registration(quiz, platform):
    app, kit, url = quiz
    link = new_link(app, kit)
    page, _registration_id = open_registration(platform, f"{url}/lti13/register/{link}")
    action, fields = form_of(page.text)
    platform.inject_fault("registration", status=503, times=1)
    failed = requests.post(url + action, data=fields, timeout=30)
    assert failed.status_code == 502 and "registration_failed" in failed.text
    retried = requests.post(url + action, data=fields, timeout=30)
    assert retried.status_code == 200, retried.text
    assert "org.imsglobal.lti.close" in retried.text
    assert len(registrations_of(app, kit)) == 1


def test_registrations_are_off_unless_the_deployer_turns_them_on(tmp_path, platform):
    app, kit = quiz_tool(tmp_path, LTIKIT_LTI13_REGISTRATION="off")
    with serve(app) as url:
        page, registration_id = open_registration(platform, f"{url}/lti13/register")
        assert page.status_code == 403 and "registration_disabled" in page.text
    assert platform.store.registration(registration_id)["used_at"] is None
    assert registrations_of(app, kit) == []


def test_with_links_the_bare_registration_url_is_refused(quiz, platform):
    _app, _kit, url = quiz
    page, _ = open_registration(platform, f"{url}/lti13/register")
    assert page.status_code == 403 and "registration_link_required" in page.text


def test_an_open_tool_registers_any_platform_without_a_link(tmp_path, platform):
    app, kit = quiz_tool(tmp_path, LTIKIT_LTI13_REGISTRATION="open")
    with serve(app) as url:
        platform.register_tool(f"{url}/lti13/register")
        platform.register_tool(f"{url}/lti13/register")
    assert len(registrations_of(app, kit)) == 2  # the platform made two client ids


def test_a_wrong_or_used_registration_token_is_the_platforms_refusal(quiz, platform):
    app, kit, url = quiz
    link = new_link(app, kit)
    config = f"{platform.url}/api/lti/security/openid-configuration"
    page = requests.get(f"{url}/lti13/register/{link}", timeout=30, params={
        "openid_configuration": config, "registration_token": "made-up"})
    assert page.status_code == 401 and "registration_token_refused" in page.text
    assert "made-up" not in page.text

    # A token the platform already used (a second tab, a reload of the confirmation).
    page, _ = open_registration(platform, f"{url}/lti13/register/{link}")
    action, fields = form_of(page.text)
    assert requests.post(url + action, data=fields, timeout=30).status_code == 200
    again = requests.post(url + action, data=fields, timeout=30)
    assert again.status_code == 403 and "registration_link_used" in again.text
    second = new_link(app, kit)
    replayed = requests.post(f"{url}/lti13/register/{second}", data=fields, timeout=30)
    assert replayed.status_code == 400  # the form belongs to the first link


def test_the_confirmation_form_cannot_be_forged_or_swapped(quiz, platform):
    app, kit, url = quiz
    link = new_link(app, kit)
    page, _ = open_registration(platform, f"{url}/lti13/register/{link}")
    action, fields = form_of(page.text)
    for changed in ({"ltikit_registration": fields["ltikit_registration"][:-2] + "xx"},
                    {"registration_token": "another-token"}):
        forged = requests.post(url + action, data={**fields, **changed}, timeout=30)
        assert forged.status_code == 400 and "bad_registration_request" in forged.text
    assert registrations_of(app, kit) == []


def test_refusals_are_logged_without_the_registration_token(quiz, platform, caplog):
    app, kit, url = quiz
    link = new_link(app, kit)
    token = "secret-registration-token-123"
    with caplog.at_level(logging.INFO, logger="ltikit"):
        requests.get(f"{url}/lti13/register/{link}", timeout=30, params={
            "openid_configuration": f"{platform.url}/api/lti/security/openid-configuration",
            "registration_token": token})
    assert "registration_token_refused" in caplog.text
    assert token not in caplog.text and link not in caplog.text


# -- the platform's configuration ----------------------------------------------------------

def stand_in(config=None, *, status=200, location=None, delay=0.0, body=None,
             registration=None):
    """A platform stand-in: ``/config`` answers ``config`` (its URLs filled in with
    ``{base}``), ``/register`` answers ``registration``; ``calls`` records the paths."""
    app = Flask("stand_in")
    calls = []

    @app.route("/<path:path>", methods=["GET", "POST"])
    def any_path(path):
        calls.append((request.method, "/" + path, request.headers.get("Authorization")))
        base = request.host_url.rstrip("/")
        if path.endswith("config"):
            time.sleep(delay)
            if location:
                return redirect(location.format(base=base), status)
            if body is not None:
                return body, status
            return app.response_class(json.dumps(config).replace("{base}", base), status,
                                      mimetype="application/json")
        if path == "register" and registration is not None:
            return jsonify(registration(request.get_json()))
        return "nothing here", 404

    app.calls = calls
    return app


def moodle_configuration(wwwroot="{base}/moodle"):
    """Moodle 4.5's /mod/lti/openid-configuration.php (issuer: its wwwroot, which may have a
    path; message types as bare strings)."""
    return {"issuer": wwwroot, "token_endpoint": f"{wwwroot}/mod/lti/token.php",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "jwks_uri": f"{wwwroot}/mod/lti/certs.php",
            "authorization_endpoint": f"{wwwroot}/mod/lti/auth.php",
            "registration_endpoint": "{base}/register",
            "scopes_supported": [SCORE, NRPS, "openid"],
            "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
            PLATFORM_CONFIGURATION: {
                "product_family_code": "moodle", "version": "4.5",
                "messages_supported": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
                "placements": ["AddContentMenu"], "variables": []}}


def moodle_registers(body):
    """What Moodle's openid-registration.php checks and answers (its deployment id is the
    new tool type's id; it echoes application_type as a list)."""
    for name in ("response_types", "initiate_login_uri", "redirect_uris", "client_name",
                 "jwks_uri", "token_endpoint_auth_method", TOOL_CONFIGURATION):
        assert body.get(name), name
    assert body[TOOL_CONFIGURATION]["domain"] and body[TOOL_CONFIGURATION]["target_link_uri"]
    assert "id_token" in body["response_types"]
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    return {"client_id": "kFz8Fb3BQjvmWzX", "application_type": ["web"],
            "token_endpoint_auth_method": "private_key_jwt",
            TOOL_CONFIGURATION: {"deployment_id": "7", "target_link_uri":
                                 body[TOOL_CONFIGURATION]["target_link_uri"]}}


def register_at(url, link, config_url):
    page = requests.get(f"{url}/lti13/register/{link}", timeout=30, params={
        "openid_configuration": config_url, "registration_token": "from-the-platform"})
    if page.status_code != 200:
        return page
    action, fields = form_of(page.text)
    return requests.post(url + action, data=fields, timeout=30)


def test_moodle_registers_the_tool_under_its_wwwroot(quiz):
    app, kit, url = quiz
    moodle = stand_in(moodle_configuration(), registration=moodle_registers)
    with serve(moodle) as base:
        link = new_link(app, kit)
        page = requests.get(f"{url}/lti13/register/{link}", timeout=30, params={
            "openid_configuration": f"{base}/moodle/config", "registration_token": "t"})
        assert "Moodle adds the tool as <em>pending</em>" in page.text
        action, fields = form_of(page.text)
        done = requests.post(url + action, data=fields, timeout=30)
    assert done.status_code == 200, done.text
    assert "kFz8Fb3BQjvmWzX" in done.text and "Manage tools" in done.text
    sent = [c for c in moodle.calls if c[1] == "/register"]
    assert sent == [("POST", "/register", "Bearer t")]
    with app.app_context():
        registration = kit.registrations.get(f"{base}/moodle", "kFz8Fb3BQjvmWzX")
        assert registration.name == "Moodle (127.0.0.1)"
        assert registration.deployment_policy == ALLOW_LIST
        assert kit.registrations.accept_deployment(registration, "7")
        assert not registration.platform_storage  # Moodle offers no storage frame


def test_registering_the_same_client_again_updates_it(quiz):
    app, kit, url = quiz
    deployments = iter(["7", "8"])

    def answer(body):
        return dict(moodle_registers(body), **{TOOL_CONFIGURATION: {
            "deployment_id": next(deployments)}})

    moodle = stand_in(moodle_configuration(), registration=answer)
    with serve(moodle) as base:
        for _ in range(2):
            done = register_at(url, new_link(app, kit), f"{base}/moodle/config")
            assert done.status_code == 200, done.text
        assert "is updated" in done.text
    rows = registrations_of(app, kit)
    assert len(rows) == 1
    with app.app_context():
        registration = kit.registrations.get(f"{base}/moodle", "kFz8Fb3BQjvmWzX")
        assert all(kit.registrations.accept_deployment(registration, d) for d in "78")


def test_canvas_issuer_from_another_site_may_not_take_over_a_registration(quiz, platform):
    """Canvas Cloud's issuer is every school's: a second Canvas (here another site that
    claims Canvas's issuer and returns the same client id) cannot change the first one's
    registration."""
    app, kit, url = quiz
    _, client_id, _ = platform.register_tool(f"{url}/lti13/register/{new_link(app, kit)}")
    impostor = stand_in({
        "issuer": "https://canvas.instructure.com",
        "authorization_endpoint": "{base}/auth", "token_endpoint": "{base}/token",
        "jwks_uri": "{base}/jwks", "registration_endpoint": "{base}/register",
        PLATFORM_CONFIGURATION: {"product_family_code": "canvas"}},
        registration=lambda body: {"client_id": client_id})
    with serve(impostor) as base:
        done = register_at(url, new_link(app, kit), f"{base}/config")
    assert done.status_code == 403 and "registration_origin_changed" in done.text
    with app.app_context():
        kept = kit.registrations.get("https://canvas.instructure.com", client_id, cached=False)
    assert kept.jwks_url == f"{platform.url}/api/lti/security/jwks"


@pytest.mark.parametrize("config, reason", [
    # Published by someone else than its issuer.
    ({"issuer": "https://moodle.example.edu"}, "foreign_openid_configuration"),
    # Under the issuer's origin but outside its path (another Moodle on the same host).
    ({"issuer": "{base}/moodle"}, "foreign_openid_configuration"),
    # Canvas's issuer, but keys that are not Instructure's (nor, in development, its own).
    ({"issuer": "https://canvas.instructure.com", "jwks_uri": "https://evil.example/jwks"},
     "foreign_openid_configuration"),
    # The registration token would go to another origin.
    ({"registration_endpoint": "https://elsewhere.example/register"},
     "foreign_openid_configuration"),
    ({"token_endpoint": "http://platform.example.edu/token"},
     "insecure_openid_configuration"),
    ({PLATFORM_CONFIGURATION: None}, "bad_openid_configuration"),
    ({"authorization_endpoint": None}, "bad_openid_configuration"),
])
def test_a_configuration_that_does_not_check_out_is_refused(quiz, config, reason):
    app, kit, url = quiz
    values = moodle_configuration("{base}")
    values.update(config)
    values = {k: v for k, v in values.items() if v is not None}
    platform = stand_in(values, registration=moodle_registers)
    with serve(platform) as base:
        page = register_at(url, new_link(app, kit), f"{base}/other/config")
    assert page.status_code == 400 and reason in page.text
    assert not [c for c in platform.calls if c[1] == "/register"]
    assert registrations_of(app, kit) == []


def test_an_http_configuration_is_refused_without_being_fetched(quiz):
    app, kit, url = quiz
    page = register_at(url, new_link(app, kit), "http://moodle.example.edu/config")
    assert page.status_code == 400 and "insecure_openid_configuration" in page.text


def test_a_tool_in_production_fetches_no_http_and_no_loopback_configuration(tmp_path):
    """Served as https://tool.example.edu (not this machine), the tool takes https
    configurations only, and none on this machine's own addresses."""
    app, _kit = quiz_tool(tmp_path, LTIKIT_LTI13_REGISTRATION="open")
    client = app.test_client()
    moodle = stand_in(moodle_configuration("{base}"))
    with serve(moodle) as base:
        page = client.get("/lti13/register", base_url="https://tool.example.edu",
                          query_string={"openid_configuration": f"{base}/config"})
    assert page.status_code == 400 and b"insecure_openid_configuration" in page.data
    assert moodle.calls == []


def test_a_redirecting_configuration_is_refused_and_not_followed(quiz):
    app, kit, url = quiz
    platform = stand_in(moodle_configuration("{base}"), status=302,
                        location="{base}/elsewhere/config2")
    with serve(platform) as base:
        page = register_at(url, new_link(app, kit), f"{base}/config")
    assert page.status_code == 400 and "bad_openid_configuration" in page.text
    assert "redirect" in page.text
    assert [c[1] for c in platform.calls] == ["/config"]


def test_a_slow_or_huge_configuration_ends_at_the_deadline_or_the_size_limit(tmp_path):
    app, kit = quiz_tool(tmp_path, LTIKIT_LTI13_REGISTRATION_TIMEOUT="1 1")
    with serve(app) as url:
        slow = stand_in(moodle_configuration("{base}"), delay=3)
        with serve(slow) as base:
            started = time.monotonic()
            page = register_at(url, new_link(app, kit), f"{base}/config")
            assert time.monotonic() - started < 2.5
        assert page.status_code == 504 and "openid_configuration_unavailable" in page.text
        huge = stand_in(body="[" + "1," * 600_000 + "1]")
        with serve(huge) as base:
            page = register_at(url, new_link(app, kit), f"{base}/config")
        assert page.status_code == 502 and "bad_openid_configuration" in page.text


def test_calls_to_refused_addresses_send_nothing():
    """The address check sits on the connected socket: a host name that resolves to an
    internal address is refused as its address would be, before a byte is sent."""
    seen = stand_in({})
    with serve(seen) as base:
        session = _http.new_session()
        with pytest.raises(_http.AddressRefused):
            _http.send(session, "GET", base.replace("127.0.0.1", "localhost") + "/config",
                       connect_timeout=2, total_timeout=2, allow_address=lambda a: False)
        response, _ = _http.send(session, "GET", f"{base}/config", connect_timeout=2,
                                 total_timeout=2, allow_address=lambda a: a.is_loopback)
    assert response.status_code == 200
    assert seen.calls == [("GET", "/config", None)]


# -- settings and commands -------------------------------------------------------------------

def test_registration_settings_are_checked_at_start_up(tmp_path):
    with pytest.raises(LTIConfigurationError, match="LTIKIT_LTI13_REGISTRATION must be"):
        quiz_tool(tmp_path, LTIKIT_LTI13_REGISTRATION="sometimes")
    app = Flask("no_configuration")
    app.config.update(SECRET_KEY="k", LTIKIT_LTI13_REGISTRATION="open",
                      LTIKIT_DATABASE_URL=f"sqlite:///{tmp_path}/other.sqlite3")
    with pytest.raises(LTIConfigurationError, match="tool_configuration"):
        LTIKit(app)


def test_the_registration_link_command_prints_a_link_that_registers(tmp_path, platform):
    app, kit = quiz_tool(tmp_path)
    with serve(app) as url:
        made = subprocess.run(
            [sys.executable, "-m", "ltikit.cli", "registration-link", "--tool-url", url,
             "--days", "1", "--database-url", f"sqlite:///{tmp_path}/quiz.sqlite3"],
            capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        link_url = made.stdout.strip()
        assert link_url.startswith(f"{url}/lti13/register/")
        assert "single use" in made.stderr
        platform.register_tool(link_url)
        assert RECORD_NEW not in {r["deployment_policy"] for r in registrations_of(app, kit)}
        with pytest.raises(RuntimeError, match="already used"):
            platform.register_tool(link_url)
    bad = subprocess.run([sys.executable, "-m", "ltikit.cli", "registration-link",
                          "--tool-url", "tool.example.edu", "--database-url",
                          f"sqlite:///{tmp_path}/quiz.sqlite3"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--tool-url" in bad.stderr


# -- the local platform's side ---------------------------------------------------------------

def test_the_platform_checks_the_registration_token_and_the_registration(platform):
    """As Canvas: the configuration and the registration endpoint need the registration
    token; an incomplete registration is refused with 422 and its reasons, and leaves the
    token unused."""
    config_url = f"{platform.url}/api/lti/security/openid-configuration"
    assert requests.get(config_url, timeout=10).status_code == 401
    framed, registration_id = platform.start_registration("http://127.0.0.1:9/lti13/register")
    token = parse_qs(urlsplit(framed).query)["registration_token"][0]
    bearer = {"Authorization": f"Bearer {token}"}
    config = requests.get(config_url, headers=bearer, timeout=10).json()
    assert config["registration_endpoint"] == f"{platform.url}/api/lti/registrations"
    lti = config[PLATFORM_CONFIGURATION]
    assert lti["product_family_code"] == "canvas"
    endpoint = config["registration_endpoint"]
    assert requests.post(endpoint, json={}, timeout=10).status_code == 401
    refused = requests.post(endpoint, headers=bearer, timeout=10, json={
        "application_type": "web", "grant_types": ["implicit"], "response_types": ["id_token"],
        "initiate_login_uri": "http://127.0.0.1:9/login", "redirect_uris": [],
        "client_name": "T", "jwks_uri": "http://127.0.0.1:9/jwks",
        "token_endpoint_auth_method": "private_key_jwt",
        TOOL_CONFIGURATION: {"domain": "http://127.0.0.1:9", "target_link_uri":
                             "http://127.0.0.1:9/", "claims": [], "messages": [
                                 {"type": "LtiResourceLinkRequest",
                                  "placements": ["everywhere"]}]}})
    assert refused.status_code == 422
    reasons = " ".join(e["message"] for e in refused.json()["errors"])
    for expected in ("grant_types", "redirect_uris", "domain", "everywhere"):
        assert expected in reasons
    assert platform.store.registration(registration_id)["used_at"] is None


def test_which_addresses_a_registration_may_reach():
    """Never link-local (a cloud's metadata service), loopback only in development, a
    private network in development or through a link, never for a tool open to anyone."""
    from ipaddress import ip_address

    from ltikit.lti13.dynamic_registration import _address_policy

    metadata, loopback = ip_address("169.254.169.254"), ip_address("127.0.0.1")
    private, public = ip_address("10.1.2.3"), ip_address("93.184.215.14")
    for policy in ("open", "links"):
        for development in (False, True):
            allowed = _address_policy(policy, development)
            assert not allowed(metadata) and allowed(public)
            assert allowed(loopback) == development
            assert allowed(private) == (development or policy == "links")
    assert not _address_policy("links", True)(ip_address("fe80::1"))
    assert not _address_policy("links", True)(ip_address("::"))  # unspecified
