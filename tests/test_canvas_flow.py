"""The Canvas authorization decisions, without a web framework (ltikit.canvas.flow).

A tool's launch is stored, the user is sent to Canvas (the local platform answers as
Canvas does) and comes back to the callback; what the flow answers is what any adapter
(Flask today, Starlette next) sends.  The Flask path is driven end to end in
test_canvas_tokens.py."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from ltikit import _http
from ltikit.canvas import CanvasInstance, CanvasOAuthClient, CanvasTokens, OAuthStates
from ltikit.canvas.flow import CanvasFlow, Refused
from ltikit.crypto import SecretBox
from ltikit.http import Reply, Request
from ltikit.launches import LaunchManager
from ltikit.lti11.launch import VerifiedLaunch
from ltikit.platform import DevPlatform
from ltikit.storage import SQLStorage, upgrade
from ltikit.testing.platform import PlatformUser

TOOL = "https://tool.example.edu"
CALLBACK = TOOL + "/ltikit/canvas/callback"
COOKIE = "ltikit_launch"


@pytest.fixture
def canvas(tmp_path):
    with DevPlatform(tmp_path / "platform.sqlite3") as platform:
        yield platform


@pytest.fixture
def tool(tmp_path, canvas):
    """The tool's side: a launch manager and the Canvas flow, on one SQLite database."""
    storage = SQLStorage(f"sqlite:///{tmp_path}/tool.sqlite3")
    upgrade(storage.engine)
    box = SecretBox([SecretBox.generate_key()])
    client_id, secret = canvas.add_developer_key("tool", [CALLBACK])
    domain = urlsplit(canvas.url).netloc
    instance = CanvasInstance(domain, str(client_id), secret, base_url=canvas.url)
    launches = LaunchManager(storage, "tool-secret-key")
    session = _http.new_session()
    flow = CanvasFlow({domain: instance}, CanvasTokens(storage.engine, box),
                      OAuthStates(storage.engine, box), lambda: launches,
                      lambda i: CanvasOAuthClient(i, session=session),
                      launch_param="ltikit_launch", cookie_name=COOKIE)
    return flow, launches, instance


def launched(tool, canvas, login: str):
    """``login``'s stored launch, with the Canvas custom fields a public tool gets."""
    _, launches, instance = tool
    user = canvas.user(login)
    params = {"lti_message_type": "basic-lti-launch-request", "lti_version": "LTI-1p0",
              "resource_link_id": "r1", "user_id": f"lti-{user['id']}",
              "custom_canvas_user_id": str(user["id"]),
              "custom_canvas_api_domain": instance.domain}
    return launches.start(VerifiedLaunch("key", f"nonce-{login}-{time.time()}",
                                         int(time.time()), params))


def page(path: str = "/grades", **query: str) -> Request:
    return Request("GET", TOOL + path, path=path, query=tuple(query.items()))


def to_canvas(flow, active) -> str:
    """The authorization URL the flow sends the browser to."""
    reply = flow.authorize(page(tab="2"), active, None, CALLBACK)
    assert reply.status == 302 and reply.header("Cache-Control") == "no-store"
    return reply.header("Location")


def consent(canvas, login: str, authorize_url: str, *, accept: bool = True) -> dict:
    """``login`` signs in to Canvas and answers the consent page: Canvas's redirect back."""
    user = PlatformUser(canvas, login)
    user.session.get(authorize_url, timeout=30)
    # The browser would follow Canvas's redirect to the tool; the test reads it instead.
    answer = user.session.post(canvas.url + ("/login/oauth2/accept" if accept else
                                             "/login/oauth2/deny"),
                               data={"csrf_token": user.csrf}, allow_redirects=False,
                               timeout=30)
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def callback(flow, query: dict, cookie: str | None = None) -> Reply | Refused:
    return flow.callback(Request("GET", CALLBACK, path="/ltikit/canvas/callback",
                                 query=tuple(query.items()),
                                 cookies={COOKIE: cookie} if cookie else {}), CALLBACK)


