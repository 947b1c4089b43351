"""An LTI 1.3 launch through the same ``@lti`` decorator: OIDC login, then the id_token.

The platform side (login initiation, id_token signed with PyJWT) is played by the test; the
tool is the same small Flask tool the LTI 1.1 tests use.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from conftest import build_tool
from ltikit.flask.lti13 import STATE_COOKIE
from ltikit.lti13 import Registrations
from ltikit.lti13.oidc import state_cookie
from ltikit.storage import tables
from test_lti13_id_token import CLAIM, CLIENT, ISS, PlatformKeys, claims

BASE = "https://tool.example.edu"
TARGET = BASE + "/launch"


@pytest.fixture
def tool(tmp_path):
    app = build_tool(tmp_path)
    keys = PlatformKeys()
    Registrations(app.extensions["ltikit"].storage.engine).add(
        name="Test platform", issuer=ISS, client_id=CLIENT,
        auth_login_url="https://platform.example.edu/auth",
        token_url="https://platform.example.edu/token", public_jwk=keys.published[0],
        deployments=("1:deploy",), platform_storage=True)
    return app, keys


def stored_launches(app):
    with app.extensions["ltikit"].storage.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(tables.launches)).scalar()


def login(client, target=TARGET, headers=None, **extra):
    params = {"iss": ISS, "login_hint": "u-1", "target_link_uri": target, "client_id": CLIENT,
              "lti_message_hint": "hint-9", **extra}
    return client.get("/lti13/login", query_string=params, base_url=BASE, headers=headers)


def started(client, **extra):
    response = login(client, **extra)
    assert response.status_code == 302, response.get_data(as_text=True)
    query = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}
    return query["state"], query["nonce"]


def launch(client, keys, state, nonce, **overrides):
    token = keys.sign(claims(nonce=nonce, **{CLAIM + "target_link_uri": TARGET, **overrides}))
    return client.post("/launch", data={"id_token": token, "state": state}, base_url=BASE)


def test_the_login_redirects_to_the_platform_with_a_state_and_a_nonce(tool):
    app, _ = tool
    response = login(app.test_client())
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == \
        "https://platform.example.edu/auth"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["scope"] == "openid" and query["response_type"] == "id_token"
    assert query["response_mode"] == "form_post" and query["prompt"] == "none"
    assert query["client_id"] == CLIENT and query["redirect_uri"] == TARGET
    assert query["login_hint"] == "u-1" and query["lti_message_hint"] == "hint-9"
    assert len(query["state"]) >= 40 and len(query["nonce"]) >= 40
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("ltikit_lti13_state_")
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Partitioned"):
        assert attribute in cookie


def test_a_13_launch_fills_the_same_lti_object(tool):
    app, keys = tool
    client = app.test_client()
    state, nonce = started(client)
    response = launch(client, keys, state, nonce)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_data(as_text=True) == "hello Ada Teacher in Biology"
    page = client.get("/page", base_url=BASE)  # the launch cookie, as for 1.1
    assert page.status_code == 200
    assert page.get_data(as_text=True).startswith("page for a6d5c443-1f51")
    assert stored_launches(app) == 1


def test_the_same_role_groups_apply(tool):
    app, keys = tool
    client = app.test_client()
    state, nonce = started(client, target_link_uri=BASE + "/staff")
    learner = keys.sign(claims(nonce=nonce, **{
        CLAIM + "target_link_uri": BASE + "/staff",
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]}))
    refused = client.post("/staff", data={"id_token": learner, "state": state}, base_url=BASE)
    assert refused.status_code == 403
    assert stored_launches(app) == 0


def test_replays_forged_states_and_foreign_tokens_are_refused_and_store_nothing(tool):
    app, keys = tool
    client = app.test_client()
    state, nonce = started(client)
    token = keys.sign(claims(nonce=nonce, **{CLAIM + "target_link_uri": TARGET}))
    # A state this browser did not start.
    forged = client.post("/launch", data={"id_token": token, "state": "x" * 43}, base_url=BASE)
    assert forged.status_code == 401
    # The same launch from another browser (no login cookie): a page offering a new window.
    elsewhere = app.test_client().post("/launch", data={"id_token": token, "state": state},
                                       base_url=BASE)
    assert elsewhere.status_code == 401 and "new window" in elsewhere.get_data(as_text=True)
    # A token whose nonce is not this login's.
    other = keys.sign(claims(nonce="someone-elses-nonce", **{CLAIM + "target_link_uri": TARGET}))
    assert client.post("/launch", data={"id_token": other, "state": state},
                       base_url=BASE).status_code == 401
    assert stored_launches(app) == 0
    # A fresh login, the genuine token of the earlier login: its nonce does not match.
    new_state, _ = started(client)
    assert client.post("/launch", data={"id_token": token, "state": new_state},
                       base_url=BASE).status_code == 401
    # A launch aimed at another target than the login asked for.
    state2, nonce2 = started(client)
    wrong_target = keys.sign(claims(nonce=nonce2, **{CLAIM + "target_link_uri": BASE + "/x"}))
    assert client.post("/launch", data={"id_token": wrong_target, "state": state2},
                       base_url=BASE).status_code == 401
    assert stored_launches(app) == 0


def test_a_replayed_launch_is_refused_even_with_its_state_and_cookie(tool):
    app, keys = tool
    client = app.test_client()
    state, nonce = started(client)
    token = keys.sign(claims(nonce=nonce, **{CLAIM + "target_link_uri": TARGET}))
    assert client.post("/launch", data={"id_token": token, "state": state},
                       base_url=BASE).status_code == 200
    # The same POST again, cookie restored: the nonce was claimed by the first launch.
    name, value = state_cookie(state, STATE_COOKIE)
    client.set_cookie(name, value, domain="tool.example.edu")
    replay = client.post("/launch", data={"id_token": token, "state": state}, base_url=BASE)
    assert replay.status_code == 401 and "already used" in replay.get_data(as_text=True)
    assert stored_launches(app) == 1


@pytest.mark.parametrize(("params", "status"), [
    ({"target_link_uri": "https://evil.example.com/launch"}, 400),
    # Browsers (and urllib3) read host evil.example in these; urlsplit read the tool's.
    ({"target_link_uri": "https://evil.example\\@tool.example.edu/launch"}, 400),
    ({"target_link_uri": "https://evil.example\\.tool.example.edu/launch"}, 400),
    ({"target_link_uri": "https://tool.example.edu@evil.example/launch"}, 400),
    ({"target_link_uri": "https://tool.example.edu\t.evil.example/launch"}, 400),
    ({"target_link_uri": "https://t%6Fol.example.edu/launch"}, 400),
    ({"iss": "https://unknown.example.edu"}, 401),
    ({"login_hint": ""}, 400),
    ({"client_id": "not-ours"}, 401),
])
def test_bad_logins_get_an_error_page(tool, params, status):
    app, _ = tool
    response = login(app.test_client(), **params)
    assert response.status_code == status
    assert "Set-Cookie" not in response.headers


def test_two_logins_in_one_browser_each_complete(tool):
    """Two tabs (or two tools embedded in one page) log in before either launch arrives."""
    app, keys = tool
    client = app.test_client()
    first, second = started(client), started(client)
    for state, nonce in (second, first):
        assert launch(client, keys, state, nonce).status_code == 200
    assert stored_launches(app) == 2


def test_a_framed_login_checks_the_cookie_before_the_hint_is_used(tool):
    """Without platform storage, the new window must be offered before the browser goes to
    the platform: Canvas and Moodle take an lti_message_hint once."""
    app, keys = tool
    framed = login(app.test_client(), headers={"Sec-Fetch-Dest": "iframe"})
    assert framed.status_code == 200 and framed.mimetype == "text/html"
    cookies = framed.headers.getlist("Set-Cookie")
    check = [c for c in cookies if c.startswith("ltikit_cookie_check=1;")]
    assert check and "HttpOnly" not in check[0] and "SameSite=None" in check[0]
    assert any(c.startswith(STATE_COOKIE) and "HttpOnly" in c for c in cookies)
    body = framed.get_data(as_text=True)
    config = json.loads(re.search(r"id=ltikit-cookie-check>(.*?)</script>", body).group(1))
    assert config["next"].startswith("https://platform.example.edu/auth")
    link = re.search(r"href='([^']+)' target=_blank", body)
    relaunch = urlsplit(html.unescape(link.group(1)))
    assert f"{relaunch.scheme}://{relaunch.netloc}{relaunch.path}" == BASE + "/lti13/login"
    assert parse_qs(relaunch.query) == {
        "iss": [ISS], "login_hint": ["u-1"], "target_link_uri": [TARGET],
        "client_id": [CLIENT], "lti_message_hint": ["hint-9"]}
    # In the new window (a top-level document) the login redirects and completes.
    window = app.test_client()
    again = window.get(relaunch.path + "?" + relaunch.query, base_url=BASE,
                       headers={"Sec-Fetch-Dest": "document"})
    assert again.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(again.headers["Location"]).query).items()}
    assert launch(window, keys, query["state"], query["nonce"]).status_code == 200


def test_a_launch_without_its_cookie_offers_no_relaunch_of_a_used_hint(tool):
    app, keys = tool
    state, nonce = started(app.test_client())
    blocked = app.test_client()  # this browser never got the login's cookie
    refused = launch(blocked, keys, state, nonce)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 401 and stored_launches(app) == 0
    assert "state_cookie_missing" in text and "new window" in text
    assert "lti13/login" not in text and "target=\"_blank\"" not in text


# -- platform storage (lti_storage_target): the path for browsers that block the cookie ---

def storage_login(client, target="post_message_forwarding"):
    page = login(client, lti_storage_target=target)
    assert page.status_code == 200 and page.mimetype == "text/html"
    return page, storage_config(page)


def storage_config(page):
    text = page.get_data(as_text=True)
    return json.loads(re.search(r"id=ltikit-storage>(.*?)</script>", text).group(1))


def test_with_platform_storage_the_login_page_puts_a_secret_then_goes_to_the_platform(tool):
    app, _ = tool
    page, config = storage_login(app.test_client())
    assert config["mode"] == "put" and config["target"] == "post_message_forwarding"
    # Messages go to the platform's auth origin only, never "*".
    assert config["origin"] == "https://platform.example.edu"
    assert config["next"].startswith("https://platform.example.edu/auth?")
    assert config["key"].startswith("ltikit_state_") and len(config["value"]) >= 32
    state = parse_qs(urlsplit(config["next"]).query)["state"][0]
    assert config["value"] not in state  # the state carries only the secret's digest
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp
    assert page.headers["Set-Cookie"].startswith("ltikit_lti13_state_")  # still the first choice


def test_a_launch_without_its_cookie_is_checked_against_platform_storage(tool):
    app, keys = tool
    _, put = storage_login(app.test_client())
    query = {k: v[0] for k, v in parse_qs(urlsplit(put["next"]).query).items()}
    token = keys.sign(claims(nonce=query["nonce"], **{CLAIM + "target_link_uri": TARGET}))
    blocked = app.test_client()  # the cookie did not come back
    check = blocked.post("/launch", data={"id_token": token, "state": query["state"]},
                         base_url=BASE)
    assert check.status_code == 200 and stored_launches(app) == 0
    get = storage_config(check)
    assert get["mode"] == "get" and get["key"] == put["key"]
    assert get["origin"] == "https://platform.example.edu"
    assert check.headers["Referrer-Policy"] == "same-origin"  # so its post carries Origin
    form = dict(re.findall(r"<input type=hidden name='([^']+)' value='([^']*)'>",
                           check.get_data(as_text=True)))
    assert form["id_token"] == token and form["state"] == query["state"]
    # A wrong secret (what a page forging the launch would have to guess) is refused.
    wrong = blocked.post("/launch", data={**form, "ltikit_storage_secret": "guess"},
                         base_url=BASE, headers=CHECK_PAGE_POST)
    assert wrong.status_code == 401 and stored_launches(app) == 0
    # The secret the platform kept completes the launch, posted by the check page.
    done = blocked.post("/launch", data={**form, "ltikit_storage_secret": put["value"]},
                        base_url=BASE, headers=CHECK_PAGE_POST)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_data(as_text=True) == "hello Ada Teacher in Biology"
    assert stored_launches(app) == 1
    # The same secret again: the nonce is spent.
    replay = blocked.post("/launch", data={**form, "ltikit_storage_secret": put["value"]},
                          base_url=BASE, headers=CHECK_PAGE_POST)
    assert replay.status_code == 401 and stored_launches(app) == 1


# What a browser sends with the check page's form (same origin), and with a form that a
# page on another site auto-posts to the tool.
CHECK_PAGE_POST = {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}
CROSS_SITE_POST = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}


def _attackers_own_launch(app, keys):
    """The attacker's half of a login CSRF: their own login, asking for platform storage
    (an unsigned parameter), the secret read from the login page, and the id_token the
    platform signs for *them* (their platform login completed, the token not submitted)."""
    _, put = storage_login(app.test_client())
    query = {k: v[0] for k, v in parse_qs(urlsplit(put["next"]).query).items()}
    token = keys.sign(claims(nonce=query["nonce"], sub="attacker",
                             **{CLAIM + "target_link_uri": TARGET}))
    return {"id_token": token, "state": query["state"], "ltikit_storage_secret": put["value"]}


@pytest.mark.parametrize("headers", [
    CROSS_SITE_POST,
    {"Origin": "https://evil.example"},          # a browser without Sec-Fetch-*
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "null", "Sec-Fetch-Site": "cross-site"},  # from a sandboxed frame
    {"Origin": BASE, "Sec-Fetch-Site": "same-site"},     # a sibling subdomain's page
    {"Origin": "null"},                                  # no Sec-Fetch-*, opaque origin
    {},                                                  # no word on where it came from
], ids=["cross-site", "origin-only", "fetch-site-only", "null-origin", "same-site",
        "only-null-origin", "none"])
def test_a_launch_auto_posted_from_another_site_with_a_storage_secret_is_refused(
        tool, headers, caplog):
    """Login CSRF: the attacker auto-posts their own id_token, state and storage secret into
    the victim's browser from their site.  Only the tool's own check page may post a secret."""
    app, keys = tool
    forged = _attackers_own_launch(app, keys)
    victim = app.test_client()
    response = victim.post("/launch", data=forged, base_url=BASE, headers=headers)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert "(storage_cross_site)" in response.get_data(as_text=True)
    assert stored_launches(app) == 0
    assert not any(h.startswith("ltikit_launch=")
                   for h in response.headers.getlist("Set-Cookie"))
    assert victim.get("/page", base_url=BASE).status_code == 401  # not inside the tool
    assert forged["ltikit_storage_secret"] not in caplog.text
    assert forged["id_token"][:40] not in caplog.text


def test_the_check_page_post_from_the_tools_own_origin_is_accepted(tool):
    """The same secret, posted by the tool's page (what Chromium sends for it), works:
    the refusal above is about where the post came from, not about the secret."""
    app, keys = tool
    for headers in ({"Origin": BASE}, {"Sec-Fetch-Site": "same-origin"}):
        own = _attackers_own_launch(app, keys)  # a login of its own each time
        response = app.test_client().post("/launch", data=own, base_url=BASE,
                                          headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
    assert stored_launches(app) == 2


def test_platform_storage_is_used_only_for_registrations_that_offer_it(tool):
    app, _ = tool
    other = PlatformKeys()
    Registrations(app.extensions["ltikit"].storage.engine).add(
        name="No storage", issuer="https://moodle.example.edu", client_id="m-1",
        auth_login_url="https://moodle.example.edu/mod/lti/auth.php",
        token_url="https://moodle.example.edu/mod/lti/token.php",
        public_jwk=other.published[0], deployments=("1",))
    response = app.test_client().get("/lti13/login", base_url=BASE, query_string={
        "iss": "https://moodle.example.edu", "login_hint": "u", "client_id": "m-1",
        "target_link_uri": TARGET, "lti_storage_target": "_parent"})
    # The plain cookie login: no page, no secret handed out.
    assert response.status_code == 302 and "ltikit-storage" not in response.get_data(as_text=True)
    state = parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]
    token = other.sign(claims(iss="https://moodle.example.edu", aud="m-1", **{
        "nonce": parse_qs(urlsplit(response.headers["Location"]).query)["nonce"][0],
        CLAIM + "deployment_id": "1", CLAIM + "target_link_uri": TARGET}))
    blocked = app.test_client().post("/launch", data={"id_token": token, "state": state},
                                     base_url=BASE)
    assert blocked.status_code == 401 and "new window" in blocked.get_data(as_text=True)
    assert stored_launches(app) == 0


def test_a_frame_name_that_is_not_a_name_is_ignored(tool):
    app, _ = tool
    response = login(app.test_client(), lti_storage_target="x'><script>alert(1)</script>")
    assert response.status_code == 302  # the plain cookie login


# -- the attack matrix: bad id_tokens through the real route, after a genuine login ------

def _hs256_with_public_key(keys, body):
    kid, private = next(iter(keys.keys.items()))
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    # Written by hand: PyJWT itself refuses to use a PEM public key as an HMAC secret.
    return _raw_jws({"alg": "HS256", "typ": "JWT", "kid": kid}, body,
                    lambda data: hmac.new(pem, data, hashlib.sha256).digest())


def _raw_jws(header, body, sign):
    encode = jwt.utils.base64url_encode
    signing_input = encode(json.dumps(header).encode()) + b"." + encode(json.dumps(body).encode())
    return (signing_input + b"." + encode(sign(signing_input))).decode()


def _other_key(kid):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return lambda keys, body: jwt.encode(body, other, algorithm="RS256",
                                         headers={"kid": kid or next(iter(keys.keys))})


def _tampered(keys, body):
    header, _, signature = keys.sign(body).split(".")
    evil = jwt.utils.base64url_encode(json.dumps({**body, "sub": "admin"}).encode()).decode()
    return f"{header}.{evil}.{signature}"


def _without_kid(keys, body):
    return jwt.encode(body, next(iter(keys.keys.values())), algorithm="RS256")


def _under_another_kid(keys, body):
    # The registered key signs, but the header names a key the platform is not registered
    # with: an inline key is used for its own kid only.
    return jwt.encode(body, next(iter(keys.keys.values())), algorithm="RS256",
                      headers={"kid": "not-the-registered-key"})


NOW = int(time.time())
ATTACKS = {
    # name: (how the token is made from (keys, claims), claim changes, expected status)
    "alg none": (lambda keys, body: jwt.encode(body, None, algorithm="none"), {}, 401),
    "HS256 MACed with the public key": (_hs256_with_public_key, {}, 401),
    "unknown kid": (_other_key("made-up-kid"), {}, 401),
    "another key under our kid": (_other_key(None), {}, 401),
    "tampered payload": (_tampered, {}, 401),
    "wrong iss": (None, {"iss": "https://evil.example.com"}, 401),
    "wrong aud": (None, {"aud": "someone-else"}, 401),
    "two audiences, no azp": (None, {"aud": [CLIENT, "other"]}, 401),
    "azp not ours": (None, {"aud": [CLIENT, "other"], "azp": "other"}, 401),
    "expired": (None, {"exp": NOW - 3600, "iat": NOW - 4000}, 401),
    "issued in the future": (None, {"iat": NOW + 3600, "exp": NOW + 7200}, 401),
    "nonce of another login": (None, {"nonce": "someone-elses-nonce"}, 401),
    "no nonce": (None, {"nonce": None}, 401),
    "unknown deployment": (None, {CLAIM + "deployment_id": "9:unknown"}, 401),
    "wrong version": (None, {CLAIM + "version": "1.1"}, 400),
    "unknown message type": (None, {CLAIM + "message_type": "LtiStartProctoring"}, 400),
    "no resource link": (None, {CLAIM + "resource_link": None}, 400),
    "roles not a list": (None, {CLAIM + "roles": "Instructor"}, 400),
    "target_link_uri of another tool": (None, {CLAIM + "target_link_uri": BASE + "/x"}, 401),
    "oversized": (None, {"padding": "x" * 70_000}, 400),
    "garbage": (lambda keys, body: "not.a.jwt", {}, 400),
    # NumericDate claims are JSON numbers near now (RFC 7519), never a 500.
    "iat as a string": (None, {"iat": str(NOW)}, 401),
    "exp as a string": (None, {"exp": str(NOW + 300)}, 401),
    "exp 10**20": (None, {"exp": 10**20}, 401),
    "exp 1e300": (None, {"exp": 1e300}, 401),
    "exp Infinity": (None, {"exp": float("inf")}, 401),
    "exp true": (None, {"exp": True}, 401),
    "iat a year ago": (None, {"iat": NOW - 365 * 86400}, 401),
    "exp a year ahead": (None, {"exp": NOW + 365 * 86400}, 401),
    "nbf 10**20": (None, {"nbf": 10**20}, 401),
    # The certification suite's "No KID sent in JWT header".
    "no kid": (_without_kid, {}, 401),
    "kid of no registered key": (_under_another_kid, {}, 401),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_bad_id_tokens_are_refused_and_change_nothing(tool, attack, caplog):
    app, keys = tool
    make, changes, status = ATTACKS[attack]
    client = app.test_client()
    state, nonce = started(client)
    body = claims(**{"nonce": nonce, CLAIM + "target_link_uri": TARGET, **changes})
    token = (make or (lambda k, b: k.sign(b)))(keys, body)
    response = client.post("/launch", data={"id_token": token, "state": state}, base_url=BASE)
    assert response.status_code == status, response.get_data(as_text=True)
    assert stored_launches(app) == 0
    assert not any(h.startswith("ltikit_launch=")
                   for h in response.headers.getlist("Set-Cookie"))
    with app.extensions["ltikit"].storage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables.deployments)).scalar() == 1
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusals and token[:40] not in " ".join(refusals)


def test_a_forged_state_is_refused_before_the_token_is_read(tool):
    app, keys = tool
    client = app.test_client()
    _, nonce = started(client)
    token = keys.sign(claims(nonce=nonce, **{CLAIM + "target_link_uri": TARGET}))
    for state in ("x" * 43, "", "a" * 20_000):
        response = client.post("/launch", data={"id_token": token, "state": state},
                               base_url=BASE)
        assert response.status_code == 401 and "(unknown_state)" in response.get_data(as_text=True)
    assert stored_launches(app) == 0


def test_huge_numeric_dates_are_refused_before_anything_is_stored(tmp_path, database_url):
    """exp = 10**20 passed the signature check and broke the launch insert (BIGINT) with a
    500, on SQLite and on PostgreSQL alike."""
    app = build_tool(tmp_path, LTIKIT_DATABASE_URL=database_url)
    keys = PlatformKeys()
    Registrations(app.extensions["ltikit"].storage.engine).add(
        name="Test platform", issuer=ISS, client_id=CLIENT,
        auth_login_url="https://platform.example.edu/auth",
        token_url="https://platform.example.edu/token", public_jwk=keys.published[0],
        deployments=("1:deploy",))
    client = app.test_client()
    for exp in (10**20, 1e300, 2**63):
        state, nonce = started(client)
        response = launch(client, keys, state, nonce, exp=exp)
        assert response.status_code == 401, response.get_data(as_text=True)
        assert "(bad_numeric_date)" in response.get_data(as_text=True)
    assert stored_launches(app) == 0


def test_a_route_declared_for_other_message_types_takes_no_resource_link_launch(tool):
    """Declared message types are never widened: a content-selection route declared with
    LTI 1.1's type alone takes no LTI 1.3 launch (it fell back to the default list)."""
    from ltikit.flask import lti

    app, keys = tool

    @app.route("/select", methods=["POST"])
    @lti(request="initial", message_types=("ContentItemSelectionRequest",))
    def select(lti):
        return "selection page"

    @app.route("/pick", methods=["POST"])
    @lti(request="initial", message_types=("ContentItemSelectionRequest",
                                           "LtiDeepLinkingRequest"))
    def pick(lti):
        return "pick page"

    client = app.test_client()
    state, nonce = started(client, target_link_uri=BASE + "/select")
    token = keys.sign(claims(nonce=nonce, **{CLAIM + "target_link_uri": BASE + "/select"}))
    refused = client.post("/select", data={"id_token": token, "state": state}, base_url=BASE)
    assert refused.status_code == 400 and "(wrong_message_type)" in refused.get_data(as_text=True)
    # The 1.3 type declared beside it is taken (a deep linking request, no resource link).
    state, nonce = started(client, target_link_uri=BASE + "/pick")
    deep = keys.sign(claims(nonce=nonce, **{
        CLAIM + "target_link_uri": BASE + "/pick", CLAIM + "message_type":
        "LtiDeepLinkingRequest", CLAIM + "resource_link": None,
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": {
            "deep_link_return_url": "https://platform.example.edu/dl",
            "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets":
            ["iframe"]}}))
    taken = client.post("/pick", data={"id_token": deep, "state": state}, base_url=BASE)
    assert taken.status_code == 200, taken.get_data(as_text=True)
    assert stored_launches(app) == 1

