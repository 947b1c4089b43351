"""Canvas tokens: encrypted at rest, refreshed once across processes, states single-use.

The tool is the project template (src/ltikit/template/files); Canvas is the local
platform, whose counters say how often it was asked for what.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, select, update

from ltikit.canvas import CanvasInstance, CanvasOAuthClient, CanvasOAuthError, CanvasTokens
from ltikit.crypto import DecryptionError, SecretBox
from ltikit.platform import DevPlatform
from ltikit.storage import tables
from ltikit.testing.platform import PlatformUser

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent / "src" / "ltikit" / "template" / "files"
KEY, SECRET = "tool-key", "tool-secret-shared-with-canvas"


def tool_env(platform, tmp_path, client_id, client_secret, **extra):
    return {
        "BASE_URL": platform.url + "/", "LTI_CONSUMER_KEY": KEY, "LTI_SHARED_SECRET": SECRET,
        "SECRET_KEY": "tool-secret-key", "OAUTH2_ID": str(client_id),
        "OAUTH2_KEY": client_secret, "TOKEN_ENCRYPTION_KEYS": extra.pop("keys", KEYS[0]),
        "DATABASE_URL": f"sqlite:///{tmp_path}/tool.sqlite3", **extra,
    }


KEYS = [SecretBox.generate_key(), SecretBox.generate_key()]


@pytest.fixture
def platform(tmp_path):
    with DevPlatform(tmp_path / "platform.sqlite3", TOKEN_LIFETIME=2) as platform:
        yield platform


@pytest.fixture
def workers(tmp_path, platform):
    """Start n template-tool processes sharing one database: [(base URL, env)]."""
    procs = []

    def start(n, **extra):
        client_id, client_secret = platform.add_developer_key("tool", ["http://127.0.0.1/"])
        env = tool_env(platform, tmp_path, client_id, client_secret, AUTO_UPGRADE="false",
                       **extra)
        sys.path.insert(0, str(TEMPLATE))
        from manage import upgrade

        upgrade(env["DATABASE_URL"], quiet=True)  # once, before the workers start
        urls = []
        for _ in range(n):
            proc = subprocess.Popen([sys.executable, str(HERE / "serve_template.py")],
                                    env={**os.environ, **env}, stdout=subprocess.PIPE,
                                    text=True)
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{int(proc.stdout.readline())}")
        tool_id = platform.add_lti11_tool_from_xml(KEY, SECRET,
                                                   config_url=urls[0] + "/lti/config.xml")
        return urls, env, tool_id

    start.procs = procs  # to kill one, as a crash or a worker timeout would
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)


def the_access_token_expires(platform, env):
    """As if the access token's two seconds went by, without waiting for them: Canvas no
    longer accepts it, and the tool's row says it has expired."""
    platform.expire_all_access_tokens()
    with create_engine(env["DATABASE_URL"]).begin() as conn:
        conn.execute(update(tables.canvas_tokens).values(expires_at=int(time.time()) - 1))


def authorized_teacher(platform, tool_id, login="teacher"):
    """A user who launched and authorized: (their platform session, the tool page, launch id)."""
    user = PlatformUser(platform, login)
    consent = user.launch(tool_id, platform.course_id("BIO101"))
    assert consent.url.startswith(platform.url + "/login/oauth2/confirm"), consent.text
    page = user.authorize()
    assert page.status_code == 200, page.text
    launch_id = parse_qs(urlsplit(page.url).query)["ltikit_launch"][0]
    return user, page, launch_id


