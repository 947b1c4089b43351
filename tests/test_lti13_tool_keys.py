"""The tool's LTI 1.3 keys: made by the CLI, stored encrypted, published, rotated."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jwt
from sqlalchemy import select

from conftest import build_tool
from ltikit.crypto import SecretBox
from ltikit.lti13.tool_keys import ToolKeys
from ltikit.storage import tables


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_keys_from_the_cli_are_published_by_the_tool_and_sign_verifiable_jwts(tmp_path):
    key = SecretBox.generate_key()
    db = f"sqlite:///{tmp_path}/ltikit.sqlite3"
    made = subprocess.run([sys.executable, "-m", "ltikit.cli", "--database-url", db,
                           "tool-keys", "generate"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "LTIKIT_ENCRYPTION_KEYS": key})
    assert made.returncode == 0, made.stderr
    kid = made.stdout.split(": ")[1].strip()
    app = build_tool(tmp_path, LTIKIT_ENCRYPTION_KEYS=key)
    published = app.test_client().get("/lti13/jwks", base_url="https://tool.example.edu")
    assert published.status_code == 200
    jwks = published.get_json()
    assert [k["kid"] for k in jwks["keys"]] == [kid]
    assert "d" not in jwks["keys"][0]  # no private part
    with app.extensions["ltikit"].storage.engine.connect() as conn:
        stored = conn.execute(select(tables.tool_keys.c.private_key)).scalar()
    assert "PRIVATE KEY" not in stored  # encrypted at rest
    token = app.extensions["ltikit"].lti13.tool_keys().sign({"iss": "tool", "aud": "platform"})
    public = jwt.PyJWK(jwks["keys"][0])
    assert jwt.decode(token, public.key, algorithms=["RS256"], audience="platform")["iss"] \
        == "tool"


def test_rotation_keeps_old_keys_published_for_the_overlap(tmp_path):
    from ltikit.storage import SQLStorage, upgrade

    storage = SQLStorage(f"sqlite:///{tmp_path}/db.sqlite3")
    upgrade(storage.engine)
    clock = Clock(1_000_000)
    keys = ToolKeys(storage.engine, SecretBox(SecretBox.generate_key()), clock=clock)
    first = keys.generate()
    second = keys.rotate(overlap=3600)
    assert keys.signing_key()[0] == second
    assert {k["kid"] for k in keys.jwks()["keys"]} == {first, second}
    clock.now += 3601
    assert [k["kid"] for k in keys.jwks()["keys"]] == [second]
    assert json.dumps(keys.jwks())  # JSON-able
