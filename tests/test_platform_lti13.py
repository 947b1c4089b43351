"""The local platform's LTI 1.3 side without a browser: installing a tool from Canvas's
developer-key JSON, and the login initiation Canvas sends (with its storage frame)."""

from __future__ import annotations

import pytest
from flask import Flask

from browser import serve
from ltikit.platform import DevPlatform
from ltikit.testing.platform import PlatformUser

CONFIG = {
    "title": "Quiz Tool", "description": "Quizzes",
    "oidc_initiation_url": "http://127.0.0.1:9/lti13/login",
    "target_link_uri": "http://127.0.0.1:9/launch",
    "public_jwk_url": "http://127.0.0.1:9/lti13/jwks", "scopes": [],
    "custom_fields": {"canvas_user_id": "$Canvas.user.id"},
    "extensions": [{"platform": "canvas.instructure.com", "privacy_level": "name_only",
                    "settings": {"placements": [
                        {"placement": "course_navigation", "text": "Quizzes",
                         "visibility": "admins", "message_type": "LtiResourceLinkRequest",
                         "target_link_uri": "http://127.0.0.1:9/nav"}]}}],
}


def config_server():
    app = Flask("config")
    app.add_url_rule("/lti/config.json", "config", lambda: CONFIG)
    return serve(app)


def test_a_tool_is_installed_from_its_json_url_as_canvas_enter_url_does(tmp_path):
    with DevPlatform(tmp_path / "p.sqlite3") as platform, config_server() as url:
        tool_id, client_id, deployment_id = platform.add_lti13_tool_from_json(
            config_url=url + "/lti/config.json")
        tool = platform.store.tool(tool_id)
        assert tool["name"] == "Quiz Tool" and tool["privacy_level"] == "name_only"
        assert tool["custom_fields"] == {"canvas_user_id": "$Canvas.user.id"}
        assert tool["placements"]["course_navigation"]["url"] == "http://127.0.0.1:9/nav"
        assert tool["placements"]["course_navigation"]["visibility"] == "admins"
        lti13 = platform.store.lti13_tool(client_id=client_id)
        assert lti13["deployment_id"] == deployment_id
        assert lti13["redirect_uris"] == ["http://127.0.0.1:9/launch"]


@pytest.mark.parametrize("config", [{}, {"title": "x"}, [], {**CONFIG, "target_link_uri": ""}])
def test_an_incomplete_json_configuration_is_refused(tmp_path, config):
    with DevPlatform(tmp_path / "p.sqlite3") as platform, pytest.raises(ValueError):
        platform.add_lti13_tool_from_json(config=config)


@pytest.mark.parametrize("storage", [True, False])
def test_the_login_initiation_names_canvas_storage_frame(tmp_path, storage):
    with DevPlatform(tmp_path / "p.sqlite3", PLATFORM_STORAGE=storage) as platform:
        tool_id, _, _ = platform.add_lti13_tool_from_json(config=CONFIG)
        teacher = PlatformUser(platform, "teacher")
        course = platform.course_id("BIO101")
        url, fields = teacher.launch_form(
            f"/courses/{course}/external_tools/{tool_id}/launch?placement=course_navigation")
        assert url == "http://127.0.0.1:9/lti13/login"
        assert ("lti_storage_target", "post_message_forwarding") in fields if storage \
            else "lti_storage_target" not in dict(fields)
        page = teacher.get(f"/courses/{course}/external_tools/{tool_id}").text
        assert ('name="post_message_forwarding"' in page) is storage
        frame = teacher.get("/post_message_forwarding")
        assert frame.status_code == 200 and "lti.get_data" in frame.text
