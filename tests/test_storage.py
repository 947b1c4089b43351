"""ltikit's tables: created by Alembic, cleaned without a cron job."""

from __future__ import annotations

from sqlalchemy import func, inspect, select, text

from ltikit.storage import SQLStorage, tables, upgrade
from ltikit.storage.sql import current_revision, head_revision


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def count(storage, table):
    with storage.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def begin(storage, nonce, *, at, nonce_ttl=300, launch_ttl=3600):
    return storage.begin_launch(consumer_key="k", nonce=nonce, nonce_expires_at=at + nonce_ttl,
                                launch_id=f"id-{nonce}", data={"n": nonce},
                                expires_at=at + launch_ttl)


def test_expired_nonces_and_launches_are_purged_in_passing(tmp_path):
    clock = Clock(1_000_000)
    storage = SQLStorage(f"sqlite:///{tmp_path}/db.sqlite3", purge_interval=60, clock=clock)
    upgrade(storage.engine)
    assert begin(storage, "a", at=1_000_000)
    assert not begin(storage, "a", at=1_000_000)  # replay while remembered
    clock.now += 30
    assert begin(storage, "b", at=int(clock.now))
    assert count(storage, tables.nonces) == 2
    clock.now = 1_000_000 + 4000  # both nonces and the first launch are past expiry
    assert begin(storage, "c", at=int(clock.now))
    assert count(storage, tables.nonces) == 1
    assert count(storage, tables.launches) == 1
    assert storage.load_launch("id-c", int(clock.now)) == {"n": "c"}
    assert storage.load_launch("id-a", int(clock.now)) is None


def test_upgrade_is_idempotent_and_keeps_its_own_version_table(tmp_path):
    url = f"sqlite:///{tmp_path}/app.sqlite3"
    storage = SQLStorage(url)
    with storage.engine.begin() as conn:  # the app's own Alembic history, untouched
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('app123')"))
    upgrade(url)
    upgrade(url)
    assert current_revision(url) == head_revision()
    names = set(inspect(storage.engine).get_table_names())
    assert {"ltikit_nonces", "ltikit_launches", "ltikit_consumers",
            "ltikit_alembic_version"} <= names
    with storage.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "app123"


def test_consumers_in_the_database(tmp_path):
    storage = SQLStorage(f"sqlite:///{tmp_path}/db.sqlite3")
    upgrade(storage.engine)
    storage.add_consumer("canvas", "s1")
    assert storage.consumer_secret("canvas") == "s1"
    assert storage.consumer_secret("other") is None
    import pytest

    with pytest.raises(ValueError, match="already exists"):
        storage.add_consumer("canvas", "s2")
    assert storage.consumer_keys() == ["canvas"]
    assert storage.remove_consumer("canvas")
    assert storage.consumer_secret("canvas") is None
