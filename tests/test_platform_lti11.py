"""The platform's LTI 1.1 side: installing tools, Canvas-shaped launches, Basic Outcomes."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask, Response
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.oauth1 import SIGNATURE_TYPE_AUTH_HEADER, Client
from oauthlib.oauth1.rfc5849 import signature

from browser import serve
from conftest import build_tool
from ltikit.errors import LTIPostMessageException
from ltikit.lti11.outcomes import OutcomeService, build_request
from ltikit.platform import DevPlatform
from ltikit.platform.lti11 import ConfigError, parse_tool_xml
from ltikit.roles import RoleGroups, Roles
from ltikit.testing.platform import PlatformUser

KEY, SECRET = "canvas-key", "s3cret-shared-with-canvas"  # what conftest.build_tool accepts

TOOL_XML = """<?xml version="1.0" encoding="UTF-8"?>
<cartridge_basiclti_link xmlns="http://www.imsglobal.org/xsd/imslticc_v1p0"
    xmlns:blti="http://www.imsglobal.org/xsd/imsbasiclti_v1p0"
    xmlns:lticm="http://www.imsglobal.org/xsd/imslticm_v1p0"
    xmlns:lticp="http://www.imsglobal.org/xsd/imslticp_v1p0">
  <blti:title>Course Dashboard</blti:title>
  <blti:description>Shows the course</blti:description>
  <blti:launch_url>{base}/launch</blti:launch_url>
  <blti:custom><lticm:property name="favourite">blue</lticm:property></blti:custom>
  <blti:extensions platform="canvas.instructure.com">
    <lticm:property name="privacy_level">public</lticm:property>
    <lticm:options name="course_navigation">
      <lticm:property name="enabled">true</lticm:property>
      <lticm:property name="text">Roster view</lticm:property>
      <lticm:property name="visibility">admins</lticm:property>
    </lticm:options>
    <lticm:options name="account_navigation">
      <lticm:property name="enabled">true</lticm:property>
      <lticm:property name="url">{base}/launch?from=account</lticm:property>
    </lticm:options>
    <lticm:options name="user_navigation">
      <lticm:property name="enabled">true</lticm:property>
    </lticm:options>
    <lticm:options name="editor_button">
      <lticm:property name="enabled">true</lticm:property>
      <lticm:property name="selection_width">500</lticm:property>
      <lticm:property name="selection_height">400</lticm:property>
    </lticm:options>
    <lticm:options name="homework_submission">
      <lticm:property name="enabled">false</lticm:property>
    </lticm:options>
  </blti:extensions>
