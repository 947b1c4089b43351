"""What a tool decides is the same on every adapter: the refusal matrix of LTI 1.1 and 1.3
launches, later requests and roles, run against the Flask adapter and against FastAPI
(ltikit.starlette), the same tool on each (tests/adapters.py).  (No "from __future__
import annotations": FastAPI reads the views' annotations.)"""

import hashlib
import threading
import time
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, update

from adapters import ADAPTERS, BASE, KEY, SECRET, Tool
from browser import serve
from ltikit.storage import tables
from ltikit.testing import Clock, launch_params, sign_launch
from ltikit.testing.lti13 import TestPlatform
from servers import free_port

LAUNCH = BASE + "/launch"


@pytest.fixture(params=ADAPTERS)
def adapter(request):
    return request.param


def signed(url=LAUNCH, *, key=KEY, secret=SECRET, **options):
    params = options.pop("params", None) or launch_params()
    return sign_launch(url, params, key=key, secret=secret, **options)


def test_a_launch_then_later_pages_of_it(adapter, tmp_path):
    tool = Tool(adapter, tmp_path)
    answer = tool.launch(signed())
    assert answer.status == 200 and "hello" in answer.text
    assert "Partitioned" in answer.header("set-cookie")
    assert tool.get("/page").text.startswith("page for ")


@pytest.mark.parametrize("change, status, reason", [
    ({"secret": "wrong"}, 401, "bad_signature"),
    ({"key": "unknown"}, 401, "unknown_consumer_key"),
    ({"signature_method": "PLAINTEXT"}, 401, "unsupported_signature_method"),
    ({"timestamp": int(time.time()) - 3600}, 401, "stale_timestamp"),
    ({"timestamp": int(time.time()) + 3600}, 401, "future_timestamp"),
    ({"params": launch_params(lti_message_type="ContentItemSelectionRequest")}, 400,
     "wrong_message_type"),
    ({"params": launch_params(lti_version="LTI-2p0")}, 400, "bad_lti_version"),
])
def test_a_launch_that_does_not_verify_is_refused(adapter, tmp_path, change, status, reason):
    tool = Tool(adapter, tmp_path)
    answer = tool.launch(signed(**change))
    assert answer.status == status and f"({reason})" in answer.text
    assert tool.get("/page").status == 401  # nothing was stored


def test_a_replayed_launch_is_refused(adapter, tmp_path):
    tool = Tool(adapter, tmp_path)
    launch = signed()
    assert tool.launch(launch).status == 200
    replay = tool.launch(launch)
    assert replay.status == 401 and "(replayed_nonce)" in replay.text


def test_a_later_page_without_a_launch_is_refused(adapter, tmp_path):
    tool = Tool(adapter, tmp_path)
    answer = tool.get("/page")
    assert answer.status == 401 and "(no_launch)" in answer.text
    forged = tool.get("/page", ltikit_launch="1-forged.token")
    assert forged.status == 401


def test_a_student_at_a_staff_page_is_refused_and_nothing_is_kept(adapter, tmp_path):
    tool = Tool(adapter, tmp_path)
    student = signed(BASE + "/staff", params=launch_params(roles="Learner"))
    answer = tool.post("/staff", data=student.body, headers=student.headers)
    assert answer.status == 403 and "(role)" in answer.text
    assert tool.get("/page").status == 401
    teacher = signed(BASE + "/staff")
    assert tool.post("/staff", data=teacher.body, headers=teacher.headers).status == 200


def test_launches_expire_and_end(adapter, tmp_path):
    clock = Clock()
    tool = Tool(adapter, tmp_path, clock=clock, LTIKIT_LAUNCH_LIFETIME=200)
    assert tool.launch(signed(timestamp=int(clock()))).status == 200
    assert tool.get("/page").status == 200
    clock.advance(201)
    assert tool.get("/page").status == 401
    assert tool.launch(signed(timestamp=int(clock()))).status == 200
    assert tool.post("/end").text == "ended"
    assert tool.get("/page").status == 401


def test_too_large_or_unreadable_requests_are_refused_before_parsing(adapter, tmp_path):
    tool = Tool(adapter, tmp_path, LTIKIT_MAX_REQUEST_BYTES=4096)
    big = signed(params=launch_params(custom_blob="x" * 8000))
    assert tool.launch(big).status == 413
    many = "&".join(f"f{i}=1" for i in range(1200))
    assert tool.post("/launch", data=many, headers={
        "Content-Type": "application/x-www-form-urlencoded"}).status == 413
    # Escapes that are not UTF-8 are read as Werkzeug reads them (kept escaped), not a 500.
    unreadable = tool.get("/page?name=%ff%fe")
    assert unreadable.status == 401 and "(no_launch)" in unreadable.text


