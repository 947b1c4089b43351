"""Service access tokens shared by workers, on SQLite and on a real PostgreSQL server.

A small token endpoint stands in for a platform's: it checks the client assertion with the
tool's public key, counts the grants, and can revoke what it granted.
"""

from __future__ import annotations

import threading

import jwt
import pytest
from flask import Flask, jsonify, request

from browser import serve
from ltikit.crypto import SecretBox
from ltikit.lti13 import Registrations
from ltikit.lti13.services import CLIENT_ASSERTION_TYPE, ServiceTokens
from ltikit.lti13.tool_keys import ToolKeys
from ltikit.storage import SQLStorage, upgrade

SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


class TokenEndpoint:
    def __init__(self, keys: ToolKeys) -> None:
        self.keys, self.grants, self.jtis = keys, [], set()

    def app(self) -> Flask:
        app = Flask("tokens")

        @app.post("/token")
        def token():
            form = request.form
            assert form["grant_type"] == "client_credentials"
            assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
            public = jwt.PyJWK(self.keys.jwks()["keys"][0]).key
            claims = jwt.decode(form["client_assertion"], public, algorithms=["RS256"],
                                audience=request.base_url)
            assert claims["iss"] == claims["sub"] == "client-1"
            assert claims["jti"] not in self.jtis  # a fresh assertion every time
            self.jtis.add(claims["jti"])
            self.grants.append(form["scope"])
            return jsonify(access_token=f"token-{len(self.grants)}", token_type="Bearer",
                           expires_in=3600, scope=form["scope"])

        return app


@pytest.fixture
def world(database_url):
    storage = SQLStorage(database_url)
    upgrade(storage.engine)
    box = SecretBox(SecretBox.generate_key())
    keys = ToolKeys(storage.engine, box)
    keys.generate()
    endpoint = TokenEndpoint(keys)
    with serve(endpoint.app()) as url:
        registrations = Registrations(storage.engine)
        registrations.add(name="p", issuer="https://platform.example.edu",
                          client_id="client-1", auth_login_url="https://p/auth",
                          token_url=url + "/token", jwks_url="https://p/jwks")
        yield storage, box, endpoint, registrations.get("https://platform.example.edu",
                                                        "client-1"), database_url


def test_eight_workers_share_one_grant_and_a_refused_token_is_replaced_once(world):
    storage, box, endpoint, registration, url = world
    barrier, tokens = threading.Barrier(8), []

    def worker():
        engine = SQLStorage(url).engine  # its own engine and pool, as a process has
        service = ServiceTokens(engine, ToolKeys(engine, box), box)
        barrier.wait()
        tokens.append(service.token(registration, [SCORE]))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert tokens == ["token-1"] * 8 and endpoint.grants == [SCORE]
    # The platform refused token-1: one worker gets token-2, the next caller reuses it.
    first = ServiceTokens(storage.engine, ToolKeys(storage.engine, box), box)
    assert first.refused(registration, [SCORE], "token-1") == "token-2"
    other = ServiceTokens(SQLStorage(url).engine, ToolKeys(storage.engine, box), box)
    assert other.refused(registration, [SCORE], "token-1") == "token-2"  # already replaced
    assert other.token(registration, [SCORE]) == "token-2"
    assert len(endpoint.grants) == 2


def test_tokens_are_encrypted_at_rest_and_kept_per_scope_set(world):
    storage, box, endpoint, registration, _ = world
    service = ServiceTokens(storage.engine, ToolKeys(storage.engine, box), box)
    assert endpoint.grants == []
    lineitem = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
    assert service.token(registration, [SCORE, lineitem]) == "token-1"
    assert service.token(registration, [lineitem, SCORE]) == "token-1"  # same set
    assert service.token(registration, [SCORE]) == "token-2"
    with storage.engine.connect() as conn:
        from sqlalchemy import text

        stored = conn.execute(text("SELECT access_token FROM ltikit_service_tokens")) \
            .scalars().all()
    assert len(stored) == 2 and not any("token-" in value for value in stored)
    assert sorted(box.decrypt(value) for value in stored) == ["token-1", "token-2"]