def test_twenty_requests_with_an_expired_token_in_two_processes_refresh_once(
        platform, workers):
    urls, env, tool_id = workers(2, TOKEN_REFRESH_MARGIN="0")
    _, page, launch_id = authorized_teacher(platform, tool_id)
    assert "Hello, Terry Teacher" in page.text
    the_access_token_expires(platform, env)
    assert platform.count("grant:refresh_token") == 0

    def visit(i):
        return requests.get(f"{urls[i % 2]}/", params={"ltikit_launch": launch_id}, timeout=60)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(visit, range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert all("Hello, Terry Teacher" in r.text for r in responses)
    assert platform.count("grant:refresh_token") == 1


def test_the_database_holds_no_plaintext_token(platform, workers, tmp_path):
    _, env, tool_id = workers(1)
    authorized_teacher(platform, tool_id)
    engine = create_engine(env["DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(select(tables.canvas_tokens)).mappings().all()
    assert len(rows) == 1
    box = SecretBox(env["TOKEN_ENCRYPTION_KEYS"])
    access, refresh = box.decrypt(rows[0]["access_token"]), box.decrypt(rows[0]["refresh_token"])
    assert access.startswith("1~") and refresh.startswith("1~")
    # Neither token appears anywhere in the database files, in any row or page.
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("tool.sqlite3*"))
    assert access.encode() not in raw and refresh.encode() not in raw
    assert platform.token_seen(access)  # and it is the token Canvas issued


def test_a_revoked_grant_sends_the_user_through_authorization_again(platform, workers):
    urls, env, tool_id = workers(1, TOKEN_REFRESH_MARGIN="0")
    user, _, launch_id = authorized_teacher(platform, tool_id)
    platform.revoke_all_tokens()  # e.g. the user removed the integration in Canvas
    the_access_token_expires(platform, env)
    again = user.session.get(f"{urls[0]}/", params={"ltikit_launch": launch_id}, timeout=30)
    assert again.status_code == 200
    assert again.url.startswith(platform.url + "/login/oauth2/confirm")  # no 500


def test_a_401_from_canvas_triggers_one_refresh_and_a_retry(platform, workers):
    urls, _, tool_id = workers(1, TOKEN_REFRESH_MARGIN="0")  # no refresh before the call
    user, _, launch_id = authorized_teacher(platform, tool_id)
    platform.expire_all_access_tokens()  # Canvas no longer accepts the access token
    page = user.session.get(f"{urls[0]}/", params={"ltikit_launch": launch_id}, timeout=30)
    assert page.status_code == 200 and "Hello, Terry Teacher" in page.text
    assert platform.count("grant:refresh_token") == 1


def test_states_are_single_use_and_tokens_must_belong_to_the_launching_user(
        platform, workers):
    _, _, tool_id = workers(1)
    teacher = PlatformUser(platform, "teacher")
    teacher.launch(tool_id, platform.course_id("BIO101"))
    callback = teacher.authorize(remember=False).history[0].headers["Location"]
    assert "/ltikit/canvas/callback?code=" in callback
    replay = requests.get(callback, timeout=30)
    assert replay.status_code == 400 and "no longer valid" in replay.text

    # The TA's launch, but someone else (the teacher) at the consent page.
    ta = PlatformUser(platform, "ta")

    def teacher_opens_the_tas_authorization_link():
        consent = ta.launch(tool_id, platform.course_id("BIO101"))
        authorize_url = consent.history[-1].url
        assert "/login/oauth2/auth?" in authorize_url
        teacher.session.get(authorize_url, timeout=30)
        return teacher.authorize()

    # The teacher's browser carries their own launch of the tool: refused outright.
    answer = teacher_opens_the_tas_authorization_link()
    assert answer.status_code == 403 and "belongs to another session" in answer.text
    # Without it, the token Canvas issues is the teacher's, not the TA's: refused too.
    teacher.session.cookies.clear(domain="127.0.0.1")
    answer = teacher_opens_the_tas_authorization_link()
    assert answer.status_code == 403 and "as someone else" in answer.text
    assert platform.count("grant:authorization_code") == 2  # the teacher's and this one

    denied_user = PlatformUser(platform, "admin")
    denied_user.launch(tool_id, platform.course_id("BIO101"))
    denied = denied_user.deny()
    assert denied.status_code == 403 and "Try again" in denied.text


def test_keys_rotate_without_losing_tokens(platform, workers, tmp_path):
    _, env, tool_id = workers(1)
    authorized_teacher(platform, tool_id)
    engine = create_engine(env["DATABASE_URL"])
    instance = CanvasInstance(urlsplit(platform.url).netloc, "x", "y")
    teacher_id = str(platform.user("teacher")["id"])
    both = CanvasTokens(engine, SecretBox([KEYS[1], KEYS[0]]))  # new key first
    token = both.load(instance, teacher_id)
    assert token is not None
    assert both.rotate_keys() == 1
    only_new = CanvasTokens(engine, SecretBox([KEYS[1]]))
    assert only_new.load(instance, teacher_id).access_token == token.access_token
    with pytest.raises(DecryptionError):
        SecretBox([KEYS[0]]).decrypt(
            engine.connect().execute(select(tables.canvas_tokens.c.access_token)).scalar())


def test_token_errors_redirected_by_canvas_are_read_as_errors(platform):
    client_id, secret = platform.add_developer_key("k", ["https://tool.example.edu/cb"])
    instance = CanvasInstance(urlsplit(platform.url).netloc, str(client_id), secret)
    with pytest.raises(CanvasOAuthError) as caught:
        CanvasOAuthClient(instance).exchange_code("bad", "https://tool.example.edu/cb")
    assert caught.value.error == "invalid_grant" and caught.value.http_status == 302
    with pytest.raises(CanvasOAuthError) as refused:
        CanvasOAuthClient(instance).refresh("1~unknown")
    assert refused.value.error == "invalid_request"  # Canvas's answer, not invalid_grant


def test_tokens_never_reach_logs_cookies_or_pages(platform, tmp_path, caplog):
    import logging

    from browser import serve

    sys.path.insert(0, str(TEMPLATE))
    from app import create_app
    from settings import flask_config

    caplog.set_level(logging.DEBUG)
    client_id, client_secret = platform.add_developer_key("tool", ["http://127.0.0.1/"])
    app = create_app(flask_config(tool_env(platform, tmp_path, client_id, client_secret)))
    with serve(app) as tool_url:
        tool_id = platform.add_lti11_tool_from_xml(KEY, SECRET,
                                                   config_url=tool_url + "/lti/config.xml")
        user, page, _ = authorized_teacher(platform, tool_id)
        box = SecretBox(KEYS[0])
        with create_engine(f"sqlite:///{tmp_path}/tool.sqlite3").connect() as conn:
            row = conn.execute(select(tables.canvas_tokens)).mappings().one()
        secrets_ = [box.decrypt(row["access_token"]), box.decrypt(row["refresh_token"]),
                    client_secret]
        seen = caplog.text + page.text + " ".join(
            f"{c.name}={c.value}" for c in user.session.cookies)
        seen += "".join(str(r.headers) for r in [*page.history, page])
        for secret in secrets_:
            assert secret not in seen


def test_a_rotated_refresh_token_is_stored_and_used_next_time(tmp_path):
    with DevPlatform(tmp_path / "p.sqlite3", TOKEN_LIFETIME=1,
                     ROTATE_REFRESH_TOKENS=True) as platform:
        client_id, secret = platform.add_developer_key("k", ["https://tool.example.edu/cb"])
        instance = CanvasInstance(urlsplit(platform.url).netloc, str(client_id), secret)
        oauth = CanvasOAuthClient(instance)
        user = PlatformUser(platform, "teacher")
        first = user.session.get(oauth.authorize_url("https://tool.example.edu/cb", "s"),
                                 timeout=30, allow_redirects=True)
        assert "/login/oauth2/confirm" in first.url
        accepted = user.session.post(platform.url + "/login/oauth2/accept", timeout=30,
                                     data={"csrf_token": user.csrf}, allow_redirects=False)
        code = parse_qs(urlsplit(accepted.headers["Location"]).query)["code"][0]
        now = [time.time()]
        tokens = CanvasTokens(create_engine(f"sqlite:///{tmp_path}/t.sqlite3"),
                              SecretBox(KEYS[0]), refresh_margin=0, clock=lambda: now[0])
        from ltikit.storage import upgrade

        upgrade(tokens.engine)
        grant = oauth.exchange_code(code, "https://tool.example.edu/cb")
        teacher = str(platform.user("teacher")["id"])
        tokens.save(instance, teacher, grant)
        for _ in range(3):  # each refresh rotates; the stored one must always be the latest
            now[0] += 1.1  # the tool's clock: its 1 s token has expired
            access, _ = tokens.access_token(instance, teacher, oauth)
            assert platform.token_seen(access)
        assert platform.count("grant:refresh_token") == 3
        assert tokens.load(instance, teacher).refresh_token != grant.refresh_token


# -- Canvas misbehaving: faults injected in the local platform's token endpoint and API ----

def visit(url, launch_id, session=None, timeout=60):
    """The template's start page (it calls the Canvas API): (response, seconds taken)."""
    started = time.monotonic()
    response = (session or requests).get(f"{url}/", params={"ltikit_launch": launch_id},
                                         timeout=timeout, allow_redirects=False)
    return response, time.monotonic() - started


def token_rows(env):
    with create_engine(env["DATABASE_URL"]).connect() as conn:
        return conn.execute(select(tables.canvas_tokens)).mappings().all()


def the_back_off_ends(env):
    """As if the wait the tool set after Canvas's refusal (``retry_at``) went by."""
    assert token_rows(env)[0]["retry_at"], "the tool set no back-off"
    with create_engine(env["DATABASE_URL"]).begin() as conn:
        conn.execute(update(tables.canvas_tokens).values(retry_at=int(time.time()) - 1))


def test_a_429_from_the_token_endpoint_keeps_the_grant_and_is_waited_out(platform, workers):
    """One 429 used to delete the token row: every later request went to authorization."""
    urls, env, tool_id = workers(1, TOKEN_REFRESH_MARGIN="0")
    user, _, launch_id = authorized_teacher(platform, tool_id)
    the_access_token_expires(platform, env)
    platform.inject_fault("token", status=429, retry_after=3)
    answers = [visit(urls[0], launch_id, user.session)[0] for _ in range(5)]
    assert [a.status_code for a in answers] == [503] * 5  # not a trip to authorization
    assert all(a.headers["Retry-After"] in ("2", "3") for a in answers)
    assert "Canvas" in answers[0].text
    assert platform.fault_hits("token") == 1  # Retry-After honoured: asked once
    assert len(token_rows(env)) == 1  # the grant is kept
    platform.clear_faults()
    the_back_off_ends(env)
    page, _ = visit(urls[0], launch_id, user.session)
    assert page.status_code == 200 and "Hello, Terry Teacher" in page.text
    assert platform.count("grant:refresh_token") == 1
    with create_engine(env["DATABASE_URL"]).connect() as conn:
        assert conn.execute(select(tables.oauth_states)).first() is None


def test_a_token_endpoint_down_for_a_while_is_asked_a_handful_of_times(platform, workers):
    """500s for 6 s: one user's requests, one every 0.1 s, used to refresh on each."""
    urls, env, tool_id = workers(1, TOKEN_REFRESH_MARGIN="0")
    user, _, launch_id = authorized_teacher(platform, tool_id)
    the_access_token_expires(platform, env)
    platform.inject_fault("token", status=500)
    statuses, until = [], time.monotonic() + 6
    while time.monotonic() < until:
        statuses.append(visit(urls[0], launch_id, user.session)[0].status_code)
        time.sleep(0.1)
    assert set(statuses) == {503} and len(statuses) > 20
    assert platform.fault_hits("token") <= 4  # back-off: 2, 4 s between attempts
    assert len(token_rows(env)) == 1 and token_rows(env)[0]["refresh_token"]
    platform.clear_faults()
    the_back_off_ends(env)
    page, _ = visit(urls[0], launch_id, user.session)
    assert page.status_code == 200 and platform.count("grant:refresh_token") == 1


def test_a_stuck_refresh_holds_neither_the_workers_nor_other_users(platform, workers):
    """Two one-request-at-a-time workers (gunicorn's sync workers); the token endpoint
    hangs.  The teacher's six requests each end within seconds with a 503/504 (never a
    trip to authorization), and a student's launch meanwhile is not held behind them."""
    urls, env, tool_id = workers(2, TOKEN_REFRESH_MARGIN="0", SERVE_THREADED="0",
                                 CANVAS_TOKEN_TIMEOUT="1 2")
    user, _, launch_id = authorized_teacher(platform, tool_id)
    the_access_token_expires(platform, env)
    platform.inject_fault("token", hang=True)
    with ThreadPoolExecutor(max_workers=8) as pool:
        teacher = [pool.submit(visit, urls[i % 2], launch_id) for i in range(6)]
        time.sleep(0.3)
        started = time.monotonic()
        student = PlatformUser(platform, "student").launch(tool_id, platform.course_id("BIO101"))
        student_seconds = time.monotonic() - started
        answers = [future.result() for future in teacher]
    assert student.status_code == 403 and student_seconds < 5, student_seconds
    assert {a.status_code for a, _ in answers} <= {503, 504}, [a.status_code for a, _ in answers]
    assert max(seconds for _, seconds in answers) < 8
    assert len(token_rows(env)) == 1
    platform.clear_faults()
    the_back_off_ends(env)
    page, _ = visit(urls[0], launch_id, user.session)
    assert page.status_code == 200 and platform.count("grant:refresh_token") == 1


def test_a_worker_killed_mid_refresh_is_taken_over_within_seconds(platform, workers):
    urls, env, tool_id = workers(2, TOKEN_REFRESH_MARGIN="0", CANVAS_TOKEN_TIMEOUT="1 3")
    user, _, launch_id = authorized_teacher(platform, tool_id)
    the_access_token_expires(platform, env)
    platform.inject_fault("token", delay=20)  # the refresh is under way when the worker dies
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(visit, urls[0], launch_id, timeout=30)
        deadline = time.monotonic() + 5
        while not token_rows(env)[0]["refreshing_until"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert token_rows(env)[0]["refreshing_until"]  # worker 0 holds the lease
        workers.procs[0].kill()  # kill -9, as gunicorn's worker timeout does
        killed = time.monotonic()
    platform.clear_faults()
    waiting, seconds = visit(urls[1], launch_id, user.session)
    assert waiting.status_code == 503 and seconds < 4.5  # a short wait, then "retry"
    assert waiting.headers["Retry-After"]
    while True:
        page, _ = visit(urls[1], launch_id, user.session)
        if page.status_code == 200 or time.monotonic() - killed > 15:
            break
        time.sleep(0.5)
    assert page.status_code == 200 and "Hello, Terry Teacher" in page.text
    assert time.monotonic() - killed < 8  # the lease (3 s deadline + 2 s) was taken over
    assert platform.count("grant:refresh_token") == 1


def test_a_slow_canvas_api_gives_a_504_page_within_the_deadline(platform, workers):
    urls, _, tool_id = workers(1, CANVAS_API_TIMEOUT="1 2")
    user, _, launch_id = authorized_teacher(platform, tool_id)
    platform.inject_fault("api", delay=40)
    page, seconds = visit(urls[0], launch_id, user.session)
    assert page.status_code == 504 and seconds < 4, seconds
    assert "did not answer within 2 s" in page.text
    platform.clear_faults()
    page, _ = visit(urls[0], launch_id, user.session)
    assert page.status_code == 200


def test_the_refresh_margin_is_at_most_a_quarter_of_the_token_lifetime(platform, workers):
    """2 s tokens and the default 60 s margin: every request used to refresh."""
    urls, _, tool_id = workers(1)  # TOKEN_REFRESH_MARGIN 60 (the default)
    user, _, launch_id = authorized_teacher(platform, tool_id)
    for _ in range(5):
        assert visit(urls[0], launch_id, user.session)[0].status_code == 200
    assert platform.count("grant:refresh_token") == 0


def test_authorizations_in_progress_are_bounded_per_launch(platform, workers):
    """A page sending the same launch to Canvas's authorization again and again (after the
    grant was revoked) keeps only the launch's few newest states."""
    urls, env, tool_id = workers(1, TOKEN_REFRESH_MARGIN="0")
    user, _, launch_id = authorized_teacher(platform, tool_id)
    platform.revoke_all_tokens()
    the_access_token_expires(platform, env)
    for _ in range(10):
        answer, _ = visit(urls[0], launch_id, user.session)
        assert answer.status_code == 302 and "/login/oauth2/auth?" in answer.headers["Location"]
    with create_engine(env["DATABASE_URL"]).connect() as conn:
        assert len(conn.execute(select(tables.oauth_states)).all()) == 3
    assert token_rows(env) == []  # refresh_token not found: the grant is gone