def test_the_error_callback_gets_the_refusal_and_keeps_its_status(adapter, tmp_path):
    errors = []
    tool = Tool(adapter, tmp_path, errors=errors)
    answer = tool.launch(signed(secret="wrong"))
    assert answer.status == 401 and answer.text == "refused: bad_signature"
    assert [e.reason for e in errors] == ["bad_signature"]


# -- LTI 1.3 ----------------------------------------------------------------------------------

def lti13_tool(adapter, tmp_path, **config):
    tool = Tool(adapter, tmp_path, **config)
    platform = TestPlatform()
    platform.register(tool.kit.registrations)
    return tool, platform


def test_an_lti13_launch_then_later_pages_of_it(adapter, tmp_path):
    tool, platform = lti13_tool(adapter, tmp_path)
    answer = tool.launch13(platform, roles=["Instructor"], name="Ada Teacher")
    assert answer.status == 200 and answer.text == "hello Ada Teacher"
    assert tool.get("/page").status == 200


@pytest.mark.parametrize("claims, status, reason", [
    ({"exp": int(time.time()) - 3600}, 401, "expired_id_token"),
    ({"aud": "another-client"}, 401, None),
    ({"https://purl.imsglobal.org/spec/lti/claim/deployment_id": "unknown"}, 401,
     "unknown_deployment"),
    ({"message_type": "LtiDeepLinkingRequest"}, 400, "wrong_message_type"),
])
def test_an_lti13_launch_that_does_not_verify_is_refused(adapter, tmp_path, claims, status,
                                                           reason):
    tool, platform = lti13_tool(adapter, tmp_path)
    answer = tool.launch13(platform, **claims)
    assert answer.status == status, answer.text[-200:]
    if reason:
        assert f"({reason})" in answer.text
    assert tool.get("/page").status == 401


def test_a_deep_linking_page_takes_only_deep_linking_requests(adapter, tmp_path):
    tool, platform = lti13_tool(adapter, tmp_path)
    refused = tool.launch13(platform, path="/pick")
    assert refused.status == 400 and "(wrong_message_type)" in refused.text
    settings = {"deep_link_return_url": "https://platform.example.edu/return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe"]}
    taken = tool.launch13(platform, path="/pick", message_type="LtiDeepLinkingRequest", **{
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": settings})
    assert taken.status == 200 and taken.text.startswith("pick for ")


def test_the_login_refuses_an_unknown_platform_and_a_foreign_target(adapter, tmp_path):
    tool, platform = lti13_tool(adapter, tmp_path)
    unknown = tool.get("/lti13/login", iss="https://evil.example", login_hint="x",
                       target_link_uri=LAUNCH, client_id="x")
    assert unknown.status in (400, 401) and "(unknown_platform)" in unknown.text
    foreign = tool.get("/lti13/login", iss=platform.issuer, login_hint="x",
                       target_link_uri="https://evil.example/launch",
                       client_id=platform.client_id)
    assert foreign.status == 400 and "(foreign_target_link_uri)" in foreign.text


def test_the_tools_keys_are_published(adapter, tmp_path):
    from ltikit.crypto import SecretBox

    tool = Tool(adapter, tmp_path, LTIKIT_ENCRYPTION_KEYS=SecretBox.generate_key())
    kid = tool.kit.tool_keys.generate()
    answer = tool.get("/lti13/jwks")
    assert answer.status == 200 and kid in answer.text
    assert answer.header("Cache-Control") == "max-age=3600"


# -- the event loop stays free ------------------------------------------------------------------

@contextmanager
def uvicorn_serving(app):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def logged_in(session, tool_url, platform, **claims):
    """The OIDC login at the tool served on ``tool_url`` (its state cookie kept in
    ``session``), and the form the platform then posts to ``/launch``: an id_token with
    ``claims`` and the login's state."""
    target = f"{tool_url}/launch"
    login = session.get(f"{tool_url}/lti13/login", allow_redirects=False, timeout=10, params={
        "iss": platform.issuer, "login_hint": "h", "target_link_uri": target,
        "client_id": platform.client_id})
    auth = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["Location"]).query).items()}
    return {"id_token": platform.id_token(platform.claims(
        nonce=auth["nonce"], target_link_uri=target, **claims)), "state": auth["state"]}


