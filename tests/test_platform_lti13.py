"""The local platform's LTI 1.3 side without a browser: installing a tool from Canvas's
developer-key JSON, and the login initiation Canvas sends (with its storage frame)."""

from __future__ import annotations

import logging
import re

import pytest
import requests
from flask import Flask

from browser import serve
from ltikit.lti13 import Registrations
from ltikit.platform import DevPlatform
from ltikit.testing import Clock
from ltikit.testing.platform import PlatformUser
from test_lti13_e2e import tool_13

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
        # The redirect URIs an admin would enter: every launch URL of the tool.
        assert lti13["redirect_uris"] == ["http://127.0.0.1:9/launch", "http://127.0.0.1:9/nav"]


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


def test_after_a_key_rotation_the_tool_fetches_the_new_key_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ltikit.lti13")
    clock = Clock()
    app = tool_13(tmp_path, clock=clock)
    # Without the storage frame the tool's login answers with a redirect (no script to run).
    with DevPlatform(tmp_path / "p.sqlite3", PLATFORM_STORAGE=False) as platform, \
            serve(app) as tool_url:
        tool_id, client_id, deployment_id = platform.add_lti13_tool(
            "Tool 1.3", oidc_initiation_url=f"{tool_url}/lti13/login",
            target_link_uri=f"{tool_url}/launch")
        Registrations(app.extensions["ltikit"].storage.engine).add(
            **platform.lti13_registration(client_id), deployments=(deployment_id,))
        teacher, course = PlatformUser(platform, "teacher"), platform.course_id("BIO101")
        first = requests.get(platform.url + "/api/lti/security/jwks", timeout=10).json()
        assert "Hello Terry Teacher" in teacher.launch13(tool_id, course).text
        clock.advance(app.extensions["ltikit"].settings.lti13_jwks_refetch_interval)
        new_kid = platform.rotate_lti13_key()
        published = requests.get(platform.url + "/api/lti/security/jwks", timeout=10).json()
        # The new key is published beside the previous one (tokens signed just before
        # the rotation still verify).
        assert [k["kid"] for k in published["keys"]] == [first["keys"][0]["kid"], new_kid]
        for _ in range(2):
            assert "Hello Terry Teacher" in teacher.launch13(tool_id, course).text
    fetches = [r for r in caplog.records if r.getMessage().startswith("JWKS fetched")]
    assert len(fetches) == 2  # the first launch, then once for the new kid


def test_the_cli_installs_a_13_tool_and_prints_how_the_tool_registers_the_platform(tmp_path):
    import shlex
    import subprocess
    import sys

    data, tool_db = tmp_path / "p.sqlite3", f"sqlite:///{tmp_path}/tool.sqlite3"
    cli = [sys.executable, "-m", "ltikit.cli"]
    with config_server() as url:
        added = subprocess.run([*cli, "platform", "--data", str(data), "add-lti13-tool",
                                "--config-url", url + "/lti/config.json",
                                "--platform-url", "http://localhost:8123"],
                               capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    assert "installed LTI 1.3 tool" in added.stdout and "Quiz Tool" in added.stdout
    command = added.stdout.strip().splitlines()[-1].strip()
    assert command.startswith("ltikit --database-url <the tool's database> registrations add")
    args = shlex.split(command.replace("<the tool's database>", tool_db))[1:]
    assert subprocess.run([*cli, "db", "upgrade", "--database-url", tool_db],
                          capture_output=True, timeout=60).returncode == 0
    registered = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=60)
    assert registered.returncode == 0, registered.stderr
    from ltikit.storage import SQLStorage

    client_id = re.search(r"client id: (\S+)", added.stdout).group(1)
    registration = Registrations(SQLStorage(tool_db).engine).get("https://canvas.instructure.com",
                                                                  client_id)
    assert registration.jwks_url == "http://localhost:8123/api/lti/security/jwks"
    refused = subprocess.run([*cli, "platform", "--data", str(data), "add-lti13-tool",
                              "--config-url", "http://127.0.0.1:9/nothing"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "ltikit:" in refused.stderr


def test_the_tools_page_installs_a_13_tool_by_its_json_url(tmp_path):
    with DevPlatform(tmp_path / "p.sqlite3") as platform, config_server() as url:
        admin = PlatformUser(platform, "admin")
        page = admin.get("/tools")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        done = admin.session.post(platform.url + "/tools/lti13", timeout=30, data={
            "csrf_token": csrf, "config_url": url + "/lti/config.json"})
        assert done.status_code == 200 and "Installed Quiz Tool (LTI 1.3" in done.text
        tool = next(t for t in platform.store.tools() if t["name"] == "Quiz Tool")
        client_id = platform.store.lti13_tool(tool_id=tool["id"])["client_id"]
        assert f"client id <code>{client_id}</code>" in done.text
        bad = admin.session.post(platform.url + "/tools/lti13", timeout=30, data={
            "csrf_token": csrf, "config_url": url + "/nothing-here"})
        assert "Could not install the LTI 1.3 tool" in bad.text
