"""The template, run by the README's main command, used in Chromium through the platform.

``python3 dev.py run`` runs examples/with_platform.py: the platform on localhost and the
template tool on 127.0.0.1, the tool installed by its XML URL (LTI 1.1) and by Dynamic
Registration (LTI 1.3).  Tokens live 3 seconds here
and are refreshed only once expired, so a refresh is easy to provoke.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text, update

from browser import become, launched
from ltikit.storage import tables
from servers import free_port, started

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "with_platform.py"


@contextmanager
def running_main_job(tmp_path, *, ports=None, **settings):
    platform_port, tool_port = ports or (free_port(), free_port())
    env = dict(os.environ, PLATFORM_PORT=str(platform_port), PORT=str(tool_port),
               LTIKIT_DEV_DIR=str(tmp_path), TOKEN_LIFETIME="3", TOKEN_REFRESH_MARGIN="0",
               **settings)
    process = subprocess.Popen([sys.executable, str(SCRIPT)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = started(process, "Open ").removeprefix("Open ")
    try:
        yield url, f"http://localhost:{platform_port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def main_job(tmp_path):
    with running_main_job(tmp_path) as urls:
        yield urls


def reload_tool_frame(page):
    """Reload the tool's frame and wait for the new page: the old one, with the same
    elements, stays in the frame until the new one replaces it."""
    tool = page.frame(name="tool_content")
    tool.evaluate("() => { window.ltikitBeforeReload = true; location.reload(); }")
    tool.wait_for_function("() => !window.ltikitBeforeReload && document.readyState !== 'loading'")


def act_as(page, base, label):
    """``label``: the platform's user list entry, such as "Sam Student (student)"."""
    become(page, base, label, label.split(" (")[0])


def the_access_token_expires(dev_dir):
    """As if the token's 3 seconds went by, without waiting: Canvas (the platform) no longer
    accepts it, and the tool's row says it has expired."""
    now = int(time.time())
    with create_engine(f"sqlite:///{dev_dir / 'platform.sqlite3'}").begin() as conn:
        conn.execute(text("UPDATE access_tokens SET expires_at = :t"), {"t": now - 1})
    with create_engine(f"sqlite:///{dev_dir / 'tool.sqlite3'}").begin() as conn:
        conn.execute(update(tables.canvas_tokens).values(expires_at=now - 1))


@contextmanager
def teacher_with_cookies_blocked(browser, tmp_path, **settings):
    """The main job with the tool's cookies not Partitioned, and Terry Teacher on the
    course page in a Chromium after the third-party cookie phase-out: none of the tool's
    cookies reaches it inside the iframe.  Yields (context, page, frame, course URL,
    platform URL)."""
    with running_main_job(tmp_path, COOKIE_PARTITIONED="false", **settings) as (
            course_url, base), launched(browser, "--test-third-party-cookie-phaseout") as blocking:
        context = blocking.new_context()
        page = context.new_page()
        act_as(page, base, "Terry Teacher (teacher)")
        page.goto(course_url)
        yield context, page, page.frame_locator("iframe#tool_content"), course_url, base
        context.close()


def stats(base):
    return requests.get(base + "/_platform/stats", timeout=10).json()


def test_staff_authorize_once_tokens_refresh_silently_and_revocation_asks_again(
        browser, main_job, tmp_path):
    course_url, base = main_job
    page = browser.new_context().new_page()
    frame = page.frame_locator("iframe#tool_content")

    act_as(page, base, "Sam Student (student)")
    page.goto(course_url)
    page.click('nav >> text="Template tool"')
    assert "This tool is not available to you" in frame.locator("h1").inner_text()

    act_as(page, base, "Terry Teacher (teacher)")
    page.goto(course_url)
    page.click('nav >> text="Template tool"')
    assert "is requesting access to your account" in frame.locator("h1").inner_text()
    frame.locator("button:has-text('Authorize')").click()
    assert frame.locator("#greeting").inner_text() == "Hello, Terry Teacher"
    assert "Introduction to Biology" in frame.locator("#course").inner_text()

    refreshes = stats(base).get("grant:refresh_token", 0)
    the_access_token_expires(tmp_path)
    reload_tool_frame(page)
    assert frame.locator("#greeting").inner_text() == "Hello, Terry Teacher"
    assert stats(base)["grant:refresh_token"] == refreshes + 1

    frame.locator("button:has-text('Disconnect from Canvas')").click()
    assert frame.locator("#signed-out").inner_text() == "Disconnected from Canvas"
    assert stats(base)["revoke"] == 1
    frame.locator("text=Connect again").click()
    # The page that says "Disconnected" has a heading too: wait for Canvas's own.
    frame.get_by_role("heading", name=re.compile("is requesting access to your account")
                      ).wait_for()


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
        page.click('nav >> text="Template tool"')
        heading = frame.locator("h1").inner_text()
        if "is requesting access" in heading:  # first visit of this user: their own consent
            assert name in frame.locator("main").inner_text()
            frame.locator("button:has-text('Authorize')").click()
        assert frame.locator("#greeting").inner_text() == f"Hello, {name}"
    # Each user authorized exactly once: nobody was served with the other's token.
    assert stats(base)["grant:authorization_code"] == 2


