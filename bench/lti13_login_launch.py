"""Cost of an LTI 1.3 login + launch through ltikit against two bare Flask routes, in one
process.

    .venv/bin/python bench/lti13_login_launch.py [--launches 1000] [--rounds 5]

A 1.3 launch is two requests: the OIDC login (the tool stores a state and a nonce and
redirects) and the launch (the tool takes the state, verifies the RS256 id_token against
the platform key, claims the nonce and stores the launch in a SQLite file, committed
before the response).  The bare side is two Flask routes doing what a framework does
anyway: the first redirects, the second parses the form and returns a string.  id_tokens
are signed before timing; the platform key is served inline (no network), as a warm JWKS
cache would serve it.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, redirect, request

from ltikit.flask import LTIKit, lti

try:  # only for the comparison: pip install PyLTI1p3 (in another venv, on PYTHONPATH)
    import pylti1p3  # noqa: F401

    PYLTI1P3 = True
except ImportError:
    PYLTI1P3 = False
from ltikit.lti13 import Registrations

ISS, CLIENT, BASE = "https://platform.example.edu", "10000000000042", "https://tool.example.edu"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


def build(tmp: Path):
    app = Flask("bench13", instance_path=str(tmp))
    app.config.update(SECRET_KEY="bench", LTIKIT_DATABASE_URL=f"sqlite:///{tmp}/b.sqlite3")
    LTIKit(app)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", alg="RS256", use="sig")
    Registrations(app.extensions["ltikit"].storage.engine).add(
        name="bench", issuer=ISS, client_id=CLIENT, auth_login_url=ISS + "/auth",
        token_url=ISS + "/token", public_jwk=jwk, deployments=("1:d",))

    @app.route("/bare-login")
    def bare_login():
        return redirect(ISS + "/auth?state=" + request.args.get("login_hint", ""))

    @app.route("/bare-launch", methods=["POST"])
    def bare_launch():
        return f"hello {request.form.get('state')}"

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        return f"hello {lti.user.id}"

    if PYLTI1P3:
        _pylti1p3_routes(app, key, jwk)
    return app, key


def _pylti1p3_routes(app, key, jwk):
    """pylti1p3's Flask flow, as its example app does it (state cookie and nonce in the
    Flask session, launch data saved in the session), with the platform key inline."""
    from cryptography.hazmat.primitives import serialization
    from flask import session
    from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
    from pylti1p3.tool_config import ToolConfDict

    config = ToolConfDict({ISS: [{
        "default": True, "client_id": CLIENT, "auth_login_url": ISS + "/auth",
        "auth_token_url": ISS + "/token", "key_set_url": None, "key_set": {"keys": [jwk]},
        "deployment_ids": ["1:d"]}]})
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    config.set_private_key(ISS, pem, client_id=CLIENT)

    @app.route("/p13/login")
    def p13_login():
        return FlaskOIDCLogin(FlaskRequest(), config).redirect(BASE + "/p13/launch")

    @app.route("/p13/launch", methods=["POST"])
    def p13_launch():
        data = FlaskMessageLaunch(FlaskRequest(), config).get_launch_data()
        session.modified = True
        return f"hello {data['sub']}"


def token(key, nonce, target=BASE + "/launch"):
    now = int(time.time())
    return jwt.encode({
        "iss": ISS, "aud": CLIENT, "sub": uuid.uuid4().hex, "iat": now, "exp": now + 600,
        "nonce": nonce, CLAIM + "message_type": "LtiResourceLinkRequest",
        CLAIM + "version": "1.3.0", CLAIM + "deployment_id": "1:d",
        CLAIM + "target_link_uri": target, CLAIM + "resource_link": {"id": "r"},
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    }, key, algorithm="RS256", headers={"kid": "k1"})


def prepared(app, key, count, login_path, launch_path):
    """``count`` browsers, each after its own login, with the id_token the platform signed
    for that login's nonce (the platform's work, not timed)."""
    params = {"iss": ISS, "login_hint": "u", "target_link_uri": BASE + launch_path,
              "client_id": CLIENT}
    browsers = []
    for _ in range(count):
        client = app.test_client()
        response = client.get(login_path, query_string=params, base_url=BASE)
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        browsers.append((client, query["state"][0], token(key, query["nonce"][0],
                                                          BASE + launch_path)))
    return params, browsers


def timed_round(app, key, count, login_path="/lti13/login", launch_path="/launch"):
    """Per browser: a fresh login (timed; its result unused) and the launch of the earlier
    login (timed), so every timed step does the full work."""
    params, browsers = prepared(app, key, count, login_path, launch_path)
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    for client, state, id_token in browsers:
        client.get(login_path, query_string=params, base_url=BASE)
        response = client.post(launch_path, data={"id_token": id_token, "state": state},
                               base_url=BASE)
        assert response.status_code == 200, response.get_data(as_text=True)
    elapsed = time.perf_counter() - start
    gc.unfreeze()
    return elapsed / count


def bare_round(app, count):
    client = app.test_client()
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    for i in range(count):
        client.get("/bare-login", query_string={"login_hint": str(i)}, base_url=BASE)
        client.post("/bare-launch", data={"id_token": "x" * 1200, "state": str(i)},
                    base_url=BASE)
    elapsed = time.perf_counter() - start
    gc.unfreeze()
    return elapsed / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--launches", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("ltikit").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        app, key = build(Path(tmp))
        timed_round(app, key, 50)
        bare_round(app, 50)
        ours, bare, theirs = [], [], []
        for _ in range(args.rounds):
            bare.append(bare_round(app, args.launches))
            ours.append(timed_round(app, key, args.launches))
            if PYLTI1P3:
                theirs.append(timed_round(app, key, args.launches, "/p13/login",
                                          "/p13/launch"))
    b, o = min(bare), min(ours)
    print(f"two bare routes          : {b * 1e6:8.1f} µs per login+launch "
          f"(median {statistics.median(bare) * 1e6:.1f})")
    print(f"ltikit 1.3 login+launch  : {o * 1e6:8.1f} µs (median "
          f"{statistics.median(ours) * 1e6:.1f}), ratio {o / b:.2f}x")
    if theirs:
        t = min(theirs)
        print(f"pylti1p3 login+launch    : {t * 1e6:8.1f} µs (median "
              f"{statistics.median(theirs) * 1e6:.1f}), ratio {t / b:.2f}x")


if __name__ == "__main__":
    main()
