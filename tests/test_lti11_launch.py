"""A platform launches the tool over LTI 1.1; the tool accepts what it should and nothing else.

Every launch here is signed by oauthlib's ``Client`` (body, query and header forms).
"""

from __future__ import annotations

import time

import pytest
from oauthlib.oauth1 import SIGNATURE_PLAINTEXT, SIGNATURE_TYPE_BODY, Client
from sqlalchemy import func, select

from conftest import KEY, LAUNCH_URL, SECRET, build_tool
from ltikit.storage import tables
from ltikit.testing import FORM, launch_params


def stored_launches(app):
    """Launches (each with its claimed nonce) in the tool's database."""
    engine = app.extensions["ltikit"].storage.engine
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(tables.launches)).scalar()


@pytest.mark.parametrize(("where", "method"), [("body", "POST"), ("query", "GET"),
                                                ("query", "POST"), ("header", "POST")])
def test_a_signed_launch_is_accepted_wherever_the_oauth_parameters_travel(
        client, signed, where, method):
    response = client.open(**signed(where=where, method=method).for_flask())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_data(as_text=True) == "hello Ada Teacher in Introduction to Biology"


def test_hmac_sha256_is_accepted_when_the_platform_uses_it(client, signed):
    response = client.open(**signed(signature_method="HMAC-SHA256").for_flask())
    assert response.status_code == 200


def test_a_launch_url_with_its_own_query_string_is_verified_with_it(client, signed):
    response = client.open(**signed(url=LAUNCH_URL + "?page=intro&x=a+b%2Fc").for_flask())
    assert response.status_code == 200


def test_percent_escapes_in_query_values_are_decoded_once(client, signed):
    # PyLTI issue #92: values were decoded twice, so this valid launch failed.
    response = client.open(**signed(where="query", method="GET",
                                    custom_path="a%2Fb 100%").for_flask())
    assert response.status_code == 200


def test_replayed_launch_is_refused_and_the_first_one_still_works(tool, client, signed):
    launch = signed()
    assert client.open(**launch.for_flask()).status_code == 200
    before = stored_launches(tool)
    replay = client.open(**launch.for_flask())
    assert replay.status_code == 401
    assert "already used" in replay.get_data(as_text=True)
    assert stored_launches(tool) == before


def test_same_nonce_under_another_consumer_key_is_not_a_replay(tmp_path, signed):
    app = build_tool(tmp_path, LTIKIT_CONSUMERS={KEY: SECRET, "other": "other-secret"})
    client = app.test_client()
    assert client.open(**signed(nonce="n-1").for_flask()).status_code == 200
    other = signed(nonce="n-1", key="other", secret="other-secret")
    assert client.open(**other.for_flask()).status_code == 200


@pytest.mark.parametrize("offset", [-301, 301, -10**6, 10**8])
def test_timestamps_outside_the_window_are_refused(tool, client, signed, offset):
    response = client.open(**signed(timestamp=int(time.time()) + offset).for_flask())
    assert response.status_code == 401
    assert stored_launches(tool) == 0


@pytest.mark.parametrize("offset", [-290, 290])
def test_timestamps_inside_the_window_are_accepted(client, signed, offset):
    assert client.open(**signed(timestamp=int(time.time()) + offset).for_flask()).status_code \
        == 200


def test_the_window_is_configurable(tmp_path, signed):
    app = build_tool(tmp_path, LTIKIT_TIMESTAMP_WINDOW=30)
    response = app.test_client().open(**signed(timestamp=int(time.time()) - 60).for_flask())
    assert response.status_code == 401


def _tampered(launch, name, value):
    """Replace one form field of a signed body launch without re-signing it."""
    from urllib.parse import parse_qsl, urlencode

    fields = [(k, value if k == name else v) for k, v in parse_qsl(launch.body)]
    if name not in dict(fields):
        fields.append((name, value))
    launch.body = urlencode(fields)
    return launch