</cartridge_basiclti_link>
"""


@pytest.fixture
def platform(tmp_path):
    with DevPlatform(tmp_path / "p.sqlite3") as platform:
        yield platform


def verify_with_oauthlib(url, fields, secret):
    """Check a launch's signature with oauthlib only (the platform's and ltikit's code aside)."""
    request = OAuthlibRequest(url, http_method="POST", body=dict(fields),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    request.params = signature.collect_parameters(uri_query=urlsplit(url).query, body=fields,
                                                  exclude_oauth_signature=True)
    request.signature = dict(fields)["oauth_signature"]
    return signature.verify_hmac_sha1(request, secret)


def test_a_tool_installed_by_url_gets_the_placements_of_its_xml(platform):
    config_app = Flask("config")
    holder = {}

    @config_app.route("/config.xml")
    def config():
        return Response(TOOL_XML.format(base=holder["base"]), mimetype="application/xml")

    with serve(config_app) as base:
        holder["base"] = base
        tool_id = platform.add_lti11_tool_from_xml(KEY, SECRET, config_url=base + "/config.xml")
    tool = platform.store.tool(tool_id)
    assert tool["name"] == "Course Dashboard" and tool["privacy_level"] == "public"
    assert tool["url"] == base + "/launch"
    assert tool["custom_fields"] == {"favourite": "blue"}
    assert set(tool["placements"]) == {"course_navigation", "account_navigation",
                                       "user_navigation", "editor_button",
                                       "homework_submission"}
    course = platform.course_id("BIO101")
    teacher, student = PlatformUser(platform, "teacher"), PlatformUser(platform, "student")
    # course navigation visible to admins (staff) only, as the XML says
    assert "Roster view" in teacher.get(f"/courses/{course}").text
    assert "Roster view" not in student.get(f"/courses/{course}").text
    # the editor button launches with Canvas's content-item parameters
    _, fields = teacher.launch_form(f"/courses/{course}/external_tools/{tool_id}/launch"
                                      "?placement=editor_button")
    params = dict(fields)
    assert params["selection_directive"] == "embed_content"
    assert params["ext_content_return_types"] == "oembed,lti_launch_url,url,image_url,iframe"
    assert params["launch_presentation_width"] == "500"
    assert params["custom_favourite"] == "blue"
    # a disabled placement cannot be launched
    disabled = teacher.get(f"/courses/{course}/external_tools/{tool_id}/launch"
                           "?placement=homework_submission")
    assert disabled.status_code == 404
    # account navigation uses its own URL, for admins only
    admin = PlatformUser(platform, "admin")
    account = platform.store.account()["id"]
    url, fields = admin.launch_form(f"/accounts/{account}/external_tools/{tool_id}/launch"
                                      "?placement=account_navigation")
    assert url == base + "/launch?from=account"
    assert dict(fields)["custom_canvas_account_id"] == str(account)
    assert verify_with_oauthlib(url, fields, SECRET)


def test_bad_xml_is_refused_with_a_reason():
    with pytest.raises(ConfigError, match="well-formed"):
        parse_tool_xml(TOOL_XML.format(base="https://x.example/?a=1&b=2"))
    with pytest.raises(ConfigError, match="cartridge_basiclti_link"):
        parse_tool_xml("<html/>")


@pytest.mark.parametrize(("login", "roles", "group"), [
    ("teacher", "Instructor", "instructor"),
    ("ta", "urn:lti:role:ims/lis/TeachingAssistant", "teaching_assistant"),
    ("designer", "ContentDeveloper", "content_developer"),
    ("student", "Learner", "student"),
    ("observer", "urn:lti:instrole:ims/lis/Observer,urn:lti:role:ims/lis/Mentor", "mentor"),
    ("admin", "urn:lti:instrole:ims/lis/Administrator", "administrator"),
])
def test_launches_carry_roles_as_canvas_spells_them(platform, login, roles, group):
    tool_id = platform.add_lti11_tool("Tool", KEY, SECRET, url="https://tool.example.edu/launch")
    course = platform.course_id("BIO101")
    url, fields = PlatformUser(platform, login).launch_form(
        f"/courses/{course}/external_tools/{tool_id}/launch?placement=course_navigation")
    params = dict(fields)
    assert params["roles"] == roles
    assert "urn:lti:sysrole:ims/lis/User" in params["ext_roles"]
    assert params["lti_message_type"] == "basic-lti-launch-request"
    assert params["tool_consumer_info_product_family_code"] == "canvas"
    assert params["custom_canvas_course_id"] == str(course)
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    assert verify_with_oauthlib(url, fields, SECRET)
    assert RoleGroups().check(Roles.parse(params["roles"]), group)


def test_without_canvas_extensions_launches_are_plain_lti_as_moodle_sends_them(tmp_path):
    with DevPlatform(tmp_path / "p.sqlite3", CANVAS_EXTENSIONS=False) as plain:
        tool_id = plain.add_lti11_tool(
            "Tool", KEY, SECRET, url="https://tool.example.edu/launch",
            custom_fields={"canvas_user_id": "$Canvas.user.id", "who": "$Person.name.full",
                           "canvas_api_domain": "$Canvas.api.domain"})
        course = plain.course_id("BIO101")
        assignment = plain.add_assignment(course, tool_id, "Quiz 1", 20)
        url, fields = PlatformUser(plain, "student").launch_form(
            f"/courses/{course}/external_tools/{tool_id}/launch?placement=assignment"
            f"&assignment_id={assignment}")
    params = dict(fields)
    assert params["tool_consumer_info_product_family_code"] != "canvas"
    assert not [k for k in params if k.startswith("ext_")]
    # The tool's own custom fields stay; Canvas's variables in them arrive as written.
    assert params["custom_canvas_user_id"] == "$Canvas.user.id"
    assert params["custom_canvas_api_domain"] == "$Canvas.api.domain"
    assert params["custom_who"] == "Sam Student"
    assert not [k for k in params if k.startswith("custom_canvas_")
                and k not in ("custom_canvas_user_id", "custom_canvas_api_domain")]
    assert params["lis_outcome_service_url"] and params["lis_result_sourcedid"]
    assert params["roles"] == "Learner" and params["context_label"] == "BIO101"
    assert verify_with_oauthlib(url, fields, SECRET)


def test_the_launch_is_accepted_by_an_ltikit_tool_and_only_once(platform, tmp_path):
    tool_id = platform.add_lti11_tool("Tool", KEY, SECRET, url="https://tool.example.edu/launch")
    course = platform.course_id("CHEM201")
    url, fields = PlatformUser(platform, "student").launch_form(
        f"/courses/{course}/external_tools/{tool_id}/launch?placement=course_navigation")
    client = build_tool(tmp_path).test_client()
    parts = urlsplit(url)
    kwargs = {"base_url": f"{parts.scheme}://{parts.netloc}", "data": dict(fields)}
    first = client.post(parts.path, **kwargs)
    assert first.status_code == 200
    assert first.get_data(as_text=True) == "hello Sam Student in Organic Chemistry"
    assert client.post(parts.path, **kwargs).status_code == 401


def test_privacy_levels_decide_what_personal_data_is_sent(platform):
    course = platform.course_id("BIO101")
    browser = PlatformUser(platform, "student")
    sent = {}
    for level in ("anonymous", "name_only", "email_only", "public"):
        tool_id = platform.add_lti11_tool(level, KEY, SECRET, privacy_level=level,
                                          url="https://tool.example.edu/launch")
        _, fields = browser.launch_form(
            f"/courses/{course}/external_tools/{tool_id}/launch?placement=course_navigation")
        sent[level] = dict(fields)
    assert "lis_person_name_full" not in sent["anonymous"]
    assert "lis_person_contact_email_primary" not in sent["anonymous"]
    assert "custom_canvas_user_id" not in sent["anonymous"]
    assert sent["name_only"]["lis_person_name_full"] == "Sam Student"
    assert "lis_person_contact_email_primary" not in sent["name_only"]
    assert sent["email_only"]["lis_person_contact_email_primary"] == "student@example.edu"
    assert sent["public"]["lis_person_sourcedid"] == "SIS-S1"
    assert sent["public"]["custom_canvas_api_domain"] == urlsplit(platform.url).netloc


def outcome_setup(platform):
    tool_id = platform.add_lti11_tool("Quiz", KEY, SECRET, url="https://tool.example.edu/launch")
    course = platform.course_id("BIO101")
    assignment = platform.add_assignment(course, tool_id, "Quiz 1", 20)
    path = (f"/courses/{course}/external_tools/{tool_id}/launch?placement=assignment"
            f"&assignment_id={assignment}")
    return assignment, dict(PlatformUser(platform, "student").launch_form(path)[1]), \
        dict(PlatformUser(platform, "teacher").launch_form(path)[1])


def test_graded_launches_carry_the_outcome_service_and_learners_a_sourcedid(platform):
    _, student, teacher = outcome_setup(platform)
    assert student["lis_outcome_service_url"].startswith(platform.url + "/api/lti/v1/tools/")
    assert student["ext_outcome_data_values_accepted"] == "url,text"
    assert student["custom_canvas_assignment_points_possible"] == "20"
    assert student["lis_result_sourcedid"]
    assert "lis_result_sourcedid" not in teacher  # Canvas: learners only


def test_basic_outcomes_replace_read_and_delete(platform):
    assignment, params, _ = outcome_setup(platform)
    service = OutcomeService(KEY, SECRET)
    url, sourcedid = params["lis_outcome_service_url"], params["lis_result_sourcedid"]
    sam = platform.user("student")["id"]
    assert service.replace_result(url, sourcedid, 0.5, result_text="well done").is_success
    assert platform.store.grade(assignment, sam)["score"] == 0.5
    assert platform.store.grade(assignment, sam)["result_text"] == "well done"
    assert service.read_result(url, sourcedid).score == 0.5
    assert service.delete_result(url, sourcedid).is_success
    assert service.read_result(url, sourcedid).score is None
    with pytest.raises(LTIPostMessageException, match="Invalid sourcedid"):
        service.replace_result(url, sourcedid.replace("-", "-9", 1), 0.5)
    with pytest.raises(LTIPostMessageException, match="HTTP 401"):
        OutcomeService(KEY, "wrong secret").replace_result(url, sourcedid, 0.5)


def raw_outcome(url, body, *, secret=SECRET, timestamp=None):
    client = Client(KEY, client_secret=secret, signature_type=SIGNATURE_TYPE_AUTH_HEADER,
                    timestamp=str(timestamp or int(time.time())))
    signed_url, headers, signed_body = client.sign(
        url, http_method="POST", body=body.decode(), headers={"Content-Type": "application/xml"})
    return signed_url, headers, signed_body.encode()


def test_outcome_requests_are_checked_like_launches(platform):
    _, params, _ = outcome_setup(platform)
    url, sourcedid = params["lis_outcome_service_url"], params["lis_result_sourcedid"]
    body = build_request("replaceResult", sourcedid, score=0.7)
    signed_url, headers, signed_body = raw_outcome(url, body)
    assert requests.post(signed_url, data=signed_body, headers=headers, timeout=10) \
        .status_code == 200
    replay = requests.post(signed_url, data=signed_body, headers=headers, timeout=10)
    assert replay.status_code == 401 and b"already used" in replay.content
    tampered = requests.post(signed_url, data=signed_body.replace(b"0.7", b"1.0"),
                             headers=headers, timeout=10)
    assert tampered.status_code == 401 and b"oauth_body_hash" in tampered.content
    stale_url, stale_headers, stale_body = raw_outcome(url, body,
                                                       timestamp=int(time.time()) - 1000)
    assert requests.post(stale_url, data=stale_body, headers=stale_headers,
                         timeout=10).status_code == 401
    out_of_range = raw_outcome(url, build_request("replaceResult", sourcedid, score=0.5)
                               .replace(b"0.5", b"1.5"))
    answer = requests.post(out_of_range[0], data=out_of_range[2], headers=out_of_range[1],
                           timeout=10)
    assert answer.status_code == 200 and b"<imsx_codeMajor>failure</imsx_codeMajor>" in \
        answer.content.replace(b"ns0:", b"")


def test_pages_escape_what_tools_and_users_send(platform):
    tool_id = platform.add_lti11_tool("<script>alert(1)</script>", KEY, SECRET,
                                      url="https://tool.example.edu/launch")
    browser = PlatformUser(platform, "teacher")
    course = platform.course_id("BIO101")
    page = browser.get(f"/courses/{course}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    returned = browser.get(f"/courses/{course}/external_content/success/external_tool_redirect",
                           params={"lti_errormsg": "<img src=x onerror=alert(1)>"}).text
    assert "<img src=x" not in returned and "&lt;img src=x" in returned
    assert tool_id


def test_forms_without_the_platform_token_are_refused(platform):
    response = requests.post(platform.url + "/tools", data={"consumer_key": "k",
                                                            "shared_secret": "s"}, timeout=10)
    assert response.status_code == 400
    assert platform.store.tools() == []


def test_the_cli_installs_tools_and_serves_the_platform(tmp_path):
    data = str(tmp_path / "cli.sqlite3")
    cli = [sys.executable, "-m", "ltikit.cli", "platform", "--data", data]
    added = subprocess.run([*cli, "add-tool", "--key", "k", "--secret", "s", "--url",
                            "http://127.0.0.1:5000/launch", "--name", "CLI tool",
                            "--placement", "course_navigation", "--placement",
                            "user_navigation"], capture_output=True, text=True, check=True)
    assert "installed tool 1: CLI tool (course_navigation, user_navigation)" in added.stdout
    key = subprocess.run([*cli, "add-key", "--name", "API", "--redirect-uri",
                          "http://127.0.0.1:5000/oauth/callback"],
                         capture_output=True, text=True, check=True)
    assert re.search(r"client id: \d{14}\nclient secret: \S{40,}", key.stdout)
    from servers import free_port

    port = free_port()
    server = subprocess.Popen([*cli, "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout.readline().startswith(f"ltikit platform on http://localhost:{port}/")
        for _ in range(100):
            try:
                tools = requests.get(f"http://127.0.0.1:{port}/tools", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert "CLI tool" in tools.text
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_course_page_links_every_placement_a_tool_declares(platform):
    placements = {p: {"enabled": "true"} for p in (
        "course_navigation", "account_navigation", "user_navigation", "editor_button",
        "homework_submission")}
    tool_id = platform.add_lti11_tool("Five", KEY, SECRET, placements=placements,
                                      url="https://tool.example.edu/launch")
    course = platform.course_id("BIO101")
    page = PlatformUser(platform, "admin").get(f"/courses/{course}").text
    table = page[page.index('id="installed-tools"'):]
    for label in ("Course navigation", "Account navigation", "User navigation",
                  "Editor button", "Homework submission"):
        assert label in table
    links = set(re.findall(r'href="([^"]*/external_tools/[^"]*)"', table))
    browser = PlatformUser(platform, "admin")
    for link in links:
        assert browser.get(link.replace("&amp;", "&")).status_code == 200, link
    assert len(links) == 5 and tool_id


def test_the_platform_refuses_xml_with_entities(platform):
    from test_outcomes import BOMB

    with pytest.raises(ConfigError, match="DTD or entities"):
        parse_tool_xml(BOMB)
    _, params, _ = outcome_setup(platform)
    signed_url, headers, body = raw_outcome(params["lis_outcome_service_url"], BOMB)
    answer = requests.post(signed_url, data=body, headers=headers, timeout=10)
    assert answer.status_code == 400 and b"no DTDs or entities" in answer.content