# -- the same template over LTI 1.3 (installed by Dynamic Registration by the main command) --

LTI13_LINK = 'nav >> text="Template tool (LTI 1.3)"'


def student_refused_teacher_authorizes(browser, course_url, base, greeting="Hello"):
    """Over LTI 1.3: the student is refused; the teacher authorizes and is greeted."""
    page = browser.new_context().new_page()
    frame = page.frame_locator("iframe#tool_content")
    act_as(page, base, "Sam Student (student)")
    page.goto(course_url)
    page.click(LTI13_LINK)
    assert "This tool is not available to you" in frame.locator("h1").inner_text()
    act_as(page, base, "Terry Teacher (teacher)")
    page.goto(course_url)
    page.click(LTI13_LINK)
    assert "is requesting access to your account" in frame.locator("h1").inner_text()
    frame.locator("button:has-text('Authorize')").click()
    assert frame.locator("#greeting").inner_text() == f"{greeting}, Terry Teacher"
    assert "Introduction to Biology" in frame.locator("#course").inner_text()
    page.context.close()


def test_over_lti13_students_are_refused_and_teachers_authorize(browser, main_job):
    student_refused_teacher_authorizes(browser, *main_job)


def test_over_lti13_with_third_party_cookies_blocked(browser, tmp_path):
    """Chromium after the phase-out, the tool's cookies not Partitioned: none reaches the
    tool inside the iframe.  The login goes through the platform's storage frame and the
    launch id through URLs, including the Canvas authorization round trip."""
    with teacher_with_cookies_blocked(browser, tmp_path) as (context, page, frame,
                                                              course_url, base):
        page.click(LTI13_LINK)
        # First the tool's page that asks the platform's storage, then the consent page.
        frame.get_by_role("heading", name="is requesting access to your account").wait_for()
        frame.locator("button:has-text('Authorize')").click()
        assert frame.locator("#greeting").inner_text() == "Hello, Terry Teacher"
        tool_origin = "/".join(page.frame(name="tool_content").url.split("/", 3)[:3])
        assert tool_origin.startswith("http://127.0.0.1:")
        assert context.cookies(tool_origin) == []  # no cookie of the tool was kept
        frame.locator("button:has-text('Disconnect from Canvas')").click()
        assert frame.locator("#signed-out").inner_text() == "Disconnected from Canvas"
        act_as(page, base, "Sam Student (student)")
        page.goto(course_url)
        page.click(LTI13_LINK)
        frame.get_by_role("heading", name="This tool is not available to you").wait_for()


