"""A platform's LTI 1.3 id_token is accepted when it should be, and only then.

Tokens are signed here with PyJWT and keys made with ``cryptography``, as a platform signs
them; the platform's JWKS is served over real HTTP, with a counter of fetches.
"""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask, Response

from browser import serve
from ltikit.errors import LTIAuthenticationError, LTIException, LTIMalformedRequest
from ltikit.launch import Launch
from ltikit.lti13 import JWKSCache, Registrations, canvas_preset, verify_id_token
from ltikit.lti13.registrations import RECORD_NEW
from ltikit.roles import RoleGroups
from ltikit.storage import SQLStorage, upgrade
from ltikit.testing import Clock

ISS, CLIENT = "https://platform.example.edu", "10000000000042"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


class PlatformKeys:
    """Keys a platform signs with, published at a JWKS URL it serves."""

    def __init__(self):
        self.keys = {}  # kid -> private key
        self.published = []
        self.fetches = 0
        self.cache_control = "max-age=300"
        self.rotate()

    def rotate(self, kind="rsa"):
        kid = uuid.uuid4().hex[:8]
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048) \
            if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = private
        algorithm = jwt.algorithms.RSAAlgorithm if kind == "rsa" else jwt.algorithms.ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(private.public_key()))
        jwk.update(kid=kid, use="sig", alg="RS256" if kind == "rsa" else "ES256")
        self.published.append(jwk)
        return kid

    def app(self):
        app = Flask("platform_keys")

        @app.route("/jwks")
        def jwks():
            self.fetches += 1
            return Response(json.dumps({"keys": self.published}), mimetype="application/json",
                            headers={"Cache-Control": self.cache_control})

        return app

    def sign(self, claims, kid=None, algorithm=None):
        kid = kid or next(reversed(self.keys))
        private = self.keys[kid]
        algorithm = algorithm or ("RS256" if isinstance(private, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(claims, private, algorithm=algorithm, headers={"kid": kid})


def claims(**overrides):
    now = int(time.time())
    base = {
        "iss": ISS, "aud": CLIENT, "sub": "a6d5c443-1f51-4783-ba1a-7686ffe3b54a",
        "iat": now, "exp": now + 300, "nonce": uuid.uuid4().hex,
        "name": "Ada Teacher", "given_name": "Ada", "family_name": "Teacher",
        "email": "ada@example.edu",
        CLAIM + "message_type": "LtiResourceLinkRequest", CLAIM + "version": "1.3.0",
        CLAIM + "deployment_id": "1:deploy", CLAIM + "target_link_uri": "https://tool/launch",
        CLAIM + "resource_link": {"id": "rl-1", "title": "Quiz"},
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor"
                          "#TeachingAssistant",
                          "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"],
        CLAIM + "context": {"id": "ctx-1", "label": "BIO101", "title": "Biology",
                            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]},
        CLAIM + "custom": {"canvas_user_id": "10000000000042", "canvas_course_id": "7",
                           "canvas_api_domain": "canvas.example.edu"},
        CLAIM + "launch_presentation": {"document_target": "iframe", "locale": "en"},
        CLAIM + "tool_platform": {"guid": "g", "name": "Local U", "product_family_code": "canvas"},
    }
    for name, value in overrides.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def setup(tmp_path, clock):
    storage = SQLStorage(f"sqlite:///{tmp_path}/db.sqlite3")
    upgrade(storage.engine)
    keys = PlatformKeys()
    with serve(keys.app()) as base:
        registrations = Registrations(storage.engine)
        registrations.add(name="Test platform", issuer=ISS, client_id=CLIENT,
                          auth_login_url="https://platform.example.edu/auth",
                          token_url="https://platform.example.edu/token",
                          jwks_url=base + "/jwks", deployments=("1:deploy",))
        yield keys, registrations, JWKSCache(storage.engine, clock=clock), storage


def verify(setup, token, **kwargs):
    _, registrations, jwks, _ = setup
    return verify_id_token(token, registrations, jwks, **kwargs)


