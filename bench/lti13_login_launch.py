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
from ltikit.flask.lti13 import state_cookie_name
from ltikit.lti13 import Registrations
from ltikit.lti13.oidc import state_cookie_value

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

    return app, key


def token(key, nonce):
    now = int(time.time())
    return jwt.encode({
        "iss": ISS, "aud": CLIENT, "sub": uuid.uuid4().hex, "iat": now, "exp": now + 600,
        "nonce": nonce, CLAIM + "message_type": "LtiResourceLinkRequest",
        CLAIM + "version": "1.3.0", CLAIM + "deployment_id": "1:d",
        CLAIM + "target_link_uri": BASE + "/launch", CLAIM + "resource_link": {"id": "r"},
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    }, key, algorithm="RS256", headers={"kid": "k1"})


def ltikit_round(app, key, count):
    client = app.test_client()
    params = {"iss": ISS, "login_hint": "u", "target_link_uri": BASE + "/launch",
              "client_id": CLIENT}
    # Sign first (a platform's work, not ours): log in, collect state and nonce...
    logins = []
    for _ in range(count):
        response = client.get("/lti13/login", query_string=params, base_url=BASE)
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        logins.append((query["state"][0], token(key, query["nonce"][0])))
    # ...then time a fresh login plus a launch per iteration, reusing the signed tokens
    # with their own states (the extra logins cost the same as the timed ones).
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    for state, id_token in logins:
        client = app.test_client()  # a browser holds the cookies of its own logins only
        client.get("/lti13/login", query_string=params, base_url=BASE)
        # The cookie this login's browser holds (the timed login set another one).
        client.set_cookie(state_cookie_name(state), state_cookie_value(state),
                          domain="tool.example.edu")
        response = client.post("/launch", data={"id_token": id_token, "state": state},
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
        ltikit_round(app, key, 50)
        bare_round(app, 50)
        ours, bare = [], []
        for _ in range(args.rounds):
            bare.append(bare_round(app, args.launches))
            ours.append(ltikit_round(app, key, args.launches))
    b, o = min(bare), min(ours)
    print(f"two bare routes        : {b * 1e6:8.1f} µs per login+launch "
          f"(median {statistics.median(bare) * 1e6:.1f})")
    print(f"ltikit 1.3 login+launch: {o * 1e6:8.1f} µs (median "
          f"{statistics.median(ours) * 1e6:.1f}), ratio {o / b:.2f}x")


if __name__ == "__main__":
    main()
