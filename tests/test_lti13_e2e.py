"""In Chromium: the local platform launches an ltikit tool over LTI 1.3, in its iframe.

Platform on http://localhost:P1, tool on http://127.0.0.1:P2 (two sites).  The OIDC login,
the auth redirect and the form_post of the id_token all happen inside the course iframe,
with the tool's state cookie in a cross-site context, as in Canvas.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

import pytest
from flask import Flask

from browser import become, launched, serve
from ltikit.flask import LTIKit, lti
from ltikit.lti13 import Registrations
from ltikit.platform import DevPlatform

CANVAS_FIELDS = {"canvas_user_id": "$Canvas.user.id", "canvas_course_id": "$Canvas.course.id",
                 "canvas_api_domain": "$Canvas.api.domain"}


def tool_13(tmp_path, clock=time.time, **config) -> Flask:
    app = Flask("tool13", instance_path=str(tmp_path / "tool13"))
    app.config.update(SECRET_KEY="tool-secret", **config)
    LTIKit(app, clock=clock)  # registers /lti13/login

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        return (f"<h1 id=greeting>Hello {lti.user.name}</h1><p id=version>{lti.version}</p>"
                f"<p id=course>{lti.context.title}</p>"
                f"<p id=canvas>{lti.canvas.user_id if lti.canvas else '-'}</p>"
                f"<p id=staff>{lti.is_role('staff')}</p>"
                f"<a id=again href='{lti.url_for('again')}'>Next page</a>")

    @app.route("/again")
    @lti(request="session")
    def again(lti):
        return f"<p id=again-page>Still {lti.user.name}</p>"

    return app


@contextmanager
def platform_and_tool(tmp_path, tool_config=None, **platform_settings):
    app = tool_13(tmp_path, **(tool_config or {}))
    with DevPlatform(tmp_path / "platform.sqlite3", **platform_settings) as platform, \
            serve(app) as tool_url:
        tool_id, client_id, deployment_id = platform.add_lti13_tool(
            "Tool 1.3", oidc_initiation_url=f"{tool_url}/lti13/login",
            target_link_uri=f"{tool_url}/launch", custom_fields=CANVAS_FIELDS)
        Registrations(app.extensions["ltikit"].storage.engine).add(
            **platform.lti13_registration(client_id), deployments=(deployment_id,))
        platform.tool_13 = tool_id  # the test's tool, for tests that launch it themselves
        yield platform, tool_url


@pytest.fixture
def setup(tmp_path):
    with platform_and_tool(tmp_path) as (platform, _):
        yield platform


def open_tool_as(page, platform, login):
    user = platform.user(login)
    become(page, platform.url, user["id"], user["name"])
    page.click("text=Introduction to Biology")
    page.click("nav >> text=Tool 1.3")
    return page.frame_locator("iframe#tool_content")


@pytest.mark.parametrize(("login", "name", "staff"), [("student", "Sam Student", "False"),
                                                       ("teacher", "Terry Teacher", "True")])
def test_a_13_launch_in_the_course_iframe(browser, setup, login, name, staff):
    platform = setup
    context = browser.new_context()
    frame = open_tool_as(context.new_page(), platform, login)
    assert frame.locator("#greeting").inner_text() == f"Hello {name}"
    assert frame.locator("#version").inner_text() == "1.3"
    assert frame.locator("#course").inner_text() == "Introduction to Biology"
    assert frame.locator("#canvas").inner_text() == str(platform.user(login)["id"])
    assert frame.locator("#staff").inner_text() == staff
    frame.locator("#again").click()
    assert frame.locator("#again-page").inner_text() == f"Still {name}"
    context.close()


# -- third-party cookies blocked ------------------------------------------------------------
# Chromium's --test-third-party-cookie-phaseout blocks third-party cookies as Chrome does
# after the phase-out, except Partitioned (CHIPS) ones, which ltikit sets by default.  Safari
# (and Firefox in strict mode) keep no third-party cookie at all; a tool configured with
# LTIKIT_COOKIE_PARTITIONED=False meets the same wall in Chromium, which lets these tests
# take the paths such browsers take.

@pytest.fixture(scope="module")
def phaseout_browser(_chromium):
    with launched(_chromium.get(), "--test-third-party-cookie-phaseout") as other:
        yield other


def launch_messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "ltikit"]


def test_after_the_phaseout_partitioned_cookies_still_carry_the_launch(
        phaseout_browser, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ltikit")
    with platform_and_tool(tmp_path) as (platform, _):
        context = phaseout_browser.new_context()
        frame = open_tool_as(context.new_page(), platform, "teacher")
        assert frame.locator("#greeting").inner_text() == "Hello Terry Teacher"
        frame.locator("#again").click()
        assert frame.locator("#again-page").inner_text() == "Still Terry Teacher"
        context.close()
    assert not any("platform's storage" in m for m in launch_messages(caplog))


def test_with_the_cookies_blocked_the_launch_goes_through_platform_storage(
        phaseout_browser, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ltikit")
    with platform_and_tool(tmp_path, {"LTIKIT_COOKIE_PARTITIONED": False}) as (platform, url):
        context = phaseout_browser.new_context()
        page = context.new_page()
        frame = open_tool_as(page, platform, "student")
        assert frame.locator("#greeting").inner_text() == "Hello Sam Student"
        assert frame.locator("#version").inner_text() == "1.3"
        assert context.cookies(url) == []  # the browser really kept no cookie of the tool
        # The next page carries the launch id in its URL, not in a cookie.
        frame.locator("#again").click()
        assert frame.locator("#again-page").inner_text() == "Still Sam Student"
        context.close()
    messages = launch_messages(caplog)
    assert any("storage=post_message_forwarding" in m for m in messages)
    assert any("asking the platform's storage" in m for m in messages)
    assert sum("LTI 1.3 launch accepted" in m for m in messages) == 1


def test_with_the_cookies_blocked_a_storage_frame_that_loads_late_still_keeps_the_login(
        phaseout_browser, tmp_path, caplog):
    """The platform's storage frame loads beside the tool's and may come after the tool's
    login page has sent its message (here it takes 1.5 s): the page sends it again until
    the frame answers, so the launch still goes through storage."""
    caplog.set_level(logging.INFO, logger="ltikit")
    with platform_and_tool(tmp_path, {"LTIKIT_COOKIE_PARTITIONED": False},
                           FAULTS={"storage": {"delay": 1.5}}) as (platform, url):
        context = phaseout_browser.new_context()
        frame = open_tool_as(context.new_page(), platform, "student")
        assert frame.locator("#greeting").inner_text() == "Hello Sam Student"
        assert context.cookies(url) == []
        context.close()
    assert any("asking the platform's storage" in m for m in launch_messages(caplog))


def test_without_platform_storage_a_browser_keeping_partitioned_cookies_stays_in_the_frame(
        phaseout_browser, tmp_path):
    """The cookie check at a framed login (no storage, as on Moodle) passes through when
    the browser keeps the tool's (partitioned) cookies."""
    with platform_and_tool(tmp_path, PLATFORM_STORAGE=False) as (platform, _):
        context = phaseout_browser.new_context()
        frame = open_tool_as(context.new_page(), platform, "student")
        assert frame.locator("#greeting").inner_text() == "Hello Sam Student"
        frame.locator("#again").click()
        assert frame.locator("#again-page").inner_text() == "Still Sam Student"
        context.close()