def test_a_valid_launch_fills_the_same_launch_model(setup):
    keys = setup[0]
    verified = verify(setup, keys.sign(claims()))
    launch = Launch.from_lti13(verified.claims, CLIENT)
    assert launch.version == "1.3" and launch.user.name == "Ada Teacher"
    assert launch.context.title == "Biology" and launch.resource_link.id == "rl-1"
    assert launch.canvas.user_id == "10000000000042"
    assert launch.canvas.api_domain == "canvas.example.edu"
    assert launch.deployment_id == "1:deploy"
    groups = RoleGroups()
    assert groups.check(launch.roles, "teaching_assistant") and groups.check(launch.roles, "staff")
    assert not groups.check(launch.roles, "instructor")  # Faculty is an institution role
    assert launch.ags_endpoint is None and launch.nrps_endpoint is None and launch.deep_linking is None


def test_the_services_offered_with_a_launch_are_in_the_model(setup):
    keys = setup[0]
    ags = "https://purl.imsglobal.org/spec/lti-ags/"
    verified = verify(setup, keys.sign(claims(**{
        ags + "claim/endpoint": {"scope": [ags + "scope/lineitem", ags + "scope/score"],
                                 "lineitems": "https://p/api/lti/courses/7/line_items",
                                 "lineitem": "https://p/api/lti/courses/7/line_items/3"},
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": "https://p/api/lti/courses/7/names_and_roles",
            "service_versions": ["2.0"]}})))
    launch = Launch.from_lti13(verified.claims, CLIENT)
    assert launch.ags_endpoint.scopes == (ags + "scope/lineitem", ags + "scope/score")
    assert launch.ags_endpoint.lineitem.endswith("/line_items/3")
    assert launch.nrps_endpoint.context_memberships_url.endswith("/names_and_roles")
    assert launch.nrps_endpoint.service_versions == ("2.0",)
    # A later request of the same launch gets the same model back.
    again = Launch.from_stored({"version": "1.3", "claims": dict(verified.claims),
                                "client_id": CLIENT})
    assert again.ags_endpoint == launch.ags_endpoint and again.nrps_endpoint == launch.nrps_endpoint


def test_a_deep_linking_request_carries_its_settings(setup):
    keys = setup[0]
    dl = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
    verified = verify(setup, keys.sign(claims(**{
        CLAIM + "message_type": "LtiDeepLinkingRequest", CLAIM + "resource_link": None,
        dl: {"deep_link_return_url": "https://p/deep_linking_response",
             "accept_types": ["ltiResourceLink", "link"], "accept_multiple": False,
             "accept_presentation_document_targets": ["iframe"], "data": "opaque-1"}})))
    settings = Launch.from_lti13(verified.claims, CLIENT).deep_linking
    assert settings.return_url == "https://p/deep_linking_response"
    assert settings.accept_types == ("ltiResourceLink", "link")
    assert settings.accept_multiple is False and settings.data == "opaque-1"


def test_keys_are_fetched_once_and_shared_by_another_worker(setup):
    keys, registrations, _, storage = setup
    for _ in range(5):
        verify(setup, keys.sign(claims()))
    assert keys.fetches == 1
    other_worker = JWKSCache(storage.engine)  # a new process: empty memory, same database
    verify_id_token(keys.sign(claims()), registrations, other_worker)
    assert keys.fetches == 1


def test_a_rotated_key_is_fetched_once_and_made_up_kids_cannot_flood_the_platform(
        setup, clock):
    keys, _, jwks, _ = setup
    verify(setup, keys.sign(claims()))
    clock.advance(jwks.refetch_interval)  # seconds between re-fetches of one URL
    new_kid = keys.rotate()
    assert verify(setup, keys.sign(claims(), kid=new_kid)).claims["sub"]
    assert keys.fetches == 2
    clock.advance(jwks.refetch_interval)  # the clock stands still during the flood
    for _ in range(20):
        forged = jwt.encode(claims(), keys.keys[new_kid], algorithm="RS256",
                            headers={"kid": uuid.uuid4().hex})
        with pytest.raises(LTIAuthenticationError, match="key the platform does not publish"):
            verify(setup, forged)
    assert keys.fetches == 3  # one re-fetch for the whole flood


