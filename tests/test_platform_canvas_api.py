"""The platform's OAuth2 endpoints and REST API answer as Canvas does.

Everything goes over real HTTP to a running platform; the expected shapes come from
Canvas's source and docs (see ltikit/platform/canvas_api.py), not from ltikit's client.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from canvasapi import Canvas
from canvasapi.exceptions import InvalidAccessToken

from ltikit.platform import DevPlatform
from ltikit.testing import Clock
from ltikit.testing.platform import PlatformUser

REDIRECT = "https://tool.example.edu/oauth/callback"
PROFILE_SCOPE = "url:GET|/api/v1/users/:user_id/profile"


@pytest.fixture
def platform(tmp_path):
    with DevPlatform(tmp_path / "p.sqlite3", TOKEN_LIFETIME=3600) as platform:
        yield platform


class Browser(PlatformUser):
    """A user at the platform, seeing each OAuth2 step (redirects not followed)."""

    def __init__(self, platform, login="teacher"):
        super().__init__(platform, login)

    def request_authorization(self, **params):
        return self.session.get(self.platform.url + "/login/oauth2/auth", params=params,
                                allow_redirects=False)

    def consent(self, choice="accept", **form):
        page = self.session.get(self.platform.url + "/login/oauth2/confirm")
        assert page.status_code == 200
        return self.session.post(self.platform.url + f"/login/oauth2/{choice}",
                                 data={"csrf_token": self.csrf, **form},
                                 allow_redirects=False)


def query(response):
    location = response.headers["Location"]
    assert location.startswith(REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def key(platform, **kwargs):
    return platform.add_developer_key("Template tool", [REDIRECT], **kwargs)


def token_request(platform, **form):
    return requests.post(platform.url + "/login/oauth2/token", data=form,
                         allow_redirects=False, timeout=10)


def get_code(platform, client_id, login="teacher", state="st-1", **extra):
    browser = Browser(platform, login)
    first = browser.request_authorization(client_id=client_id, response_type="code",
                              redirect_uri=REDIRECT, state=state, **extra)
    assert first.status_code == 302 and first.headers["Location"].endswith("/login/oauth2/confirm")
    params = query(browser.consent())
    assert params["state"] == state
    return params["code"]


def exchange(platform, client_id, secret, code):
    return token_request(platform, grant_type="authorization_code", client_id=client_id,
                         client_secret=secret, redirect_uri=REDIRECT, code=code)


def api(platform, path, token, **params):
    return requests.get(platform.url + path, params=params, timeout=10,
                        headers={"Authorization": f"Bearer {token}"} if token else {})


def test_the_authorization_code_flow_gives_canvas_shaped_tokens(platform):
    client_id, secret = key(platform)
    code = get_code(platform, client_id)
    response = exchange(platform, client_id, secret, code)
    assert response.status_code == 200
    body = response.json()
    teacher = platform.user("teacher")
    assert set(body) == {"access_token", "token_type", "user", "canvas_region",
                         "refresh_token", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["user"] == {"id": teacher["id"], "name": "Terry Teacher",
                            "global_id": str(teacher["id"]), "effective_locale": "en"}
    assert teacher["id"] > 2**31  # 64-bit ids, as on Canvas Cloud
    # A code is single-use.
    again = exchange(platform, client_id, secret, code)
    assert again.status_code == 302  # Canvas redirects token errors to the redirect_uri
    assert query(again) == {"error": "invalid_grant",
                            "error_description": "authorization_code not found"}
    me = api(platform, "/api/v1/users/self", body["access_token"])
    assert me.status_code == 200 and me.json()["name"] == "Terry Teacher"


def test_authorize_errors_as_canvas_returns_them(platform):
    client_id, _ = key(platform)
    browser = Browser(platform)
    unknown = browser.request_authorization(client_id="999", response_type="code", redirect_uri=REDIRECT)
    assert unknown.status_code == 401
    assert unknown.headers["WWW-Authenticate"] == "Canvas OAuth 2.0"
    assert unknown.json() == {"error": "invalid_client", "error_description": "unknown client"}
    elsewhere = browser.request_authorization(client_id=client_id, response_type="code",
                                  redirect_uri="https://evil.example.com/cb")
    assert elsewhere.status_code == 400
    assert elsewhere.json()["error_description"] == "redirect_uri does not match client settings"
    # Browsers read "\\" as "/": these send the code to evil.example.com, whatever
    # urlsplit says the host is; and user info or whitespace in the host has no place.
    for tricky in ("https://evil.example.com\\@tool.example.edu/oauth/callback",
                   "https://evil.example.com\\.tool.example.edu/oauth/callback",
                   "https://tool.example.edu\t/oauth/callback",
                   "https://me@tool.example.edu/oauth/callback"):
        refused = browser.request_authorization(client_id=client_id, response_type="code",
                                                redirect_uri=tricky, state="s1")
        assert refused.status_code == 400, tricky
        assert refused.json()["error_description"] == \
            "redirect_uri does not match client settings"
    wrong_type = browser.request_authorization(client_id=client_id, response_type="token",
                                   redirect_uri=REDIRECT, state="s2")
    assert query(wrong_type) == {"error": "unsupported_response_type", "state": "s2",
                                 "error_description": "Only response_type=code is permitted"}
    silent = browser.request_authorization(client_id=client_id, response_type="code",
                               redirect_uri=REDIRECT, state="s3", prompt="none")
    assert query(silent)["error"] == "interaction_required" and query(silent)["state"] == "s3"
    login = browser.request_authorization(client_id=client_id, response_type="code",
                              redirect_uri=REDIRECT, state="s4", prompt="login")
    assert query(login)["error"] == "unsupported_prompt_type"


def test_a_user_who_cancels_is_sent_back_with_access_denied_and_the_state(platform):
    client_id, _ = key(platform)
    browser = Browser(platform, "student")
    browser.request_authorization(client_id=client_id, response_type="code", redirect_uri=REDIRECT,
                      state="keep-me")
    assert query(browser.consent("deny")) == {"error": "access_denied", "state": "keep-me"}


def test_scopes_beyond_a_scoped_key_are_refused_with_invalid_scope(platform):
    client_id, _ = key(platform, scopes=[PROFILE_SCOPE], require_scopes=True)
    browser = Browser(platform)
    refused = browser.request_authorization(client_id=client_id, response_type="code",
                                redirect_uri=REDIRECT, state="s",
                                scope=f"{PROFILE_SCOPE} url:GET|/api/v1/courses")
    params = query(refused)
    assert params["error"] == "invalid_scope"
    assert params["error_description"].endswith(
        "The following scopes were requested, but not granted: url:GET|/api/v1/courses")
    assert "state" not in params  # Canvas raises before it keeps the state


def test_out_of_scope_calls_are_refused_without_inviting_a_new_token(platform):
    client_id, secret = key(platform, scopes=[PROFILE_SCOPE], require_scopes=True)
    token = exchange(platform, client_id, secret,
                     get_code(platform, client_id, scope=PROFILE_SCOPE)).json()["access_token"]
    assert api(platform, "/api/v1/users/self/profile", token).status_code == 200
    refused = api(platform, "/api/v1/courses", token)
    assert refused.status_code == 401
    assert "WWW-Authenticate" not in refused.headers
    assert refused.json() == {"errors": [{"message": "Insufficient scopes on access token."}]}


def test_refresh_keeps_the_refresh_token_and_kills_the_old_access_token(platform):
    client_id, secret = key(platform)
    first = exchange(platform, client_id, secret, get_code(platform, client_id)).json()
    refreshed = token_request(platform, grant_type="refresh_token", client_id=client_id,
                              client_secret=secret, refresh_token=first["refresh_token"])
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert "refresh_token" not in body and body["expires_in"] == 3600
    assert body["access_token"] != first["access_token"]
    old = api(platform, "/api/v1/users/self", first["access_token"])
    assert old.status_code == 401
    assert old.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'
    assert old.json() == {"errors": [{"message": "Invalid access token."}]}
    assert api(platform, "/api/v1/users/self", body["access_token"]).status_code == 200
    # The refresh token still works, and an unknown one is invalid_request (not invalid_grant).
    again = token_request(platform, grant_type="refresh_token", client_id=client_id,
                          client_secret=secret, refresh_token=first["refresh_token"])
    assert again.status_code == 200
    unknown = token_request(platform, grant_type="refresh_token", client_id=client_id,
                            client_secret=secret, refresh_token="1~nope")
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "invalid_request",
                              "error_description": "refresh_token not found"}


def test_token_endpoint_client_errors(platform):
    client_id, secret = key(platform)
    code = get_code(platform, client_id)
    bad_secret = token_request(platform, grant_type="authorization_code", client_id=client_id,
                               client_secret="wrong", code=code)
    assert bad_secret.status_code == 401
    assert bad_secret.headers["WWW-Authenticate"] == "Canvas OAuth 2.0"
    assert bad_secret.json() == {"error": "invalid_client", "error_description": "invalid client"}
    unsupported = token_request(platform, grant_type="password", client_id=client_id,
                                client_secret=secret)
    assert unsupported.json()["error"] == "unsupported_grant_type"
    basic = requests.post(platform.url + "/login/oauth2/token", auth=(str(client_id), secret),
                          data={"grant_type": "authorization_code", "code": code,
                                "redirect_uri": REDIRECT}, timeout=10)
    assert basic.status_code == 200  # client credentials in HTTP Basic work too


def test_token_errors_are_json_when_the_site_flag_is_on(tmp_path):
    with DevPlatform(tmp_path / "p.sqlite3", OAUTH_TOKEN_ERRORS_AS_JSON=True) as platform:
        client_id, secret = key(platform)
        response = exchange(platform, client_id, secret, "no-such-code")
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"


def test_tokens_expire_after_the_configured_lifetime(tmp_path):
    with DevPlatform(tmp_path / "p.sqlite3", TOKEN_LIFETIME=1) as platform:
        platform.store.clock = clock = Clock()
        client_id, secret = key(platform)
        body = exchange(platform, client_id, secret, get_code(platform, client_id)).json()
        assert body["expires_in"] == 1
        assert api(platform, "/api/v1/users/self", body["access_token"]).status_code == 200
        clock.advance(1.2)
        expired = api(platform, "/api/v1/users/self", body["access_token"])
        assert expired.status_code == 401
        assert expired.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'


def test_logout_revokes_the_token_and_its_refresh_token(platform):
    client_id, secret = key(platform)
    body = exchange(platform, client_id, secret, get_code(platform, client_id)).json()
    revoked = requests.delete(platform.url + "/login/oauth2/token", timeout=10,
                              headers={"Authorization": f"Bearer {body['access_token']}"})
    assert revoked.status_code == 200 and revoked.json() == {}
    assert api(platform, "/api/v1/users/self", body["access_token"]).status_code == 401
    refresh = token_request(platform, grant_type="refresh_token", client_id=client_id,
                            client_secret=secret, refresh_token=body["refresh_token"])
    assert refresh.json()["error_description"] == "refresh_token not found"
    anonymous = requests.delete(platform.url + "/login/oauth2/token", timeout=10)
    assert anonymous.status_code == 400


def test_api_without_credentials_and_outside_the_users_courses(platform):
    anonymous = api(platform, "/api/v1/users/self", None)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'
    assert anonymous.json() == {"status": "unauthenticated",
                                "errors": [{"message": "user authorization required"}]}
    client_id, secret = key(platform)
    token = exchange(platform, client_id, secret,
                     get_code(platform, client_id, login="ta")).json()["access_token"]
    chemistry = platform.course_id("CHEM201")  # the TA is not in this course
    refused = api(platform, f"/api/v1/courses/{chemistry}", token)
    assert refused.status_code == 401 and "WWW-Authenticate" not in refused.headers
    assert refused.json()["status"] == "unauthorized"
    assert api(platform, "/api/v1/courses/12345", token).status_code == 404


def test_rosters_are_paginated_with_canvas_link_headers(platform):
    client_id, secret = key(platform)
    token = exchange(platform, client_id, secret, get_code(platform, client_id)).json()[
        "access_token"]
    course = platform.course_id("BIO101")
    first = api(platform, f"/api/v1/courses/{course}/users", token, per_page=5)
    assert first.status_code == 200 and len(first.json()) == 5
    links = requests.utils.parse_header_links(first.headers["Link"])
    assert {link["rel"] for link in links} == {"current", "next", "first", "last"}
    assert float(first.headers["X-Rate-Limit-Remaining"]) > 0
    assert float(first.headers["X-Request-Cost"]) > 0
    names, url = [], first.url
    while url:
        page = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        names += [u["name"] for u in page.json()]
        url = next((link["url"] for link in requests.utils.parse_header_links(
            page.headers["Link"]) if link["rel"] == "next"), None)
    assert len(names) == len(set(names)) == 16  # every enrolled user, once
    students = api(platform, f"/api/v1/courses/{course}/users", token,
                   **{"enrollment_type[]": "student", "per_page": 100}).json()
    assert len(students) == 12 and "email" not in students[0]


def test_canvasapi_works_against_the_platform(platform):
    client_id, secret = key(platform)
    token = exchange(platform, client_id, secret, get_code(platform, client_id)).json()[
        "access_token"]
    canvas = Canvas(platform.url, token)
    assert canvas.get_current_user().name == "Terry Teacher"
    course = canvas.get_course(platform.course_id("BIO101"))
    assert course.name == "Introduction to Biology"
    assert len(list(course.get_users(per_page=4))) == 16
    assert [c.course_code for c in canvas.get_courses()] == ["BIO101", "CHEM201"]
    profile = canvas.get_current_user().get_profile()
    assert profile["primary_email"] == "teacher@example.edu"
    with pytest.raises(InvalidAccessToken):
        Canvas(platform.url, "1~not-a-token").get_current_user()


def test_throttled_calls_are_refused_as_canvas_does(tmp_path):
    with DevPlatform(tmp_path / "p.sqlite3", RATE_LIMIT_HIGH_WATER=3,
                     RATE_LIMIT_UPFRONT_COST=1, RATE_LIMIT_OUTFLOW=0.001) as platform:
        client_id, secret = key(platform)
        token = exchange(platform, client_id, secret, get_code(platform, client_id)).json()[
            "access_token"]
        statuses = [api(platform, "/api/v1/users/self", token).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        throttled = api(platform, "/api/v1/users/self", token)
        assert throttled.headers["Content-Type"].startswith("text/plain")
        assert throttled.headers["X-Rate-Limit-Remaining"] == "0.0"


def test_parallel_calls_on_one_token_are_throttled_by_their_up_front_cost(tmp_path):
    """Canvas takes 50 units from the bucket (600) when a request starts and settles the
    real cost when it ends: a tool firing many slow calls at once with one user's token is
    throttled although each call is cheap."""
    from concurrent.futures import ThreadPoolExecutor

    with DevPlatform(tmp_path / "p.sqlite3", RATE_LIMIT_OUTFLOW=0.001) as platform:
        client_id, secret = key(platform)
        token = exchange(platform, client_id, secret, get_code(platform, client_id)).json()[
            "access_token"]
        platform.inject_fault("api", delay=1.5)  # each call holds its up-front cost 1.5 s
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(
                lambda _: api(platform, "/api/v1/users/self", token).status_code, range(16)))
        assert statuses.count(200) == 12 and statuses.count(429) == 4, statuses
        platform.clear_faults()
        # Settled at one unit each: the same token works again at once.
        after = api(platform, "/api/v1/users/self", token)
        assert after.status_code == 200
        assert float(after.headers["X-Rate-Limit-Remaining"]) == pytest.approx(587, abs=1)


def test_the_platform_answers_only_to_its_own_host_names(tmp_path):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 would read
    the platform's pages (and their CSRF tokens) as the signed-in user.  Other Host headers
    are refused before any page is made."""
    with DevPlatform(tmp_path / "p.sqlite3") as platform:
        port = platform.port
        for host in ("localhost", "127.0.0.1", "[::1]"):
            answer = requests.get(f"http://127.0.0.1:{port}/", timeout=10,
                                  headers={"Host": f"{host}:{port}"}, allow_redirects=False)
            assert answer.status_code in (200, 302), host
        for host in (f"evil.example:{port}", "evil.example", f"localhost.evil.example:{port}"):
            refused = requests.get(f"http://127.0.0.1:{port}/login", timeout=10,
                                   headers={"Host": host})
            assert refused.status_code == 400 and "csrf" not in refused.text.lower(), host
            api = requests.post(f"http://127.0.0.1:{port}/login/oauth2/token", timeout=10,
                                headers={"Host": host}, data={"grant_type": "x"})
            assert api.status_code == 400
    with DevPlatform(tmp_path / "q.sqlite3", ALLOWED_HOSTS=("lms.test",)) as platform:
        answer = requests.get(f"http://127.0.0.1:{platform.port}/", timeout=10,
                              headers={"Host": f"lms.test:{platform.port}"},
                              allow_redirects=False)
        assert answer.status_code in (200, 302)

