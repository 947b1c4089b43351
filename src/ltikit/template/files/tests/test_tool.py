"""The tool, tested the way platforms talk to it.

LTI 1.1 launches are signed with ``ltikit.testing`` (oauthlib underneath), as Canvas and
Moodle sign them; LTI 1.3 launches with ``ltikit.testing.lti13.TestPlatform`` (PyJWT); the
Canvas OAuth2 flow runs against ``ltikit.platform.DevPlatform``, a local Canvas stand-in
with the same endpoints and formats.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from config_xml import parse_xml
from conftest import KEY, SECRET, settings
from ltikit.platform import DevPlatform
from ltikit.testing import launch_params, sign_launch
from ltikit.testing.platform import PlatformUser

LAUNCH = "https://tool.example.edu/launch"


def launch(client, url=LAUNCH, **params):
    signed = sign_launch(url, launch_params(**params), key=KEY, secret=SECRET)
    return client.open(**signed.for_flask())


def moodle_launch(**params):
    """A Moodle 1.1 launch: no Canvas parameters, Moodle's product code."""
    canvas = {name: None for name in launch_params() if name.startswith("custom_canvas_")
              or name.startswith("ext_")}
    return {**canvas, "tool_consumer_info_product_family_code": "moodle",
            "tool_consumer_instance_name": "Moodle of Example University", **params}


def test_students_are_refused_politely(app):
    response = launch(app.test_client(), roles="Learner")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "not available to you" in page and "is for staff in this course" in page


