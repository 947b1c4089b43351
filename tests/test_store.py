"""One persistence boundary: a tool's Store owns the engine, the repositories, one lease
protocol for tokens renewed by one worker at a time, and the clock they all use."""

from __future__ import annotations

import threading

import pytest
from flask import Flask
from sqlalchemy import insert, select

from ltikit.crypto import SecretBox
from ltikit.errors import LTIConfigurationError
from ltikit.flask import LTIKit, lti
from ltikit.storage import tables, upgrade
from ltikit.storage.lease import Lease
from ltikit.store import Store
from ltikit.testing import Clock
from ltikit.testing.lti13 import TestPlatform

TOOL = "https://tool.example.edu"


def test_the_store_given_to_the_extension_is_the_one_it_uses(tmp_path):
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path}/tool.sqlite3",
                  encryption_keys=SecretBox.generate_key(), clock=clock)
    upgrade(store.engine)
    store.tool_keys.generate()
    platform = TestPlatform()
    platform.register(store.registrations)  # before the app exists: an operator's script

    app = Flask("tool", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="tool-secret", LTIKIT_LAUNCH_LIFETIME=60)
    kit = LTIKit(app, storage=store)

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        return f"launch {lti.launch_id}"

    @app.route("/later")
    @lti(request="session")
    def later(lti):
        return "later"

    assert kit.store is store and kit.registrations is store.registrations
    assert kit.tool_keys.jwks() == store.tool_keys.jwks()
    client = app.test_client()
    assert platform.launch(client, TOOL + "/launch").status_code == 200
    assert client.get("/later", base_url=TOOL).status_code == 200
    clock.advance(61)  # the store's clock times the launch
    assert client.get("/later", base_url=TOOL).status_code == 401
    with store.engine.connect() as conn:  # and its database holds it
        assert conn.execute(select(tables.launches)).first() is not None


def test_secrets_need_the_encryption_keys_and_say_how_to_make_one(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/tool.sqlite3")
    upgrade(store.engine)
    with pytest.raises(LTIConfigurationError, match="ltikit keys generate") as refused:
        store.tool_keys  # noqa: B018
    assert refused.value.reason == "no_encryption_key"


def test_of_many_workers_renewing_one_token_exactly_one_holds_the_lease(database_url):
    """The lease of a token row, claimed by 12 threads at once (on SQLite and PostgreSQL):
    one wins; the row's version must also still be the one read; a dead holder's lease
    runs out."""
    clock = Clock()
    store = Store(database_url, encryption_keys=SecretBox.generate_key(), clock=clock)
    upgrade(store.engine)
    t = tables.canvas_tokens
    with store.engine.begin() as conn:
        conn.execute(insert(t).values(instance="canvas.example.edu", canvas_user_id="7",
                                      access_token="x", version=3, updated_at=0,
                                      failures=0))
    lease = Lease(store.engine, t.c.refreshing_until, clock=clock)
    row = (t.c.instance == "canvas.example.edu") & (t.c.canvas_user_id == "7")
    start = threading.Barrier(12)
    won = []

    def claim():
        start.wait()
        won.append(lease.claim(row & (t.c.version == 3), 5))

    threads = [threading.Thread(target=claim) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert won.count(True) == 1
    assert not lease.claim(row & (t.c.version == 2), 5)  # someone renewed it meanwhile
    clock.advance(6)  # the holder died: its lease has run out
    assert lease.claim(row & (t.c.version == 3), 5)
    lease.release(row)
    assert lease.claim(row, 5)
    assert lease.pause(clock() - 1) is None  # past the waiter's deadline: no sleeping