def test_a_launch_waiting_for_a_slow_platform_holds_no_thread(tmp_path):
    """A launch whose platform takes two seconds to publish its keys awaits them on
    httpx's async client: the worker, left with a single thread for the core's work,
    meanwhile answers other requests at once, a page of another launch included."""
    import anyio.to_thread
    from fastapi import Depends, FastAPI
    from fastapi.responses import PlainTextResponse
    from flask import Flask, jsonify

    from ltikit.starlette import LTI, LTIKit
    from ltikit.testing.platform import browser_session

    platform = TestPlatform()
    keys = Flask("slow_platform")

    @keys.get("/jwks")
    def jwks():
        time.sleep(2)
        return jsonify({"keys": [platform.jwk]})

    app = FastAPI()
    kit = LTIKit(app, config={"LTIKIT_DATABASE_URL": f"sqlite:///{tmp_path}/tool.sqlite3",
                              "LTIKIT_CONSUMERS": {KEY: SECRET}}, secret_key="k" * 32)

    @app.middleware("http")
    async def one_thread(request, call_next):
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        return await call_next(request)

    @app.post("/launch", response_class=PlainTextResponse)
    async def launch(lti: Annotated[LTI, Depends(kit.launch(request="initial"))]):
        return f"hello {lti.user.name}"

    @app.get("/page", response_class=PlainTextResponse)
    async def page(lti: Annotated[LTI, Depends(kit.launch(request="session"))]):
        return f"page for {lti.user_id}"

    @app.get("/ping", response_class=PlainTextResponse)
    async def ping():
        return "pong"

    with serve(keys) as keys_url, uvicorn_serving(app) as tool_url:
        platform.register(kit.registrations, public_jwk=None, jwks_url=f"{keys_url}/jwks")
        # Another user's LTI 1.1 launch, already made.
        other = browser_session()
        first = sign_launch(f"{tool_url}/launch", launch_params(), key=KEY, secret=SECRET)
        assert other.post(first.url, data=first.body, headers=first.headers,
                          timeout=10).status_code == 200

        browser = browser_session()
        target = f"{tool_url}/launch"
        form = logged_in(browser, tool_url, platform, name="Slow Platform User")
        answers = {}

        def launch13():
            started = time.monotonic()
            answers["launch"] = browser.post(target, timeout=20, data=form)
            answers["launch_seconds"] = time.monotonic() - started

        launching = threading.Thread(target=launch13)
        launching.start()
        time.sleep(0.3)  # the launch is waiting for the platform's keys now
        timings = []
        for _ in range(5):
            started = time.monotonic()
            assert requests.get(f"{tool_url}/ping", timeout=5).text == "pong"
            assert other.get(f"{tool_url}/page", timeout=5).text.startswith("page for ")
            timings.append(time.monotonic() - started)
        launching.join(timeout=20)
    assert answers["launch"].status_code == 200
    assert answers["launch"].text == "hello Slow Platform User"
    assert answers["launch_seconds"] >= 1.5
    assert max(timings) < 0.5, timings


def test_both_adapters_read_urlencoded_text_alike():
    """Starlette's reading of query strings and forms is Werkzeug's (hypothesis)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from ltikit.flask.translate import _urlencoded as werkzeug_reading
    from ltikit.starlette.translate import _urlencoded as starlette_reading

    alphabet = st.sampled_from([*list("ab=&%+;é"), "%ff", "%C3%A9", "%e9", "%2", "%zz"])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(alphabet, max_size=30).map("".join))
    def agree(text):
        assert starlette_reading(text) == werkzeug_reading(text)

    agree()


def test_plain_starlette_routes_take_the_decorator(tmp_path):
    """Without FastAPI: ``@kit.lti(...)`` on ``async def view(request, lti)``, refusals
    answered by the route's own error callback, the launch cookie set on the view's
    response, and a later page of the launch found by it."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.testclient import TestClient

    from ltikit.starlette import LTIKit

    app = Starlette()
    kit = LTIKit(app, config={"LTIKIT_DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite3",
                              "LTIKIT_CONSUMERS": {KEY: SECRET}}, secret_key="k" * 32)

    async def launch(request, lti):
        return PlainTextResponse(f"hello {lti.user.name}")

    async def page(request, lti):
        return PlainTextResponse(f"page for {lti.user_id}, {lti.url_for('page', n=2)}")

    refused = []

    async def staff_error(exception):
        refused.append(exception["exception"].reason)
        return PlainTextResponse("staff only")

    async def staff(request, lti):
        return PlainTextResponse("staff page")

    app.add_route("/launch", kit.lti(request="initial")(launch), methods=["POST"])
    app.add_route("/page", kit.lti(request="session")(page), name="page")
    app.add_route("/staff", kit.lti(role="staff", error=staff_error)(staff),
                  methods=["POST"])
    client = TestClient(app, base_url=BASE, follow_redirects=False)
    signed_launch = signed()
    answer = client.post("/launch", content=signed_launch.body,
                         headers=signed_launch.headers)
    assert answer.status_code == 200 and answer.text.startswith("hello ")
    assert "Partitioned" in answer.headers["set-cookie"]
    later = client.get("/page")
    assert later.status_code == 200 and "/page?n=2&ltikit_launch=" in later.text
    student = signed(BASE + "/staff", params=launch_params(roles="Learner"))
    answer = client.post("/staff", content=student.body, headers=student.headers)
    assert (answer.status_code, answer.text, refused) == (403, "staff only", ["role"])
    assert TestClient(app, base_url=BASE).get("/page").status_code == 401


