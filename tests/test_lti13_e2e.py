"""In Chromium: the local platform launches an ltikit tool over LTI 1.3, in its iframe.

Platform on http://localhost:P1, tool on http://127.0.0.1:P2 (two sites).  The OIDC login,
the auth redirect and the form_post of the id_token all happen inside the course iframe,
with the tool's state cookie in a cross-site context, as in Canvas.
"""

from __future__ import annotations

import pytest
from flask import Flask

from browser import serve
from ltikit.flask import LTIKit, lti
from ltikit.lti13 import Registrations
from ltikit.platform import DevPlatform

CANVAS_FIELDS = {"canvas_user_id": "$Canvas.user.id", "canvas_course_id": "$Canvas.course.id",
                 "canvas_api_domain": "$Canvas.api.domain"}


def tool_13(tmp_path) -> Flask:
    app = Flask("tool13", instance_path=str(tmp_path / "tool13"))
    app.config.update(SECRET_KEY="tool-secret")
    LTIKit(app)  # registers /lti13/login

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        return (f"<h1 id=greeting>Hello {lti.user.name}</h1><p id=version>{lti.version}</p>"
                f"<p id=course>{lti.context.title}</p>"
                f"<p id=canvas>{lti.canvas.user_id if lti.canvas else '-'}</p>"
                f"<p id=staff>{lti.is_role('staff')}</p>"
                "<a id=again href='/again'>Next page</a>")

    @app.route("/again")
    @lti(request="session")
    def again(lti):
        return f"<p id=again-page>Still {lti.user.name}</p>"

    return app


@pytest.fixture
def setup(tmp_path):
    app = tool_13(tmp_path)
    with DevPlatform(tmp_path / "platform.sqlite3") as platform, serve(app) as tool_url:
        _, client_id, deployment_id = platform.add_lti13_tool(
            "Tool 1.3", oidc_initiation_url=f"{tool_url}/lti13/login",
            target_link_uri=f"{tool_url}/launch", custom_fields=CANVAS_FIELDS)
        Registrations(app.extensions["ltikit"].storage.engine).add(
            **platform.lti13_registration(client_id), deployments=(deployment_id,))
        yield platform


def open_tool_as(page, platform, login):
    page.goto(platform.url + "/")
    page.select_option("#user-switch", str(platform.user(login)["id"]))
    page.click("text=Switch")
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