@pytest.mark.parametrize(("change", "reason"), [
    ({"aud": "someone-else"}, "unknown_platform"),
    ({"iss": "https://evil.example.com"}, "unknown_platform"),
    ({"aud": [CLIENT, "other"]}, "bad_azp"),
    ({"aud": [CLIENT, "other"], "azp": "other"}, "unknown_platform"),
    ({"exp": int(time.time()) - 60}, "expired_id_token"),
    ({"iat": int(time.time()) + 600}, "future_id_token"),
    ({"nonce": None}, "invalid_id_token"),
    ({CLAIM + "deployment_id": "2:unknown"}, "unknown_deployment"),
])
def test_claims_that_do_not_hold_are_refused(setup, change, reason):
    with pytest.raises(LTIAuthenticationError) as refused:
        verify(setup, setup[0].sign(claims(**change)))
    assert refused.value.reason == reason and refused.value.status == 401


def test_several_audiences_with_our_azp_are_accepted(setup):
    token = setup[0].sign(claims(aud=["other", CLIENT], azp=CLIENT))
    assert verify(setup, token).claims["azp"] == CLIENT


@pytest.mark.parametrize(("change", "reason"), [
    ({CLAIM + "version": "1.1"}, "bad_version"),
    ({CLAIM + "message_type": "LtiStartProctoring"}, "wrong_message_type"),
    ({CLAIM + "resource_link": None}, "missing_claim"),
    ({CLAIM + "roles": "Instructor"}, "missing_claim"),
])
def test_malformed_lti_claims_are_400(setup, change, reason):
    with pytest.raises(LTIMalformedRequest) as refused:
        verify(setup, setup[0].sign(claims(**change)))
    assert refused.value.reason == reason and refused.value.status == 400