@pytest.mark.parametrize(("name", "value", "status", "reason"), [
    ("roles", "Administrator", 401, "bad_signature"),
    ("oauth_signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", 401, "bad_signature"),
    ("oauth_consumer_key", "unknown-key", 401, "unknown_consumer_key"),
    ("oauth_signature", "", 400, "missing_oauth_parameter"),
    ("oauth_timestamp", "", 400, "missing_oauth_parameter"),
    ("oauth_timestamp", "yesterday", 400, "bad_timestamp"),
    ("oauth_timestamp", "1e9", 400, "bad_timestamp"),
    ("oauth_timestamp", "-5", 400, "bad_timestamp"),
    ("oauth_timestamp", "9" * 40, 400, "bad_timestamp"),
    ("oauth_nonce", "", 400, "missing_oauth_parameter"),
    ("oauth_nonce", "n" * 300, 400, "bad_nonce"),
    ("oauth_version", "2.0", 400, "bad_oauth_version"),
    ("oauth_signature_method", "RSA-SHA1", 401, "unsupported_signature_method"),
])
def test_broken_launches_get_a_clear_status_and_store_nothing(
        tool, client, signed, ltikit_log, name, value, status, reason):
    response = client.open(**_tampered(signed(), name, value).for_flask())
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert f"({reason})" in response.get_data(as_text=True)
    assert stored_launches(tool) == 0
    assert "Set-Cookie" not in response.headers
    refusal = [r for r in ltikit_log.records if "refused" in r.getMessage()]
    assert refusal and f"reason={reason}" in refusal[-1].getMessage()
    assert SECRET not in ltikit_log.text


def test_plaintext_signatures_are_refused_even_with_the_right_secret(tool, client):
    client_ = Client(KEY, client_secret=SECRET, signature_method=SIGNATURE_PLAINTEXT,
                     signature_type=SIGNATURE_TYPE_BODY)
    _url, headers, body = client_.sign(LAUNCH_URL, "POST", body=launch_params(),
                                      headers={"Content-Type": FORM})
    response = client.post("/launch", base_url="https://tool.example.edu", data=body,
                           headers=headers)
    assert response.status_code == 401
    assert "unsupported_signature_method" in response.get_data(as_text=True)
    assert stored_launches(tool) == 0


def test_a_launch_without_signature_method_is_not_assumed_plaintext(client, signed):
    response = client.open(**_tampered(signed(), "oauth_signature_method", "").for_flask())
    assert response.status_code == 400


def test_a_request_without_any_lti_parameters_is_a_400_not_a_500(client):
    response = client.post("/launch", base_url="https://tool.example.edu")
    assert response.status_code == 400
    assert "requires a valid oauth session or request" in response.get_data(as_text=True)


def test_a_garbled_authorization_header_is_a_400(client):
    response = client.post("/launch", base_url="https://tool.example.edu",
                           headers={"Authorization": 'OAuth oauth_nonce="unterminated'})
    assert response.status_code in (400, 401)
    assert response.status_code != 500


def test_repeated_oauth_parameters_are_refused(client, signed):
    launch = signed()
    launch.body += "&oauth_nonce=second"
    assert client.open(**launch.for_flask()).status_code == 400


def test_a_parameter_signed_twice_with_different_values_is_refused(client, signed):
    # Signed by the platform, so authentic, but ambiguous: which value is the user id?
    launch = signed(url=LAUNCH_URL + "?user_id=someone-else")
    response = client.open(**launch.for_flask())
    assert response.status_code == 400
    assert "duplicate_parameter" in response.get_data(as_text=True)


def test_another_message_type_is_refused_on_a_basic_launch_route(tool, client, signed):
    launch = signed(lti_message_type="ContentItemSelectionRequest")
    response = client.open(**launch.for_flask())
    assert response.status_code == 400
    assert "wrong_message_type" in response.get_data(as_text=True)
    assert stored_launches(tool) == 0


def test_a_route_can_accept_other_message_types(tmp_path, signed):
    from ltikit.flask import lti

    app = build_tool(tmp_path)

    @app.route("/select", methods=["POST"])
    @lti(request="initial", message_types={"ContentItemSelectionRequest"})
    def select_(lti):
        return lti.launch.message_type

    launch = signed(url="https://tool.example.edu/select",
                    lti_message_type="ContentItemSelectionRequest", resource_link_id=None)
    response = app.test_client().open(**launch.for_flask())
    assert response.get_data(as_text=True) == "ContentItemSelectionRequest"


@pytest.mark.parametrize("overrides", [{"lti_version": "LTI-2p0"}, {"lti_version": None},
                                       {"resource_link_id": None}])
