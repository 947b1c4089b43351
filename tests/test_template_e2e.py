"""The template, run by the README's main command, used in Chromium through the platform.

``python3 dev.py run`` runs examples/with_platform.py: the platform on localhost and the
template tool on 127.0.0.1, the tool installed by its XML URL.  Tokens live 3 seconds here
and are refreshed only once expired, so a refresh is easy to provoke.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from servers import free_port

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "with_platform.py"


@pytest.fixture
def main_job(tmp_path):
    platform_port, tool_port = free_port(), free_port()
    env = dict(os.environ, PLATFORM_PORT=str(platform_port), PORT=str(tool_port),
               LTIKIT_DEV_DIR=str(tmp_path), TOKEN_LIFETIME="3", TOKEN_REFRESH_MARGIN="0")
    process = subprocess.Popen([sys.executable, str(SCRIPT)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = None
    for line in process.stdout:
        if line.strip().startswith("Open "):
            url = line.strip().removeprefix("Open ")
            break
    assert url, "the main command did not print the URL to open"
    yield url, f"http://localhost:{platform_port}"
    process.terminate()
    process.wait(timeout=10)


def act_as(page, base, label):
    page.goto(base + "/")
    page.select_option("#user-switch", label=label)
    page.click("text=Switch")


def stats(base):
    return requests.get(base + "/_platform/stats", timeout=10).json()


def test_staff_authorize_once_tokens_refresh_silently_and_revocation_asks_again(
        browser, main_job):
    course_url, base = main_job
    page = browser.new_context().new_page()
    frame = page.frame_locator("iframe#tool_content")

    act_as(page, base, "Sam Student (student)")
    page.goto(course_url)
    page.click("nav >> text=Template tool")
    assert "This tool is not available to you" in frame.locator("h1").inner_text()

    act_as(page, base, "Terry Teacher (teacher)")
    page.goto(course_url)
    page.click("nav >> text=Template tool")
    assert "is requesting access to your account" in frame.locator("h1").inner_text()
    frame.locator("button:has-text('Authorize')").click()
    assert frame.locator("#greeting").inner_text() == "Hello, Terry Teacher"
    assert "Introduction to Biology" in frame.locator("#course").inner_text()

    refreshes = stats(base).get("grant:refresh_token", 0)
    time.sleep(3.5)  # the access token has expired
    frame.locator("body").evaluate("() => location.reload()")
    assert frame.locator("#greeting").inner_text() == "Hello, Terry Teacher"
    assert stats(base)["grant:refresh_token"] == refreshes + 1

    frame.locator("button:has-text('Disconnect from Canvas')").click()
    assert frame.locator("#signed-out").inner_text() == "Disconnected from Canvas"
    assert stats(base)["revoke"] == 1
    frame.locator("text=Connect again").click()
    assert "is requesting access to your account" in frame.locator("h1").inner_text()


def test_two_users_in_one_browser_never_see_each_others_data(browser, main_job):
    course_url, base = main_job
    page = browser.new_context().new_page()
    frame = page.frame_locator("iframe#tool_content")
    for label, name in (("Terry Teacher (teacher)", "Terry Teacher"),
                        ("Tao Assistant (ta)", "Tao Assistant"),
                        ("Terry Teacher (teacher)", "Terry Teacher"),
                        ("Tao Assistant (ta)", "Tao Assistant")):
        act_as(page, base, label)
        page.goto(course_url)
        page.click("nav >> text=Template tool")
        heading = frame.locator("h1").inner_text()
        if "is requesting access" in heading:  # first visit of this user: their own consent
            assert name in frame.locator("main").inner_text()
            frame.locator("button:has-text('Authorize')").click()
        assert frame.locator("#greeting").inner_text() == f"Hello, {name}"
    # Each user authorized exactly once: nobody was served with the other's token.
    assert stats(base)["grant:authorization_code"] == 2