def test_none_and_hmac_with_the_public_key_are_refused(setup):
    keys = setup[0]
    unsigned = jwt.encode(claims(), None, algorithm="none")
    with pytest.raises(LTIAuthenticationError, match="'none' is not accepted"):
        verify(setup, unsigned)
    public_pem = next(iter(keys.keys.values())).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    import hmac as hmac_module

    header = jwt.utils.base64url_encode(json.dumps(
        {"alg": "HS256", "typ": "JWT", "kid": next(iter(keys.keys))}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(claims()).encode())
    mac = hmac_module.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    forged = (header + b"." + payload + b"." + jwt.utils.base64url_encode(mac)).decode()
    with pytest.raises(LTIAuthenticationError, match="'HS256' is not accepted"):
        verify(setup, forged)


def test_the_algorithm_is_pinned_by_the_key(setup, clock):
    keys = setup[0]
    kid = next(iter(keys.keys))
    ps256 = jwt.encode(claims(), keys.keys[kid], algorithm="PS256", headers={"kid": kid})
    with pytest.raises(LTIAuthenticationError) as refused:  # the JWK says alg RS256
        verify(setup, ps256)
    assert refused.value.reason == "algorithm_key_mismatch"
    ec_kid = keys.rotate("ec")
    clock.advance(setup[2].refetch_interval)  # past the next allowed re-fetch
    assert verify(setup, keys.sign(claims(), kid=ec_kid)).claims["sub"]


def test_a_tampered_token_is_refused(setup):
    token = setup[0].sign(claims())
    header, _, signature = token.split(".")
    evil = jwt.utils.base64url_encode(json.dumps(claims(sub="admin")).encode()).decode()
    with pytest.raises(LTIAuthenticationError) as refused:
        verify(setup, f"{header}.{evil}.{signature}")
    assert refused.value.reason == "bad_signature"
    with pytest.raises(LTIException):
        verify(setup, "not-a-jwt")


def test_new_canvas_deployments_are_recorded_under_record_new(tmp_path):
    storage = SQLStorage(f"sqlite:///{tmp_path}/db.sqlite3")
    upgrade(storage.engine)
    registrations = Registrations(storage.engine)
    preset = canvas_preset("10000000000099", "canvas.example.edu")
    assert preset["issuer"] == "https://canvas.instructure.com"
    assert preset["jwks_url"] == "https://sso.canvaslms.com/api/lti/security/jwks"
    assert preset["token_url"] == "https://canvas.example.edu/login/oauth2/token"
    keys = PlatformKeys()
    jwk = dict(keys.published[0])
    platform_id = registrations.add(**{**preset, "jwks_url": None, "public_jwk": jwk})
    registration = registrations.get(preset["issuer"], "10000000000099")
    assert registration.id == platform_id and registration.deployment_policy == RECORD_NEW
    token = keys.sign(claims(iss=preset["issuer"], aud="10000000000099",
                             **{CLAIM + "deployment_id": "77:abc"}))
    verified = verify_id_token(token, registrations, JWKSCache(storage.engine))
    assert verified.deployment_id == "77:abc"
    fresh = Registrations(storage.engine)  # another worker sees the recorded deployment
    fresh_registration = fresh.get(preset["issuer"], "10000000000099")
    with storage.engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT deployment_id FROM ltikit_deployments")).scalars() \
            .all() == ["77:abc"]
    assert fresh.accept_deployment(fresh_registration, "77:abc")


def test_oversized_and_garbage_tokens_are_refused_before_any_work(setup):
    keys = setup[0]
    huge = keys.sign(claims(padding="x" * 70_000))
    for token in (huge, "", "a.b.c", "e30.e30.", "\x00" * 10):
        with pytest.raises(LTIException) as refused:
            verify(setup, token)
        assert 400 <= refused.value.status < 500
    assert keys.fetches == 0  # nothing fetched for any of them


def test_a_token_without_kid_is_refused_even_when_the_platform_has_one_key(setup):
    """1EdTech certification: "No KID sent in JWT header" must be refused."""
    keys = setup[0]
    assert len(keys.published) == 1
    token = jwt.encode(claims(), next(iter(keys.keys.values())), algorithm="RS256")
    with pytest.raises(LTIAuthenticationError) as refused:
        verify(setup, token)
    assert refused.value.reason == "no_kid"


# -- fetching the platform's keys: no redirects, the status in the log only, one deadline --

@pytest.fixture
def tool_db(tmp_path):
    storage = SQLStorage(f"sqlite:///{tmp_path}/db.sqlite3")
    upgrade(storage.engine)
    return storage


def _register(storage, jwks_url):
    registrations = Registrations(storage.engine)
    registrations.add(name="Test platform", issuer=ISS, client_id=CLIENT,
                      auth_login_url="https://platform.example.edu/auth",
                      token_url="https://platform.example.edu/token",
                      jwks_url=jwks_url, deployments=("1:deploy",))
    return registrations


def test_a_key_set_url_that_redirects_is_not_followed(tool_db, caplog):
    """The https-only rule holds at fetch time too: a redirect (here to a key set the
    attacker controls, served over plain http) is not followed."""
    attacker = PlatformKeys()
    moved = Flask("moved")

    with serve(attacker.app()) as attacker_url:
        @moved.route("/jwks")
        def jwks():
            return Response(status=302, headers={"Location": attacker_url + "/jwks"})

        with serve(moved) as base:
            registrations = _register(tool_db, base + "/jwks")
            with pytest.raises(LTIException) as refused:
                verify_id_token(attacker.sign(claims()), registrations,
                                JWKSCache(tool_db.engine))
    assert refused.value.status == 503 and attacker.fetches == 0
    assert "302" not in refused.value.message and "HTTP" not in refused.value.message
    assert "HTTP 302" in caplog.text and "redirects are not followed" in caplog.text


def test_the_key_set_urls_answer_is_not_shown_to_the_user(tool_db, caplog):
    """A status on the user's page would be an oracle for what an internal URL answers."""
    missing = Flask("missing")
    missing.add_url_rule("/jwks", "jwks", lambda: ("no such thing", 404))
    with serve(missing) as base:
        registrations = _register(tool_db, base + "/jwks")
        with pytest.raises(LTIException) as refused:
            verify_id_token(PlatformKeys().sign(claims()), registrations,
                            JWKSCache(tool_db.engine))
    assert refused.value.status == 503
    assert refused.value.message == "The platform's keys could not be fetched."
    assert "HTTP 404" in caplog.text


def _trickling_server(first: bytes, then: bytes, every: float):
    """A raw HTTP server that sends ``first`` at once, then ``then`` one byte at a time,
    one every ``every`` seconds: each read waits less than any read timeout."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve_one(conn):
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(first)
                for byte in then:
                    if stop.wait(every):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", stop, listener


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_key_set_trickled_a_byte_at_a_time_is_given_up_at_the_deadline(tool_db, where):
    """A server sending a byte every 0.3 s never trips a 1 s read timeout; the fetch still
    ends at its total deadline (the review saw a launch held 23.4 s this way)."""
    body = json.dumps({"keys": PlatformKeys().published}).encode()
    if where == "headers":
        first, then = b"HTTP/1.1 200 OK\r\n", b"X-Padding: " + b"x" * 200 + b"\r\n\r\n"
    else:
        first = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body))
        then = body
    url, stop, listener = _trickling_server(first, then, every=0.3)
    try:
        registrations = _register(tool_db, url + "/jwks")
        started = time.monotonic()
        with pytest.raises(LTIException) as refused:
            verify_id_token(PlatformKeys().sign(claims()), registrations,
                            JWKSCache(tool_db.engine, timeout=(1.0, 1.5)))
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        listener.close()
    assert refused.value.status == 503
    assert 1.4 < elapsed < 2.5, elapsed


def test_canvas_custom_fields_left_unexpanded_by_another_platform_are_not_canvas():
    """A tool declares canvas_* custom fields for Canvas; Moodle sends them as written
    ("$Canvas.api.domain"), which must not look like a Canvas launch."""
    from ltikit.launch import Launch

    custom = "https://purl.imsglobal.org/spec/lti/claim/custom"
    moodle = Launch.from_lti13({custom: {"canvas_user_id": "$Canvas.user.id",
                                         "canvas_api_domain": "$Canvas.api.domain"}})
    assert moodle.canvas is None
    canvas = Launch.from_lti13({custom: {"canvas_user_id": "42",
                                         "canvas_course_id": "$Canvas.course.id",
                                         "canvas_api_domain": "canvas.example.edu"}})
    assert canvas.canvas is not None and canvas.canvas.user_id == "42"
    assert canvas.canvas.course_id is None  # outside a course Canvas leaves it as written
    assert Launch.from_lti11({"custom_canvas_user_id": "$Canvas.user.id"}, "key").canvas \
        is None


def test_an_inline_key_changed_under_the_same_registration_is_used_at_once(tmp_path, clock):
    """Inline keys are parsed once per registration and reused while its row is the same;
    a new key under the same registration id (here: another tool database in the same
    process, and the row rewritten) is never served from the old one's parse."""
    from sqlalchemy import update

    from ltikit.storage import tables

    first, second = PlatformKeys(), PlatformKeys()

    def registered(name, keys):
        storage = SQLStorage(f"sqlite:///{tmp_path}/{name}.sqlite3")
        upgrade(storage.engine)
        registrations = Registrations(storage.engine)
        registrations.add(name=name, issuer=ISS, client_id=CLIENT,
                          auth_login_url=ISS + "/auth", token_url=ISS + "/token",
                          public_jwk=keys.published[0], deployments=("1:deploy",))
        return storage, registrations

    storage_a, registrations_a = registered("a", first)
    _, registrations_b = registered("b", second)  # the same registration id, another key
    jwks = JWKSCache(storage_a.engine, clock=clock)
    for _ in range(2):
        assert verify_id_token(first.sign(claims()), registrations_a, jwks)
        assert verify_id_token(second.sign(claims()), registrations_b, jwks)
        with pytest.raises(LTIAuthenticationError):
            verify_id_token(second.sign(claims(), kid=next(iter(second.keys))),
                            registrations_a, jwks)
    # The platform's key replaced in the row (as `registrations add` again would).
    new_jwk = dict(second.published[0], kid=first.published[0]["kid"])
    with storage_a.engine.begin() as conn:
        conn.execute(update(tables.platforms).values(public_jwk=json.dumps(new_jwk)))
    registrations_a.forget()
    second_key = next(iter(second.keys.values()))
    token = jwt.encode(claims(), second_key, algorithm="RS256",
                       headers={"kid": first.published[0]["kid"]})
    assert verify_id_token(token, registrations_a, jwks)
    with pytest.raises(LTIAuthenticationError):
        verify_id_token(first.sign(claims()), registrations_a, jwks)
