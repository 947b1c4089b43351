"""The tool (FastAPI), tested the way platforms talk to it.

LTI 1.1 launches are signed with ``ltikit.testing`` (oauthlib underneath), as Canvas and
Moodle sign them; LTI 1.3 id_tokens with ``ltikit.testing.lti13.TestPlatform`` (PyJWT);
the Canvas OAuth2 flow and Dynamic Registration run against
``ltikit.platform.DevPlatform``, a local Canvas stand-in with the same endpoints and
formats, calling this tool under uvicorn.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

from config_xml import parse_xml
from conftest import BASE, KEY, SECRET, client_of, settings
from ltikit.platform import DevPlatform
from ltikit.testing import launch_params, sign_launch
from ltikit.testing.lti13 import TestPlatform
from ltikit.testing.platform import PlatformUser

LAUNCH = BASE + "/launch"


def launch(client, url=LAUNCH, **params):
    signed = sign_launch(url, launch_params(**params), key=KEY, secret=SECRET)
    return client.request(signed.method, signed.url, headers=signed.headers,
                          content=signed.body)


def moodle_launch(**params):
    """A Moodle 1.1 launch: no Canvas parameters, Moodle's product code."""
    canvas = {name: None for name in launch_params() if name.startswith("custom_canvas_")
              or name.startswith("ext_")}
    return {**canvas, "tool_consumer_info_product_family_code": "moodle",
            "tool_consumer_instance_name": "Moodle of Example University", **params}


def launch13(client, platform, target=LAUNCH, **claims):
    """The OIDC login and the id_token POST, as the browser inside the platform sends them."""
    login = client.get("/lti13/login", params={
        "iss": platform.issuer, "login_hint": "hint", "target_link_uri": target,
        "client_id": platform.client_id, "lti_message_hint": uuid.uuid4().hex})
    assert login.status_code == 302, login.text
    auth = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["location"]).query).items()}
    token = platform.id_token(platform.claims(nonce=auth["nonce"], target_link_uri=target,
                                              **claims))
    return client.post(urlsplit(auth["redirect_uri"]).path,
                       data={"id_token": token, "state": auth["state"]})


def test_students_are_refused_politely(client):
    response = launch(client, roles="Learner")
    assert response.status_code == 403
    assert "not available to you" in response.text
    assert "is for staff in this course" in response.text