def test_launches_with_wrong_or_missing_lti_fields_are_refused(client, signed, overrides):
    assert client.open(**signed(**overrides).for_flask()).status_code == 400


def test_error_page_escapes_whatever_the_request_carried(client, signed):
    launch = signed(lti_message_type="<script>alert(1)</script>")
    body = client.open(**launch.for_flask()).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_behind_a_tls_proxy_the_public_url_is_verified_when_trusted(tmp_path, signed):
    launch = signed()  # the platform signed https://tool.example.edu/launch
    proxied = launch.for_flask() | {"base_url": "http://127.0.0.1:8000",
                                    "headers": launch.headers | {
                                        "X-Forwarded-Proto": "https",
                                        "X-Forwarded-Host": "tool.example.edu"}}
    untrusting = build_tool(tmp_path / "a")
    assert untrusting.test_client().open(**proxied).status_code == 401
    trusting = build_tool(tmp_path / "b", LTIKIT_TRUSTED_PROXIES=1)
    assert trusting.test_client().open(**proxied).status_code == 200


def test_consumers_from_pylti_config_and_from_the_database(tmp_path, signed):
    app = build_tool(tmp_path, LTIKIT_CONSUMERS={},
                     PYLTI_CONFIG={"consumers": {"pylti-key": {"secret": "pylti-secret"}}})
    app.extensions["ltikit"].storage.add_consumer("db-key", "db-secret")
    client = app.test_client()
    assert client.open(**signed(key="pylti-key", secret="pylti-secret").for_flask()) \
        .status_code == 200
    assert client.open(**signed(key="db-key", secret="db-secret").for_flask()).status_code \
        == 200
    assert client.open(**signed(key="db-key", secret="wrong").for_flask()).status_code == 401


# -- oversized requests: refused with 413 before they are parsed ----------------------------

@pytest.mark.parametrize("make", [
    lambda signed: {**signed().for_flask(), "data": "x=" + "a" * 5_000_000,
                    "content_type": "application/x-www-form-urlencoded"},
    lambda signed: {**signed().for_flask(), "data": "&".join(f"p{i}=1" for i in range(10_000)),
                    "content_type": "application/x-www-form-urlencoded"},
    lambda signed: {"path": "/launch?" + "&".join(f"p{i}=1" for i in range(5_000)),
                    "method": "GET", "base_url": "https://tool.example.edu"},
], ids=["5 MB body", "10k fields", "5k query fields"])
def test_oversized_launches_are_refused_with_413_before_parsing(tool, signed, make, caplog):
    import time as clock

    client = tool.test_client()
    started = clock.perf_counter()
    response = client.open(**make(signed))
    assert response.status_code == 413, response.get_data(as_text=True)
    assert "(too_large)" in response.get_data(as_text=True)
    assert clock.perf_counter() - started < 0.25
    assert "too_large" in caplog.text and "aaaaaaaa" not in caplog.text


def test_the_limits_are_settings_and_a_normal_launch_fits(tmp_path, signed):
    from conftest import build_tool

    small = build_tool(tmp_path, LTIKIT_MAX_REQUEST_BYTES=1024, LTIKIT_MAX_FORM_FIELDS=20)
    assert small.test_client().open(**signed().for_flask()).status_code == 413
    roomy = build_tool(tmp_path / "b", LTIKIT_MAX_FORM_FIELDS=200)
    assert roomy.test_client().open(**signed().for_flask()).status_code == 200


def test_an_oversized_login_and_callback_are_refused(tmp_path):
    from conftest import build_tool
    from ltikit.crypto import SecretBox

    app = build_tool(tmp_path, LTIKIT_ENCRYPTION_KEYS=SecretBox.generate_key(),
                     LTIKIT_CANVAS_INSTANCES={"canvas.local": {
                         "client_id": "1", "client_secret": "s", "scopes": []}})
    client = app.test_client()
    many = "&".join(f"p{i}=1" for i in range(2000))
    assert client.get("/ltikit/canvas/callback?state=x&" + many).status_code == 413
    login = client.get("/lti13/login?" + many)
    assert login.status_code == 413
    posted = client.post("/lti13/login", data="x=" + "a" * 1_000_000,
                         content_type="application/x-www-form-urlencoded")
    assert posted.status_code == 413