def test_a_project_made_with_ltikit_new_launches_over_lti13(browser, tmp_path):
    made = subprocess.run([sys.executable, "-m", "ltikit.cli", "new", "course-helper"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "course-helper"
    page_template = project / "templates" / "index.html"  # the new project's own edit
    page_template.write_text(page_template.read_text().replace("Hello,", "Welcome,"))
    with running_main_job(tmp_path / "dev", TOOL_DIR=str(project)) as (course_url, base):
        student_refused_teacher_authorizes(browser, course_url, base, greeting="Welcome")


def teacher_uses_roster_grades_and_content(page, course_url, base, link, title, *,
                                           authorize=True):
    """Terry Teacher opens the tool by ``link`` (authorizing Canvas, unless done before),
    reads the roster,
    sends Sam Student a test grade that reaches the gradebook, and adds the tool to the
    course's modules by content selection (deep linking)."""
    frame = page.frame_locator("iframe#tool_content")
    act_as(page, base, "Terry Teacher (teacher)")
    page.goto(course_url)
    page.click(link)
    if authorize:
        frame.locator("button:has-text('Authorize')").click()
    frame.get_by_role("link", name="Roster and grades").click()
    frame.get_by_role("heading", name="Roster and grades").wait_for()
    names = frame.locator("#roster li").all_inner_texts()
    assert any(n.startswith("Terry Teacher") for n in names)
    assert any(n.startswith("Sam Student") for n in names)
    roster_pages = stats(base).get("nrps:page", 0)
    frame.locator("select[name=user_id]").select_option(label="Sam Student")
    frame.locator("input[name=score]").fill("8")
    frame.get_by_role("button", name="Send test grade").click()
    assert "Sam Student" in frame.get_by_role("status").inner_text()
    course_id = course_url.rsplit("/", 1)[1]
    page.goto(f"{base}/courses/{course_id}/gradebook")
    assert f"{title}: test grade" in page.locator("#gradebook thead").inner_text()
    assert "8.00" in page.locator("#gradebook tbody").inner_text()
    # Modules > link selection: the deep linking placement returns one item.
    page.goto(course_url)
    page.locator("a[href*='placement=link_selection']").first.click()
    frame.get_by_role("button", name=f"Add {title}").click()
    frame.get_by_role("status").filter(has_text="was added").wait_for()
    page.goto(course_url)
    assert title in page.locator("#modules").inner_text()
    return names, roster_pages


def test_over_lti13_a_teacher_sees_the_roster_sends_a_test_grade_and_adds_content(
        browser, tmp_path):
    with running_main_job(tmp_path, ROSTER_PAGE_SIZE="5") as (course_url, base):
        page = browser.new_context().new_page()
        names, pages = teacher_uses_roster_grades_and_content(page, course_url, base,
                                                              LTI13_LINK, "Template tool")
        # Every member of the seeded course, read through pages of five.
        assert len(names) >= 15 and pages == -(-len(names) // 5)
        page.context.close()


TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "src" / "ltikit" / "template" / "files"


def registration_link(dev_dir, tool_url):
    """What the template's README says to run: ``python manage.py registration-link``
    (with the settings the main command gave the tool)."""
    env = dict(os.environ, SECRET_KEY=(dev_dir / "secret-key").read_text(),
               TOKEN_ENCRYPTION_KEYS=(dev_dir / "token-key").read_text(),
               DATABASE_URL=f"sqlite:///{dev_dir / 'tool.sqlite3'}")
    made = subprocess.run([sys.executable, "manage.py", "registration-link", "--url", tool_url],
                          cwd=TEMPLATE_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert "Single use" in made.stderr
    return made.stdout.strip()


def test_an_administrator_installs_the_template_by_pasting_one_link(browser, tmp_path):
    """LTI Dynamic Registration in Chromium, Canvas's way: the administrator pastes the
    link into the platform, which frames the tool's page; one button registers the tool,
    whose page then closes the platform's dialog.  Then it is launched over LTI 1.3."""
    platform_port, tool_port = free_port(), free_port()
    tool_url = f"http://127.0.0.1:{tool_port}"
    with running_main_job(tmp_path, ports=(platform_port, tool_port)) as (course_url, base):
        page = browser.new_context().new_page()
        act_as(page, base, "Ada Admin (admin)")
        # Start from nothing: the tools the main command installed are removed.
        page.goto(base + "/tools")
        while page.locator("button:has-text('Remove')").count():
            page.locator("button:has-text('Remove')").first.click()
            page.locator(".flash").filter(has_text="Tool removed").wait_for()
        link = registration_link(tmp_path, tool_url)
        assert link.startswith(f"{tool_url}/lti13/register/")

        page.fill("input[name=registration_url]", link)
        page.click("button:has-text('Register tool')")
        frame = page.frame_locator("#registration-frame")
        heading = frame.locator("h1").inner_text()
        assert heading == "Register Template tool with Canvas (ltikit platform, localhost)?"
        shown = frame.locator("table").inner_text()
        assert "https://canvas.instructure.com" in shown
        assert f"{tool_url}/launch" in shown and f"{tool_url}/deep-link" in shown
        assert "course_navigation" in shown and "link_selection" in shown
        assert "contextmembership.readonly" in shown and "scope/score" in shown
        frame.get_by_role("button", name="Register").click()
        # The tool's page posted org.imsglobal.lti.close: the platform shows the new tool.
        page.wait_for_url(base + "/tools")
        assert "Registered Template tool (LTI 1.3, client id" in page.locator(".flash").inner_text()
        assert "Template tool" in page.locator("table").inner_text()

        # The same link again: refused, and nothing more is registered.
        page.fill("input[name=registration_url]", link)
        page.click("button:has-text('Register tool')")
        assert "already used" in frame.locator("body").inner_text()
        assert "(registration_link_used)" in frame.locator("body").inner_text()

        student = browser.new_context().new_page()
        act_as(student, base, "Sam Student (student)")
        student.goto(course_url)
        student.click('nav >> text="Template tool"')
        refused = student.frame_locator("iframe#tool_content").locator("h1").inner_text()
        assert "This tool is not available to you" in refused
        student.context.close()

        teacher_uses_roster_grades_and_content(page, course_url, base,
                                               'nav >> text="Template tool"', "Template tool")
        page.context.close()


# -- the same template launched by a platform without Canvas's extensions (as Moodle,
# Blackboard or D2L launch it): no Canvas API part, everything else the same ---------------

def test_from_a_platform_that_is_not_canvas_the_template_shows_the_launch(browser, tmp_path):
    with running_main_job(tmp_path, CANVAS_EXTENSIONS="false") as (course_url, base):
        page = browser.new_context().new_page()
        frame = page.frame_locator("iframe#tool_content")
        for link in ('nav >> text="Template tool"', LTI13_LINK):
            act_as(page, base, "Sam Student (student)")
            page.goto(course_url)
            page.click(link)
            frame.get_by_role("heading", name="This tool is not available to you").wait_for()
            assert "is for staff in this course" in frame.locator("#role-note").inner_text()

            act_as(page, base, "Terry Teacher (teacher)")
            page.goto(course_url)
            page.click(link)
            assert frame.locator("#greeting").inner_text() == "Hello, Terry Teacher"
            assert "Introduction to Biology" in frame.locator("#context").inner_text()
            assert frame.locator("#role").inner_text() == "Instructor"
            assert frame.locator("#canvas").count() == 0  # no Canvas authorization asked
        # Over 1.3 the platform offers the roster and grades.
        frame.get_by_role("link", name="Roster and grades").click()
        frame.get_by_role("heading", name="Roster and grades").wait_for()
        assert any(n.startswith("Sam Student") for n in
                   frame.locator("#roster li").all_inner_texts())
        assert stats(base).get("grant:authorization_code", 0) == 0
        page.context.close()


def test_cookies_blocked_on_a_platform_without_storage_the_tool_opens_in_a_new_window(
        browser, tmp_path):
    """As in Moodle: no storage frame, the tool's cookies blocked in the frame.  The login
    offers itself, not yet used, in a new window (never a replay of a used login), and
    there the teacher gets in."""
    with teacher_with_cookies_blocked(browser, tmp_path, CANVAS_EXTENSIONS="false",
                                      PLATFORM_STORAGE="false") as (context, page, frame, *_):
        page.click(LTI13_LINK)
        frame.get_by_role("heading", name="This tool needs a new window").wait_for()
        with context.expect_page() as opened:
            frame.get_by_role("link", name="Open the tool in a new window").click()
        window = opened.value
        assert window.locator("#greeting").inner_text() == "Hello, Terry Teacher"
        assert "Introduction to Biology" in window.locator("#context").inner_text()


def test_a_new_port_with_an_existing_dev_dir_launches_the_tool_there(browser, tmp_path):
    """PORT and PLATFORM_PORT changed between two runs on the same .dev/: the tool is
    installed again at its new address, over 1.1 (with the Canvas authorization) and 1.3."""
    platform_port = free_port()
    with running_main_job(tmp_path, ports=(platform_port, free_port())):
        pass
    for ports in ((platform_port, free_port()), (free_port(), free_port())):
        with running_main_job(tmp_path, ports=ports) as (course_url, base):
            assert base.endswith(f":{ports[0]}")
            page = browser.new_context().new_page()
            frame = page.frame_locator("iframe#tool_content")
            act_as(page, base, "Terry Teacher (teacher)")
            page.goto(course_url)
            page.click('nav >> text="Template tool"')
            frame.locator("button:has-text('Authorize')").click()
            assert frame.locator("#greeting").inner_text() == "Hello, Terry Teacher"
            assert page.frame(name="tool_content").url.startswith(
                f"http://127.0.0.1:{ports[1]}/")
            page.goto(course_url)
            page.click(LTI13_LINK)
            assert frame.locator("#greeting").inner_text() == "Hello, Terry Teacher"
            page.context.close()


def test_cookies_blocked_content_selection_is_handed_from_the_redirect_uri(browser, tmp_path):
    """Canvas with its storage frame, the tool's cookies blocked: the deep linking request
    goes to /launch (the one redirect URI), is checked through the platform's storage
    there, and is handed to /deep-link, whose answer adds the tool to the modules."""
    with teacher_with_cookies_blocked(browser, tmp_path) as (context, page, frame,
                                                              course_url, _):
        page.locator("a[href*='placement=link_selection']").first.click()
        add = frame.get_by_role("button", name="Add Template tool")
        add.wait_for()
        handed = page.frame(name="tool_content").url  # /deep-link, after the hand-off
        assert "/deep-link?" in handed and "ltikit_handoff=" in handed
        tool_origin = "/".join(handed.split("/", 3)[:3])
        add.click()
        frame.get_by_role("status").filter(has_text="was added").wait_for()
        assert context.cookies(tool_origin) == []  # no cookie of the tool was kept
        page.goto(course_url)
        assert "Template tool" in page.locator("#modules").inner_text()


# -- the same tool as a FastAPI app (ltikit new --framework fastapi), under uvicorn ---------

def test_a_fastapi_project_in_the_platform_over_lti11_and_lti13(browser, tmp_path):
    """The FastAPI template, run by the main command (uvicorn): over LTI 1.1 the student
    is refused and the teacher authorizes Canvas; over LTI 1.3 (installed by Dynamic
    Registration) the teacher reads the roster, sends a grade and adds content."""
    made = subprocess.run([sys.executable, "-m", "ltikit.cli", "new", "quick-quiz",
                           "--framework", "fastapi"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "quick-quiz"
    with running_main_job(tmp_path / "dev", TOOL_DIR=str(project)) as (course_url, base):
        page = browser.new_context().new_page()
        frame = page.frame_locator("iframe#tool_content")
        for link in ('nav >> text="Template tool"', LTI13_LINK):
            act_as(page, base, "Sam Student (student)")
            page.goto(course_url)
            page.click(link)
            assert "This tool is not available to you" in frame.locator("h1").inner_text()
        act_as(page, base, "Terry Teacher (teacher)")
        page.goto(course_url)
        page.click('nav >> text="Template tool"')
        assert "is requesting access to your account" in frame.locator("h1").inner_text()
        frame.locator("button:has-text('Authorize')").click()
        assert frame.locator("#greeting").inner_text() == "Hello, Terry Teacher"
        assert "Introduction to Biology" in frame.locator("#course").inner_text()
        # Over LTI 1.3 the same Canvas user's token serves: no second authorization.
        teacher_uses_roster_grades_and_content(page, course_url, base, LTI13_LINK,
                                               "Template tool", authorize=False)
        page.context.close()


def test_a_fastapi_project_with_third_party_cookies_blocked(browser, tmp_path):
    made = subprocess.run([sys.executable, "-m", "ltikit.cli", "new", "quick-quiz",
                           "--framework", "fastapi"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert made.returncode == 0, made.stderr
    with teacher_with_cookies_blocked(browser, tmp_path / "dev",
                                      TOOL_DIR=str(tmp_path / "quick-quiz")) as (
            context, page, frame, _course_url, _base):
        page.click(LTI13_LINK)
        frame.get_by_role("heading", name="is requesting access to your account").wait_for()
        frame.locator("button:has-text('Authorize')").click()
        assert frame.locator("#greeting").inner_text() == "Hello, Terry Teacher"
        tool_origin = "/".join(page.frame(name="tool_content").url.split("/", 3)[:3])
        assert context.cookies(tool_origin) == []  # no cookie of the tool was kept
