"""Deep linking, grades and the roster in Chromium, through the local platform.

A teacher adds a quiz with the tool's assignment-selection placement (an
``LtiDeepLinkingRequest``; the tool answers with a graded ``ltiResourceLink``); a student
opens the new assignment, the tool posts the score through AGS, and the teacher finds it in
the gradebook.  Platform on http://localhost, tool on http://127.0.0.1: two sites.
"""

from __future__ import annotations

import pytest
from flask import Flask, request

from browser import become, serve
from ltikit.crypto import SecretBox
from ltikit.flask import LTIKit, lti
from ltikit.lti13.deep_linking import LineItemSpec, LtiResourceLink
from ltikit.platform import DevPlatform

AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


def quiz_tool(tmp_path, base: list[str], *, item_path: str = "/launch",
              **config) -> Flask:
    """The quiz tool; its deep-linked quizzes launch at ``item_path`` (``/quiz/<n>``: a
    page of their own, as tools made for Moodle often do)."""
    app = Flask("quiz", instance_path=str(tmp_path / "quiz"))
    app.config.update(SECRET_KEY="quiz-secret", LTIKIT_ENCRYPTION_KEYS=SecretBox.generate_key(),
                      **config)
    app.kit = LTIKit(app)

    @app.route("/pick", methods=["GET", "POST"])  # GET: a launch handed off to it
    @lti(request="initial", role="staff", message_types=("LtiDeepLinkingRequest",))
    def pick(lti):
        return ("<h1>Pick a quiz</h1>"
                f"<form method=post action='/picked'>{lti.hidden_field()}"
                "<button name=quiz value=7>Add Quiz 7</button></form>")

    @app.route("/picked", methods=["POST"])
    @lti(request="session", role="staff")
    def picked(lti):
        quiz = request.form["quiz"]
        return lti.deep_link_response([LtiResourceLink(
            url=base[0] + item_path.replace("<n>", quiz), title=f"Quiz {quiz}",
            custom={"quiz": quiz},
            line_item=LineItemSpec(score_maximum=10, label=f"Quiz {quiz}",
                                   resource_id=f"quiz-{quiz}"))],
            message=f"Quiz {quiz} added")

    @app.route("/launch", methods=["POST"])
    @app.route("/quiz/<int:number>", methods=["GET", "POST"])
    @lti(request="initial")
    def launch(lti, number=None):
        return (f"<h1 id=quiz>Quiz {lti.launch.custom.get('quiz')}</h1>"
                f"<form method=post action='/submit'>{lti.hidden_field()}"
                "<button>Submit my answers</button></form>")

    @app.route("/submit", methods=["POST"])
    @lti(request="session")
    def submit(lti):
        lti.post_grade(0.7, result_text="7 of 10")
        return "<p id=sent>Your score was sent</p>"

    return app


def installed(platform, app, tool_url, *, redirect_uris, scopes):
    """The quiz tool installed on ``platform`` with its content selection placement, and
    the platform registered with the tool."""
    app.kit.tool_keys.generate()
    _, client_id, deployment_id = platform.add_lti13_tool(
        "Quiz tool", oidc_initiation_url=f"{tool_url}/lti13/login",
        target_link_uri=f"{tool_url}/launch", redirect_uris=redirect_uris, scopes=scopes,
        public_jwk_url=f"{tool_url}/lti13/jwks",
        placements={"assignment_selection": {
            "enabled": "true", "text": "Add a quiz", "url": f"{tool_url}/pick",
            "message_type": "LtiDeepLinkingRequest"}})
    app.kit.registrations.add(**platform.lti13_registration(client_id),
                              deployments=(deployment_id,))
    return platform


@pytest.fixture
def setup(tmp_path):
    base: list[str] = []
    app = quiz_tool(tmp_path, base)
    with DevPlatform(tmp_path / "p.sqlite3") as platform, serve(app) as tool_url:
        base.append(tool_url)
        yield installed(platform, app, tool_url,
                        redirect_uris=[f"{tool_url}/launch", f"{tool_url}/pick"],
                        scopes=[AGS + "lineitem", AGS + "score", NRPS])


def act_as(page, platform, login):
    user = platform.user(login)
    become(page, platform.url, user["id"], user["name"])


def test_a_deep_linked_quiz_is_graded_into_the_gradebook(browser, setup):
    platform = setup
    page = browser.new_context().new_page()
    frame = page.frame_locator("iframe#tool_content")

    act_as(page, platform, "teacher")
    page.click("text=Introduction to Biology")
    page.click("text=Add a quiz")
    frame.get_by_role("button", name="Add Quiz 7").click()
    frame.get_by_role("status").filter(has_text="Quiz 7 added").wait_for()
    assert frame.locator("#deep-linked").inner_text().startswith("Quiz 7")

    act_as(page, platform, "student")
    page.click("text=Introduction to Biology")
    page.get_by_role("link", name="Quiz 7").click()
    assert frame.locator("#quiz").inner_text() == "Quiz 7"
    frame.get_by_role("button", name="Submit my answers").click()
    assert frame.locator("#sent").inner_text() == "Your score was sent"

    act_as(page, platform, "teacher")
    page.click("text=Introduction to Biology")
    page.click("nav >> text=Grades")
    student = platform.user("student")["id"]
    cell = page.locator(f"#gradebook tr[data-user-id='{student}'] td[data-assignment-id]")
    assert "7.00" in cell.inner_text() and "7 of 10" in cell.inner_text()
    page.context.close()


def test_one_redirect_uri_deep_linked_quizzes_at_their_own_paths_on_a_plain_platform(
        browser, tmp_path):
    """A platform without Canvas's extensions that, like Moodle, posts the id_token only to
    the one redirect URI registered for the tool (/launch): the content selection (/pick)
    and a quiz at its own page (/quiz/7) are verified at /launch and handed to their page."""
    base: list[str] = []
    app = quiz_tool(tmp_path, base, item_path="/quiz/<n>", LTIKIT_LTI13_REDIRECT_URI="/launch")
    with DevPlatform(tmp_path / "p.sqlite3", CANVAS_EXTENSIONS=False) as platform, \
            serve(app) as tool_url:
        base.append(tool_url)
        installed(platform, app, tool_url, redirect_uris=[f"{tool_url}/launch"],
                  scopes=[AGS + "lineitem", AGS + "score"])
        page = browser.new_context().new_page()
        frame = page.frame_locator("iframe#tool_content")
        act_as(page, platform, "teacher")
        page.click("text=Introduction to Biology")
        page.click("text=Add a quiz")
        frame.get_by_role("button", name="Add Quiz 7").click()
        frame.get_by_role("status").filter(has_text="Quiz 7 added").wait_for()

        act_as(page, platform, "student")
        page.click("text=Introduction to Biology")
        page.get_by_role("link", name="Quiz 7").click()
        assert frame.locator("#quiz").inner_text() == "Quiz 7"
        assert "/quiz/7?" in page.frame(name="tool_content").url
        frame.get_by_role("button", name="Submit my answers").click()
        assert frame.locator("#sent").inner_text() == "Your score was sent"
        page.context.close()