def test_the_canvas_api_as_the_user_from_fastapi(tmp_path):
    """FastAPI under uvicorn, the local platform as Canvas: the first page sends the
    teacher through Canvas's authorization; then canvasapi (in a worker thread) and the
    async httpx client both act as the user; a token Canvas no longer accepts is refreshed
    once and the call retried; eight pages at once with an expired token renew it once;
    a revoked grant means authorizing again."""
    from fastapi import Depends, FastAPI
    from fastapi.responses import PlainTextResponse, RedirectResponse

    from ltikit.crypto import SecretBox
    from ltikit.platform import DevPlatform
    from ltikit.starlette import LTI, LTIKit
    from ltikit.testing.platform import PlatformUser

    with DevPlatform(tmp_path / "platform.sqlite3") as platform:
        client_id, client_secret = platform.add_developer_key("tool", ["http://127.0.0.1/"])
        domain = platform.url.removeprefix("http://")
        app = FastAPI()
        kit = LTIKit(app, secret_key="k" * 32, config={
            "LTIKIT_DATABASE_URL": f"sqlite:///{tmp_path}/tool.sqlite3",
            "LTIKIT_CONSUMERS": {KEY: SECRET}, "LTIKIT_ENCRYPTION_KEYS":
            SecretBox.generate_key(), "LTIKIT_CANVAS_INSTANCES": {domain: {
                "client_id": str(client_id), "client_secret": client_secret,
                "base_url": platform.url}}})

        @app.post("/launch")
        async def launch(lti: Annotated[LTI, Depends(kit.launch(request="initial"))]):
            return RedirectResponse(lti.url_for("profile"), 303)

        @app.get("/profile", response_class=PlainTextResponse)
        async def profile(lti: Annotated[LTI, Depends(kit.launch(request="session"))]):
            name = await lti.in_canvas(lambda canvas: canvas.get_current_user().name)
            async with await lti.canvas_http() as canvas:
                answer = await canvas.get("/users/self/profile")
            return f"{name} / {answer.json()['name']}"

        @app.get("/token", response_class=PlainTextResponse)
        async def token(lti: Annotated[LTI, Depends(kit.launch(request="session"))]):
            _, access_token = await lti.canvas_token()
            return hashlib.sha256(access_token.encode()).hexdigest()

        @app.get("/profile-http", response_class=PlainTextResponse)
        async def profile_http(lti: Annotated[LTI, Depends(kit.launch(request="session"))]):
            async with await lti.canvas_http() as canvas:
                return (await canvas.get("/users/self/profile")).json()["name"]

        with uvicorn_serving(app) as tool_url:
            platform.add_lti11_tool("Tool", KEY, SECRET, url=f"{tool_url}/launch")
            teacher = PlatformUser(platform, "teacher")
            tool_id = platform.store.tools()[0]["id"]
            consent = teacher.launch(tool_id, platform.course_id("BIO101"))
            assert consent.url.startswith(platform.url + "/login/oauth2/confirm")
            page = teacher.authorize()
            assert page.text == "Terry Teacher / Terry Teacher", page.text[:300]

            platform.expire_all_access_tokens()  # Canvas refuses the token now
            again = teacher.session.get(page.url, timeout=30)
            assert again.text == "Terry Teacher / Terry Teacher"
            assert platform.count("grant:refresh_token") == 1  # canvasapi's 401, refreshed

            platform.expire_all_access_tokens()
            by_httpx = teacher.session.get(page.url.replace("/profile", "/profile-http"),
                                           timeout=30)
            assert by_httpx.text == "Terry Teacher"
            assert platform.count("grant:refresh_token") == 2  # httpx's 401, refreshed

            # The token expires: eight pages at once renew it once, the refresh awaited
            # on httpx and the seven others waiting for its result.
            with create_engine(f"sqlite:///{tmp_path}/tool.sqlite3").begin() as conn:
                conn.execute(update(tables.canvas_tokens).values(
                    expires_at=int(time.time()) - 1))
            token_url = page.url.replace("/profile", "/token")  # the launch id is in it
            tokens = []
            readers = [threading.Thread(target=lambda: tokens.append(
                requests.get(token_url, timeout=30).text)) for _ in range(8)]
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join(timeout=30)
            assert len(tokens) == 8 and len(set(tokens)) == 1, tokens
            assert platform.count("grant:refresh_token") == 3

            platform.revoke_all_tokens()  # the user removed the tool's access
            revoked = teacher.session.get(page.url, timeout=30)
            assert revoked.url.startswith(platform.url + "/login/oauth2/confirm")