def test_a_teacher_launch_goes_to_canvas_authorization_with_a_state(app):
    client = app.test_client()
    response = launch(client, custom_canvas_api_domain="canvas.example.edu")
    assert response.status_code == 302
    index = client.get(response.headers["Location"], base_url="https://tool.example.edu")
    assert index.status_code == 302
    authorize = urlsplit(index.headers["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == \
        "https://canvas.example.edu/login/oauth2/auth"
    query = parse_qs(authorize.query)
    assert query["client_id"] == ["10000000000001"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["https://tool.example.edu/ltikit/canvas/callback"]
    assert len(query["state"][0]) >= 32


def test_a_moodle_teacher_sees_who_launched_from_where_without_canvas(app):
    client = app.test_client()
    response = launch(client, **moodle_launch())
    index = client.get(response.headers["Location"], base_url="https://tool.example.edu")
    assert index.status_code == 200
    page = index.get_data(as_text=True)
    assert "Hello, Ada Teacher" in page and "Introduction to Biology" in page
    assert "Moodle of Example University" in page and "Instructor" in page
    assert "Canvas profile" not in page and "Disconnect from Canvas" not in page


def test_a_launch_from_a_canvas_without_an_api_key_here_still_works(app):
    client = app.test_client()
    response = launch(client, custom_canvas_api_domain="other.example.edu")
    index = client.get(response.headers["Location"], base_url="https://tool.example.edu")
    assert index.status_code == 200
    assert "no API developer key for" in index.get_data(as_text=True)


def test_the_canvas_settings_are_optional(tmp_path):
    from app import create_app

    plain = create_app(settings(tmp_path, BASE_URL="", OAUTH2_ID="", OAUTH2_KEY=""))
    client = plain.test_client()
    response = launch(client, custom_canvas_api_domain="canvas.example.edu")
    index = client.get(response.headers["Location"], base_url="https://tool.example.edu")
    assert index.status_code == 200 and "Hello, Ada Teacher" in index.get_data(as_text=True)


def test_a_lti13_launch_from_any_platform(tmp_path):
    """LTI 1.3 without a platform running: ``ltikit.testing.lti13.TestPlatform`` signs the
    id_token; the login names the one redirect URI, /launch."""
    from app import create_app
    from ltikit.flask import LTIKit
    from ltikit.testing.lti13 import TestPlatform

    app = create_app(settings(tmp_path))
    platform = TestPlatform(issuer="https://moodle.example.edu")
    platform.register(LTIKit.of(app).registrations)
    client = app.test_client()
    launched = platform.launch(client, "https://tool.example.edu/launch",
                               **{"tool_platform": {"name": "Example Moodle",
                                                   "product_family_code": "moodle"}})
    assert launched.status_code == 302
    index = client.get(launched.headers["Location"], base_url="https://tool.example.edu")
    page = index.get_data(as_text=True)
    assert index.status_code == 200 and "Hello, Ada Teacher" in page
    assert "Example Moodle" in page and "over LTI 1.3" in page
    student = platform.launch(app.test_client(), "https://tool.example.edu/launch",
                              roles=["Learner"])
    assert student.status_code == 403


def test_the_xml_configuration_lists_the_placements_and_uses_https_behind_a_proxy(tmp_path):
    from app import create_app

    app = create_app(settings(tmp_path, TRUSTED_PROXIES="1", PLACEMENT_EDITOR_BUTTON="true"))
    response = app.test_client().get("/lti/config.xml", base_url="http://internal:8000",
                                     headers={"X-Forwarded-Proto": "https",
                                              "X-Forwarded-Host": "tool.example.edu"})
    assert response.status_code == 200 and response.mimetype == "application/xml"
    placements = parse_xml(response.data)
    assert placements == {"course_navigation": "true", "account_navigation": "false",
                          "user_navigation": "false", "editor_button": "true",
                          "homework_submission": "false"}
    assert b"<blti:launch_url>https://tool.example.edu/launch</blti:launch_url>" in response.data


def test_the_whole_flow_against_the_local_platform(tmp_path, serve):
    from app import create_app

    with DevPlatform(tmp_path / "platform.sqlite3") as platform:
        client_id, client_secret = platform.add_developer_key(
            "tool", ["http://127.0.0.1/"])  # any port on this host
        app = create_app(settings(tmp_path, BASE_URL=platform.url + "/", OAUTH2_ID=str(client_id),
                                  OAUTH2_KEY=client_secret))
        tool_url = serve(app)
        platform.add_lti11_tool_from_xml(KEY, SECRET, config_url=tool_url + "/lti/config.xml")
        teacher = PlatformUser(platform, "teacher")
        course = platform.course_id("BIO101")
        tool_id = platform.store.tools()[0]["id"]
        consent = teacher.launch(tool_id, course)  # the tool sends the teacher to Canvas
        assert consent.url.startswith(platform.url + "/login/oauth2/confirm")
        page = teacher.authorize()
        assert page.status_code == 200
        assert "Hello, Terry Teacher" in page.text and "Introduction to Biology" in page.text


def test_the_lti13_developer_key_json_follows_the_same_settings(tmp_path):
    from app import create_app

    app = create_app(settings(tmp_path, PLACEMENT_USER_NAVIGATION="true"))
    config = app.test_client().get("/lti/config.json", base_url="https://tool.example.edu") \
        .get_json()
    assert config["oidc_initiation_url"] == "https://tool.example.edu/lti13/login"
    assert config["target_link_uri"] == "https://tool.example.edu/launch"
    assert config["public_jwk_url"] == "https://tool.example.edu/lti13/jwks"
    canvas = config["extensions"][0]
    assert canvas["privacy_level"] == "public"
    placements = canvas["settings"]["placements"]
    assert [p["placement"] for p in placements] == \
        ["course_navigation", "user_navigation", "link_selection"]
    assert placements[-1]["message_type"] == "LtiDeepLinkingRequest"
    assert placements[-1]["target_link_uri"] == "https://tool.example.edu/deep-link"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in config["scopes"]
    assert config["custom_fields"]["canvas_api_domain"] == "$Canvas.api.domain"
    plain = create_app(settings(tmp_path, LTI_ADVANTAGE="false", DEEP_LINKING="false"))
    config = plain.test_client().get("/lti/config.json", base_url="https://tool.example.edu") \
        .get_json()
    assert config["scopes"] == []
    assert [p["placement"] for p in config["extensions"][0]["settings"]["placements"]] == \
        ["course_navigation"]


def test_content_selection_arrives_at_the_one_redirect_uri_and_is_handed_on(tmp_path):
    """Moodle and Canvas post every 1.3 launch to /launch, the one redirect URI this tool
    registers; a content selection request meant for /deep-link is handed on there."""
    from app import create_app
    from ltikit.flask import LTIKit
    from ltikit.testing.lti13 import TestPlatform

    app = create_app(settings(tmp_path))
    platform = TestPlatform(issuer="https://moodle.example.edu")
    platform.register(LTIKit.of(app).registrations)
    client = app.test_client()
    handed = platform.launch(client, "https://tool.example.edu/deep-link", **{
        "message_type": "LtiDeepLinkingRequest",
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": {
            "deep_link_return_url": "https://moodle.example.edu/mod/lti/contentitem_return.php",
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"]}})
    assert handed.status_code == 302
    location = urlsplit(handed.headers["Location"])
    assert location.path == "/deep-link" and "ltikit_handoff=" in location.query
    page = client.get(f"{location.path}?{location.query}", base_url="https://tool.example.edu")
    assert page.status_code == 200 and "Add" in page.get_data(as_text=True)


def test_a_platform_installs_the_tool_from_one_registration_link(tmp_path, serve,
                                                                  monkeypatch):
    """LTI Dynamic Registration, as the README says: `python manage.py registration-link`
    makes a single-use link; the platform (Canvas's way) opens it, the administrator
    confirms, and the tool is registered on both sides, ready for LTI 1.3 launches."""
    from app import create_app
    from manage import registration_link

    with DevPlatform(tmp_path / "platform.sqlite3", PLATFORM_STORAGE=False) as platform:
        client_id, client_secret = platform.add_developer_key("tool", ["http://127.0.0.1/"])
        config = settings(tmp_path, BASE_URL=platform.url + "/", OAUTH2_ID=str(client_id),
                          OAUTH2_KEY=client_secret)
        app = create_app(config)
        tool_url = serve(app)
        # The settings manage.py reads (from .env, or the environment).
        monkeypatch.setenv("SECRET_KEY", config["SECRET_KEY"])
        monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", config["LTIKIT_ENCRYPTION_KEYS"])
        monkeypatch.setenv("DATABASE_URL", config["LTIKIT_DATABASE_URL"])
        link = registration_link(tool_url, days=1)
        tool_id, _, _ = platform.register_tool(link)
        from ltikit.flask import LTIKit

        with app.app_context():  # its first signing key, made as it registered
            assert len(LTIKit.of(app).tool_keys.jwks()["keys"]) == 1
        tool = platform.store.tool(tool_id)
        assert set(tool["placements"]) == {"course_navigation", "link_selection"}
        assert platform.store.lti13_tool(tool_id=tool_id)["redirect_uris"] == \
            [f"{tool_url}/launch"]
        teacher = PlatformUser(platform, "teacher")
        consent = teacher.launch13(tool_id, platform.course_id("BIO101"))
        assert consent.url.startswith(platform.url + "/login/oauth2/confirm")
        page = teacher.authorize()
        assert "Hello, Terry Teacher" in page.text


def test_what_it_registers_follows_the_settings_and_the_platform(tmp_path):
    """The Dynamic Registration answer: Canvas gets its custom fields, privacy level and the
    course navigation's visibility; Moodle neither (it would send $Canvas.* as written)."""
    from ltikit.lti13 import PlatformConfiguration
    from tool_setup import tool_configuration

    def platform(family):
        return PlatformConfiguration(
            url="https://lms.example.edu/config", issuer="https://lms.example.edu",
            authorization_endpoint="https://lms.example.edu/auth",
            token_endpoint="https://lms.example.edu/token",
            jwks_uri="https://lms.example.edu/jwks",
            registration_endpoint="https://lms.example.edu/register",
            scopes_supported=None, claims_supported=None, product_family_code=family,
            version="1", messages_supported={}, name=family)

    configure = tool_configuration(settings(tmp_path, PLACEMENT_USER_NAVIGATION="true"))
    canvas = configure(platform("canvas"))
    assert canvas.custom_parameters["canvas_course_id"] == "$Canvas.course.id"
    assert canvas.canvas_privacy_level == "public"
    assert [(m.type, m.placements) for m in canvas.messages] == [
        ("LtiResourceLinkRequest", ("course_navigation",)),
        ("LtiResourceLinkRequest", ("user_navigation",)),
        ("LtiDeepLinkingRequest", ("link_selection",))]
    assert canvas.messages[0].extensions == {
        "https://canvas.instructure.com/lti/visibility": "admins"}
    assert len(canvas.scopes) == 4
    moodle = configure(platform("moodle"))
    assert moodle.custom_parameters == {}
    plain = tool_configuration(settings(tmp_path, LTI_ADVANTAGE="false",
                                        DEEP_LINKING="false"))(platform("moodle"))
    assert plain.scopes == () and [m.type for m in plain.messages] == \
        ["LtiResourceLinkRequest"]