def test_without_cookies_or_platform_storage_the_tool_opens_in_a_new_window(
        phaseout_browser, tmp_path):
    with platform_and_tool(tmp_path, {"LTIKIT_COOKIE_PARTITIONED": False},
                           PLATFORM_STORAGE=False) as (platform, _):
        context = phaseout_browser.new_context()
        page = context.new_page()
        frame = open_tool_as(page, platform, "teacher")
        link = frame.get_by_role("link", name="Open the tool in a new window")
        link.wait_for()
        # Offered at the login, before the platform used up the single-use hint.
        assert "blocks this tool's cookies" in frame.locator("body").inner_text()
        with context.expect_page() as opened:
            link.click()
        window = opened.value
        # A top-level window: the tool's cookies are first-party there.
        assert window.locator("#greeting").inner_text() == "Hello Terry Teacher"
        window.locator("#again").click()
        assert window.locator("#again-page").inner_text() == "Still Terry Teacher"
        context.close()


def test_a_login_csrf_auto_posted_from_another_site_is_refused(
        phaseout_browser, tmp_path, caplog):
    """The attacker starts a login of their own asking for platform storage, reads the
    storage secret from the login page, lets the platform sign their id_token without
    submitting it, and puts all three in a page on their own site that auto-posts them to
    the tool.  The victim opens that page: the tool must not let them in as the attacker."""
    import html
    import json
    import re

    from ltikit.testing.platform import PlatformUser

    caplog.set_level(logging.INFO, logger="ltikit")
    with platform_and_tool(tmp_path, {"LTIKIT_COOKIE_PARTITIONED": False}) as (platform, url):
        attacker = PlatformUser(platform, "student")
        course = platform.course_id("BIO101")
        login = attacker.launch(platform.tool_13, course)  # the tool's storage login page
        put = json.loads(re.search(r"id=ltikit-storage>(.*?)</script>", login.text).group(1))
        signed = attacker.session.get(put["next"], timeout=30)  # the platform signs
        action, fields = attacker.form_of(signed)
        forged = dict(fields, ltikit_storage_secret=put["value"])
        assert {"id_token", "state", "ltikit_storage_secret"} <= set(forged)

        evil = Flask("evil")
        inputs = "".join(f"<input type=hidden name='{html.escape(k)}' value='{html.escape(v)}'>"
                         for k, v in forged.items())
        evil.add_url_rule("/", "page", lambda: (
            f"<form id=f method=post action='{html.escape(action)}'>{inputs}</form>"
            "<script>document.getElementById('f').submit()</script>"))
        with serve(evil) as evil_url:
            # On "localhost" (127.0.0.1 is the tool's site): another site than the tool.
            evil_url = evil_url.replace("127.0.0.1", "localhost")
            context = phaseout_browser.new_context()
            page = context.new_page()
            page.goto(evil_url + "/")
            page.wait_for_url(action)
            body = page.locator("body").inner_text()
            assert "(storage_cross_site)" in body and "Sam Student" not in body
            assert not [c for c in context.cookies(url) if c["name"] == "ltikit_launch"]
            context.close()
    assert not any("LTI 1.3 launch accepted" in m for m in launch_messages(caplog))

