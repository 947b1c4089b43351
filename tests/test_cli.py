"""An operator manages consumer keys with the `ltikit` command; the tool uses them at once."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import build_tool
from ltikit.storage.sql import head_revision


def ltikit(*args, db):
    return subprocess.run([sys.executable, "-m", "ltikit.cli", "--database-url", db, *args],
                          capture_output=True, text=True, timeout=120)


def test_consumers_added_on_the_command_line_can_launch(tmp_path, signed):
    db = f"sqlite:///{tmp_path}/ltikit.sqlite3"
    upgraded = ltikit("db", "upgrade", db=db)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"revision {head_revision()}" in upgraded.stdout
    added = ltikit("consumers", "add", "moodle", db=db)
    assert added.returncode == 0, added.stderr
    secret = re.search(r"shared secret: (\S+)", added.stdout).group(1)
    assert len(secret) >= 40
    assert ltikit("consumers", "add", "moodle", db=db).returncode == 1
    assert ltikit("consumers", "list", db=db).stdout.split() == ["moodle"]

    client = build_tool(tmp_path, LTIKIT_CONSUMERS={}).test_client()
    assert client.open(**signed(key="moodle", secret=secret).for_flask()).status_code == 200

    assert ltikit("consumers", "remove", "moodle", db=db).returncode == 0
    fresh_worker = build_tool(tmp_path, LTIKIT_CONSUMERS={}).test_client()
    assert fresh_worker.open(**signed(key="moodle", secret=secret).for_flask()).status_code \
        == 401


def test_missing_database_url_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("LTIKIT_DATABASE_URL", raising=False)
    result = subprocess.run([sys.executable, "-m", "ltikit.cli", "consumers", "list"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--database-url" in result.stderr


def test_with_encryption_keys_consumer_secrets_are_stored_encrypted(tmp_path, signed):
    import os

    from sqlalchemy import create_engine, text

    from ltikit.crypto import SecretBox

    key = SecretBox.generate_key()
    db = f"sqlite:///{tmp_path}/ltikit.sqlite3"
    added = subprocess.run(
        [sys.executable, "-m", "ltikit.cli", "--database-url", db, "consumers", "add", "d2l"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "LTIKIT_ENCRYPTION_KEYS": key})
    assert added.returncode == 0 and "unencrypted" not in added.stderr
    secret = re.search(r"shared secret: (\S+)", added.stdout).group(1)
    with create_engine(db).connect() as conn:
        stored = conn.execute(text("SELECT secret FROM ltikit_consumers")).scalar()
    assert secret not in stored
    client = build_tool(tmp_path, LTIKIT_CONSUMERS={}, LTIKIT_ENCRYPTION_KEYS=key).test_client()
    assert client.open(**signed(key="d2l", secret=secret).for_flask()).status_code == 200
    unkeyed = ltikit("consumers", "add", "other", db=db)
    assert "stored unencrypted" in unkeyed.stderr


def test_lti13_platforms_are_registered_from_the_command_line(tmp_path):
    from ltikit.lti13 import Registrations
    from ltikit.storage import SQLStorage

    db = f"sqlite:///{tmp_path}/ltikit.sqlite3"
    canvas = ltikit("registrations", "add-canvas", "10000000000077", "canvas.example.edu",
                    "--deployment", "1:abc", db=db)
    assert canvas.returncode == 0, canvas.stderr
    assert "https://canvas.instructure.com client 10000000000077" in canvas.stdout
    again = ltikit("registrations", "add-canvas", "10000000000077", "canvas.example.edu", db=db)
    assert again.returncode == 1 and "already has client id" in again.stderr
    insecure = ltikit("registrations", "add", "--issuer", "http://moodle.example.edu",
                      "--client-id", "x", "--auth-login-url", "http://moodle.example.edu/auth",
                      "--token-url", "http://moodle.example.edu/token", "--jwks-url",
                      "http://moodle.example.edu/certs", db=db)
    assert insecure.returncode == 1 and "must be https://" in insecure.stderr
    listed = ltikit("registrations", "list", db=db)
    assert listed.stdout.split("\t")[1:3] == ["https://canvas.instructure.com", "10000000000077"]
    # The command's old name still works, and says what it is called now.
    old_name = ltikit("platforms", "list", db=db)
    assert old_name.stdout == listed.stdout and "ltikit registrations" in old_name.stderr
    registration = Registrations(SQLStorage(db).engine).get(
        "https://canvas.instructure.com", "10000000000077")
    assert registration.auth_login_url == "https://sso.canvaslms.com/api/lti/authorize_redirect"
    assert Registrations(SQLStorage(db).engine).accept_deployment(registration, "1:abc")
    # Canvas offers platform storage; its services live on the Canvas domain.
    assert registration.platform_storage
    assert registration.service_url_allowed("https://canvas.example.edu/api/lti/courses/1/line_items")
    moodle = ltikit("registrations", "add", "--issuer", "https://moodle.example.edu",
                    "--client-id", "m1", "--auth-login-url", "https://moodle.example.edu/auth",
                    "--token-url", "https://moodle.example.edu/token", "--jwks-url",
                    "https://moodle.example.edu/certs", "--service-origin",
                    "https://files.example.edu", db=db)
    assert moodle.returncode == 0, moodle.stderr
    moodle = Registrations(SQLStorage(db).engine).get("https://moodle.example.edu", "m1")
    assert not moodle.platform_storage  # unless --platform-storage says so
    assert moodle.service_origins == ("https://files.example.edu",)
    assert not moodle.service_url_allowed("https://elsewhere.example.edu/lineitems")


def test_upgrading_turns_platform_storage_on_for_existing_canvas_registrations(tmp_path):
    """Canvas-preset registrations made before the platform_storage flag kept using Canvas's
    storage frame; the migration keeps them doing so, and leaves the others off."""
    from sqlalchemy import create_engine, text

    from ltikit.storage import upgrade

    engine = create_engine(f"sqlite:///{tmp_path}/old.sqlite3")
    upgrade(engine, "0008")
    with engine.begin() as conn:
        for client, auth in (("c", "https://sso.canvaslms.com/api/lti/authorize_redirect"),
                             ("m", "https://moodle.example.edu/mod/lti/auth.php")):
            conn.execute(text(
                "INSERT INTO ltikit_platforms (name, issuer, client_id, auth_login_url, "
                "token_url, jwks_url, deployment_policy, created_at) VALUES "
                "('p', 'https://i', :client, :auth, 'https://t/token', 'https://j', "
                "'allow_list', 0)"), {"client": client, "auth": auth})
    upgrade(engine)
    with engine.connect() as conn:
        rows = {client: storage for client, storage in conn.execute(
            text("SELECT client_id, platform_storage FROM ltikit_platforms"))}
    assert rows == {"c": 1, "m": 0}
