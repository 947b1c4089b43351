"""In a real browser: the local platform launches an ltikit tool in its iframe, and back.

The platform runs on ``http://localhost:P1`` and the tool on ``http://127.0.0.1:P2``: two
sites, so the tool lives in a cross-site iframe with third-party cookies, as in Canvas.
"""

from __future__ import annotations

import pytest
from flask import Flask, request

from browser import become, serve
from ltikit.flask import LTIKit, lti
from ltikit.platform import DevPlatform

KEY, SECRET = "e2e-key", "e2e-secret-shared-with-the-platform"


def small_tool(tmp_path) -> Flask:
    """A tool as a user of ltikit writes one: a launch page that can send a grade."""
    app = Flask("e2e_tool", instance_path=str(tmp_path / "tool"))
    app.config.update(SECRET_KEY="tool-secret", LTIKIT_CONSUMERS={KEY: SECRET})
    LTIKit(app)

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        grade_form = (f"<form method=post action='/grade'>{lti.hidden_field()}"
                      "<input name=score value=0.85><button>Send grade</button></form>"
                      if lti.launch.outcome else "<p>No grade for this launch.</p>")
        return (f"<h1 id=greeting>Hello {lti.user.name}</h1>"
                f"<p id=course>{lti.context.title}</p><p id=roles>{lti.role}</p>"
                f"{grade_form}<p><a id=again href='/again'>Next page</a></p>")

    @app.route("/grade", methods=["POST"])
    @lti(request="session")
    def grade(lti):
        lti.post_grade(float(request.form["score"]))
        return (f"<p id=sent>Grade {request.form['score']} sent for {lti.user.name}</p>"
                "<p><a id=again href='/again'>Next page</a></p>")

    @app.route("/again")
    @lti(request="session")
    def again(lti):  # reached by the cookie alone
        return f"<p id=again-page>Still {lti.user.name}</p>"

    return app


@pytest.fixture
def setup(tmp_path):
    with DevPlatform(tmp_path / "platform.sqlite3") as platform, \
            serve(small_tool(tmp_path)) as tool_url:
        tool_id = platform.add_lti11_tool("Quiz tool", KEY, SECRET, url=f"{tool_url}/launch")
        course_id = platform.course_id("BIO101")
        assignment_id = platform.add_assignment(course_id, tool_id, "Quiz 1", 10)
        yield platform, tool_url, course_id, assignment_id


def switch_user(page, platform, login):
    user = platform.user(login)
    become(page, platform.url, user["id"], user["name"])


def test_a_student_launches_the_tool_in_the_iframe_and_the_grade_reaches_the_gradebook(
        browser, setup):
    platform, tool_url, course_id, assignment_id = setup
    assert platform.url.startswith("http://localhost:") and tool_url.startswith("http://127.")
    context = browser.new_context()
    page = context.new_page()

    switch_user(page, platform, "student")
    page.click("text=Introduction to Biology")
    page.click("text=Quiz 1")
    frame = page.frame_locator("iframe#tool_content")
    assert frame.locator("#greeting").inner_text() == "Hello Sam Student"
    assert frame.locator("#course").inner_text() == "Introduction to Biology"
    assert frame.locator("#roles").inner_text() == "Learner"

    frame.locator("input[name=score]").fill("0.85")
    frame.locator("text=Send grade").click()
    assert frame.locator("#sent").inner_text() == "Grade 0.85 sent for Sam Student"

    # The launch cookie (SameSite=None; Secure; Partitioned) is kept in the cross-site
    # iframe even on plain http://127.0.0.1: the next page needs nothing else.
    frame.locator("#again").click()
    assert frame.locator("#again-page").inner_text() == "Still Sam Student"

    switch_user(page, platform, "teacher")
    page.goto(f"{platform.url}/courses/{course_id}/gradebook")
    sam = platform.user("student")
    cell = page.locator(f"tr[data-user-id='{sam['id']}'] td[data-assignment-id='{assignment_id}']")
    assert cell.inner_text().strip() == "8.50"
    context.close()


def test_the_inspector_shows_the_exact_parameters_of_the_launch(browser, setup):
    platform, _, course_id, _ = setup
    context = browser.new_context()
    page = context.new_page()
    switch_user(page, platform, "teacher")
    page.goto(f"{platform.url}/courses/{course_id}")
    page.click("text=Quiz tool")  # the course navigation placement
    frame = page.frame_locator("iframe#tool_content")
    assert frame.locator("#greeting").inner_text() == "Hello Terry Teacher"
    assert frame.locator("text=No grade for this launch.").is_visible()
    page.click("text=Launch inspector")
    launch = page.locator(".launch").first
    assert "POST " + setup[1] + "/launch" in launch.inner_text()
    row = launch.locator("tr", has_text="custom_canvas_course_id")
    assert str(course_id) in row.inner_text()
    assert "oauth_signature" in launch.inner_text()
    context.close()