def test_the_user_authorizes_and_comes_back_to_the_page_with_a_token(tool, canvas):
    flow, _, instance = tool
    active = launched(tool, canvas, "teacher")
    url = to_canvas(flow, active)
    query = parse_qs(urlsplit(url).query)
    assert query["redirect_uri"] == [CALLBACK] and query["code_challenge_method"] == ["S256"]
    answer = callback(flow, consent(canvas, "teacher", url), cookie=active.token)
    assert isinstance(answer, Reply) and answer.status == 302
    back = urlsplit(answer.header("Location"))
    assert back.path == "/grades" and parse_qs(back.query) == {
        "tab": ["2"], "ltikit_launch": [active.token]}
    user_id = str(canvas.user("teacher")["id"])
    assert flow.tokens.load(instance, user_id) is not None


def test_a_state_works_once(tool, canvas):
    flow, _, _ = tool
    active = launched(tool, canvas, "teacher")
    query = consent(canvas, "teacher", to_canvas(flow, active))
    assert isinstance(callback(flow, query), Reply)
    again = callback(flow, query)
    assert isinstance(again, Refused) and again.status == 400
    assert "no longer valid" in again.title
    made_up = callback(flow, {**query, "state": "x" * 43})
    assert isinstance(made_up, Refused) and made_up.status == 400


def test_a_browser_with_another_users_launch_is_refused(tool, canvas):
    flow, _, instance = tool
    ta = launched(tool, canvas, "ta")
    teacher = launched(tool, canvas, "teacher")
    # The TA's authorization link, completed in the teacher's browser (the teacher's
    # launch cookie): someone slipping their authorization into another session.
    query = consent(canvas, "ta", to_canvas(flow, ta))
    answer = callback(flow, query, cookie=teacher.token)
    assert isinstance(answer, Refused) and answer.status == 403
    assert "another session" in answer.title
    assert flow.tokens.load(instance, str(canvas.user("ta")["id"])) is None


def test_a_second_tab_of_the_same_user_is_fine(tool, canvas):
    flow, _, _ = tool
    first, second = launched(tool, canvas, "teacher"), launched(tool, canvas, "teacher")
    answer = callback(flow, consent(canvas, "teacher", to_canvas(flow, first)),
                      cookie=second.token)
    assert isinstance(answer, Reply) and answer.status == 302


def test_a_token_canvas_issued_to_someone_else_is_not_kept(tool, canvas):
    flow, _, instance = tool
    ta = launched(tool, canvas, "ta")
    # The teacher, signed in to Canvas, opens the TA's authorization link.
    answer = callback(flow, consent(canvas, "teacher", to_canvas(flow, ta)))
    assert isinstance(answer, Refused) and answer.status == 403
    assert "someone else" in answer.title and answer.retry is not None
    for login in ("ta", "teacher"):
        assert flow.tokens.load(instance, str(canvas.user(login)["id"])) is None


def test_a_denied_authorization_offers_to_try_again(tool, canvas):
    flow, _, _ = tool
    active = launched(tool, canvas, "teacher")
    answer = callback(flow, consent(canvas, "teacher", to_canvas(flow, active), accept=False))
    assert isinstance(answer, Refused) and answer.status == 403
    assert answer.retry and answer.retry.startswith("/grades?")


def test_an_ended_launch_cannot_be_authorized(tool, canvas):
    flow, launches, _ = tool
    active = launched(tool, canvas, "teacher")
    query = consent(canvas, "teacher", to_canvas(flow, active))
    launches.end(active)
    answer = callback(flow, query)
    assert isinstance(answer, Refused) and answer.status == 401


@pytest.mark.parametrize("return_to", ["//evil.example/x", "/\\evil.example", "https://evil.example/",
                                       "/ok\r\nSet-Cookie: x=1"])
def test_the_way_back_is_always_a_local_path(tool, canvas, return_to):
    flow, _, _ = tool
    active = launched(tool, canvas, "teacher")
    url = flow.authorize(Request("POST", TOOL + "/grade", path="/grade"), active, return_to,
                         CALLBACK).header("Location")
    answer = callback(flow, consent(canvas, "teacher", url))
    assert isinstance(answer, Reply)
    assert urlsplit(answer.header("Location")).path == "/grade"  # the POST's own path