def test_a_teacher_launch_goes_to_canvas_authorization_with_a_state(client):
    response = launch(client, custom_canvas_api_domain="canvas.example.edu")
    assert response.status_code == 302
    index = client.get(response.headers["location"])
    assert index.status_code == 302
    authorize = urlsplit(index.headers["location"])
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == \
        "https://canvas.example.edu/login/oauth2/auth"
    query = parse_qs(authorize.query)
    assert query["client_id"] == ["10000000000001"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["https://tool.example.edu/ltikit/canvas/callback"]
    assert len(query["state"][0]) >= 32


def test_a_moodle_teacher_sees_who_launched_from_where_without_canvas(client):
    response = launch(client, **moodle_launch())
    index = client.get(response.headers["location"])
    assert index.status_code == 200
    page = index.text
    assert "Hello, Ada Teacher" in page and "Introduction to Biology" in page
    assert "Moodle of Example University" in page and "Instructor" in page
    assert "Canvas profile" not in page and "Disconnect from Canvas" not in page


def test_the_canvas_settings_are_optional(tmp_path):
    from app import create_app

    client = client_of(create_app(settings(tmp_path, BASE_URL="", OAUTH2_ID="",
                                           OAUTH2_KEY="")))
    response = launch(client, custom_canvas_api_domain="canvas.example.edu")
    index = client.get(response.headers["location"])
    assert index.status_code == 200 and "Hello, Ada Teacher" in index.text


def test_a_lti13_launch_from_any_platform(app, client):
    platform = TestPlatform(issuer="https://moodle.example.edu")
    platform.register(app.state.kit.registrations)
    launched = launch13(client, platform, **{"tool_platform": {
        "name": "Example Moodle", "product_family_code": "moodle"}})
    assert launched.status_code == 302
    index = client.get(launched.headers["location"])
    assert index.status_code == 200 and "Hello, Ada Teacher" in index.text
    assert "Example Moodle" in index.text and "over LTI 1.3" in index.text
    student = launch13(client_of(app), platform, roles=["Learner"])
    assert student.status_code == 403


def test_the_configurations_use_https_behind_a_proxy(tmp_path):
    from app import create_app

    app = create_app(settings(tmp_path, TRUSTED_PROXIES="1", PLACEMENT_EDITOR_BUTTON="true"))
    client = client_of(app)
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tool.example.edu"}
    response = client.get("http://internal:8000/lti/config.xml", headers=proxied)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert parse_xml(response.content)["editor_button"] == "true"
    assert b"<blti:launch_url>https://tool.example.edu/launch</blti:launch_url>" in \
        response.content
    config = client.get("http://internal:8000/lti/config.json", headers=proxied).json()
    assert config["oidc_initiation_url"] == "https://tool.example.edu/lti13/login"


def test_content_selection_arrives_at_the_one_redirect_uri_and_is_handed_on(app, client):
    platform = TestPlatform(issuer="https://moodle.example.edu")
    platform.register(app.state.kit.registrations)
    handed = launch13(client, platform, BASE + "/deep-link", **{
        "message_type": "LtiDeepLinkingRequest",
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": {
            "deep_link_return_url": "https://moodle.example.edu/mod/lti/contentitem_return.php",
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"]}})
    assert handed.status_code == 302
    location = urlsplit(handed.headers["location"])
    assert location.path == "/deep-link" and "ltikit_handoff=" in location.query
    page = client.get(f"{location.path}?{location.query}")
    assert page.status_code == 200 and "Add" in page.text


def test_the_whole_flow_against_the_local_platform(tmp_path, serve):
    from app import create_app

    with DevPlatform(tmp_path / "platform.sqlite3") as platform:
        client_id, client_secret = platform.add_developer_key("tool", ["http://127.0.0.1/"])
        app = create_app(settings(tmp_path, BASE_URL=platform.url + "/",
                                  OAUTH2_ID=str(client_id), OAUTH2_KEY=client_secret))
        tool_url = serve(app)
        platform.add_lti11_tool_from_xml(KEY, SECRET, config_url=tool_url + "/lti/config.xml")
        teacher = PlatformUser(platform, "teacher")
        tool_id = platform.store.tools()[0]["id"]
        consent = teacher.launch(tool_id, platform.course_id("BIO101"))
        assert consent.url.startswith(platform.url + "/login/oauth2/confirm")
        page = teacher.authorize()
        assert page.status_code == 200
        assert "Hello, Terry Teacher" in page.text and "Introduction to Biology" in page.text


def test_a_platform_installs_the_tool_from_one_registration_link(tmp_path, serve,
                                                                  monkeypatch):
    from app import create_app
    from manage import registration_link

    with DevPlatform(tmp_path / "platform.sqlite3", PLATFORM_STORAGE=False) as platform:
        client_id, client_secret = platform.add_developer_key("tool", ["http://127.0.0.1/"])
        config = settings(tmp_path, BASE_URL=platform.url + "/", OAUTH2_ID=str(client_id),
                          OAUTH2_KEY=client_secret)
        tool_url = serve(create_app(config))
        # The settings manage.py reads (from .env, or the environment).
        monkeypatch.setenv("SECRET_KEY", config["SECRET_KEY"])
        monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", config["LTIKIT_ENCRYPTION_KEYS"])
        monkeypatch.setenv("DATABASE_URL", config["LTIKIT_DATABASE_URL"])
        tool_id, _, _ = platform.register_tool(registration_link(tool_url, days=1))
        assert set(platform.store.tool(tool_id)["placements"]) == \
            {"course_navigation", "link_selection"}
        teacher = PlatformUser(platform, "teacher")
        consent = teacher.launch13(tool_id, platform.course_id("BIO101"))
        assert consent.url.startswith(platform.url + "/login/oauth2/confirm")
        assert "Hello, Terry Teacher" in teacher.authorize().text