def test_many_calls_to_a_slow_platform_leave_the_other_requests_served(tmp_path):
    """A class grading at once against a platform that takes a second per score: the
    grades are awaited on httpx's async client and hold no thread while they wait, so the
    eight of them end together after about a second, although the worker has one platform
    thread and four threads that serve requests; other users' pages are answered at
    once meanwhile."""
    import anyio.to_thread
    from fastapi import Depends, FastAPI
    from fastapi.responses import PlainTextResponse
    from flask import Flask, jsonify

    from ltikit.crypto import SecretBox
    from ltikit.starlette import LTI, LTIKit
    from ltikit.testing.platform import browser_session

    slow = Flask("slow_ags")

    @slow.post("/token")
    def token():
        return jsonify({"access_token": "t", "token_type": "Bearer", "expires_in": 3600})

    @slow.post("/lineitems/1/scores")
    def scores():
        time.sleep(1)
        return jsonify({})

    app = FastAPI()
    kit = LTIKit(app, secret_key="k" * 32, platform_threads=1, config={
        "LTIKIT_DATABASE_URL": f"sqlite:///{tmp_path}/tool.sqlite3",
        "LTIKIT_CONSUMERS": {KEY: SECRET}, "LTIKIT_ENCRYPTION_KEYS": SecretBox.generate_key(),
        "LTIKIT_LTI13_REDIRECT_URI": "/launch"})
    kit.tool_keys.generate()

    @app.middleware("http")
    async def few_request_threads(request, call_next):
        anyio.to_thread.current_default_thread_limiter().total_tokens = 4
        return await call_next(request)

    @app.post("/launch", response_class=PlainTextResponse)
    async def launch(lti: Annotated[LTI, Depends(kit.launch(request="initial"))]):
        return lti.launch_id

    @app.get("/page", response_class=PlainTextResponse)
    async def page(lti: Annotated[LTI, Depends(kit.launch(request="session"))]):
        return f"page for {lti.user_id}"

    @app.post("/grade", response_class=PlainTextResponse)
    async def grade(lti: Annotated[LTI, Depends(kit.launch(request="session"))]):
        return str(await lti.post_grade(0.5))

    platform = TestPlatform()
    with serve(slow) as slow_url, uvicorn_serving(app) as tool_url:
        platform.register(kit.registrations, token_url=f"{slow_url}/token",
                          service_origins=(slow_url,))
        session = browser_session()
        target = f"{tool_url}/launch"
        launch_ids = []
        for _ in range(8):
            form = logged_in(session, tool_url, platform, **{
                "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                    "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
                    "lineitem": f"{slow_url}/lineitems/1"}})
            answer = session.post(target, data=form, timeout=10)
            assert answer.status_code == 200, answer.text[-300:]
            launch_ids.append(answer.text)
        graded = []

        def grade_one(launch_id):
            graded.append(requests.post(f"{tool_url}/grade", timeout=30,
                                        data={"ltikit_launch": launch_id}).text)

        grading = [threading.Thread(target=grade_one, args=(i,)) for i in launch_ids]
        grading_started = time.monotonic()
        for thread in grading:
            thread.start()
        time.sleep(0.3)  # eight grades are waiting on the platform now
        timings = []
        for launch_id in launch_ids[:5]:
            started = time.monotonic()
            answer = requests.get(f"{tool_url}/page", params={"ltikit_launch": launch_id},
                                  timeout=10)
            assert answer.status_code == 200
            timings.append(time.monotonic() - started)
        for thread in grading:
            thread.join(timeout=30)
        grading_took = time.monotonic() - grading_started
    assert graded == ["True"] * 8
    assert max(timings) < 0.5, timings
    # One at a time in a thread (the sync core) would take eight seconds, four with the
    # four request threads.
    assert grading_took < 3, grading_took
