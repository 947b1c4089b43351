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


def begin(storage, nonce, *, at, ttl=3600):
    return storage.begin_launch(issuer="k", nonce=nonce, secret=f"s-{nonce}",
                                data=f"data-{nonce}", expires_at=at + ttl)


def test_a_nonce_is_claimed_once_and_its_launch_found_with_its_secret(database_url):
    storage = SQLStorage(database_url)
    upgrade(storage.engine)
    row = begin(storage, "a", at=1_000_000)
    assert row is not None
    assert begin(storage, "a", at=1_000_000) is None  # replay
    assert storage.begin_launch(issuer="other-key", nonce="a", secret="s", data="d",
                                expires_at=1_003_600) is not None  # nonces are per issuer
    assert storage.load_launch(row, "s-a", 1_000_000) == "data-a"
    assert storage.load_launch(row, "s-b", 1_000_000) is None  # wrong secret
    assert storage.load_launch(row, "s-a", 1_003_600) is None  # expired
    storage.delete_launch(row)
    assert storage.load_launch(row, "s-a", 1_000_000) is None


def test_expired_launches_are_purged_in_passing(database_url):
    clock = Clock(1_000_000)
    storage = SQLStorage(database_url, purge_interval=60, clock=clock)
    upgrade(storage.engine)
    a = begin(storage, "a", at=1_000_000, ttl=300)
    clock.now += 30
    b = begin(storage, "b", at=int(clock.now), ttl=3600)
    clock.now += 30
    c = begin(storage, "c", at=int(clock.now), ttl=300)  # expires before b
    assert count(storage, tables.launches) == 3
    clock.now = 1_000_000 + 400  # a and c are past expiry, b is not
    d = begin(storage, "d", at=int(clock.now))
    # a is deleted; c waits behind the longer-lived b but is already refused.
    assert count(storage, tables.launches) == 3
    assert storage.load_launch(a, "s-a", int(clock.now)) is None
    assert storage.load_launch(c, "s-c", int(clock.now)) is None
    assert storage.load_launch(b, "s-b", int(clock.now)) == "data-b"
    clock.now = 1_000_000 + 30 + 3600 + 1  # b expired too; d is alive
    begin(storage, "e", at=int(clock.now))
    assert count(storage, tables.launches) == 2
    assert storage.load_launch(d, "s-d", int(clock.now)) == "data-d"
    clock.now += 10_000  # everything expired
    storage.purge_expired()
    assert count(storage, tables.launches) == 0
    assert begin(storage, "a", at=int(clock.now)) is not None  # forgotten long after


def test_upgrade_is_idempotent_and_keeps_its_own_version_table(database_url):
    url = database_url
    storage = SQLStorage(url)
    with storage.engine.begin() as conn:  # the app's own Alembic history, untouched
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('app123')"))
    upgrade(url)
    upgrade(url)
    assert current_revision(url) == head_revision()
    names = set(inspect(storage.engine).get_table_names())
    assert {"ltikit_launches", "ltikit_consumers",
            "ltikit_alembic_version"} <= names
    with storage.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "app123"


def test_consumers_in_the_database(database_url):
    storage = SQLStorage(database_url)
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


def test_consumer_secrets_are_encrypted_when_keys_are_configured(database_url):
    from ltikit.crypto import SecretBox

    box = SecretBox(SecretBox.generate_key())
    plain = SQLStorage(database_url)
    upgrade(plain.engine)
    plain.add_consumer("old", "plain-secret")  # before encryption was configured
    storage = SQLStorage(database_url, secret_box=box)
    storage.add_consumer("canvas", "s3cret-value")
    with storage.engine.connect() as conn:
        raw = dict(conn.execute(select(tables.consumers.c.key, tables.consumers.c.secret)).all())
    assert raw["canvas"].startswith("fernet:") and "s3cret-value" not in raw["canvas"]
    assert storage.consumer_secret("canvas") == "s3cret-value"
    assert storage.consumer_secret("old") == "plain-secret"
    assert plain.consumer_secret("canvas") is None  # no key: refused, not garbage


def _round_trips(storage, tmp_path):
    """Count the client's round trips on the launch path's connections (libpq's protocol
    trace: every Sync or simple Query the client sends waits for the server once)."""
    from sqlalchemy import event

    trace = open(tmp_path / "libpq.trace", "w+")  # noqa: SIM115 - closed by the caller

    @event.listens_for(storage.launch_engine, "connect")
    def traced(dbapi_connection, record):
        dbapi_connection.pgconn.trace(trace.fileno())

    def count():
        trace.flush()
        lines = (tmp_path / "libpq.trace").read_text().splitlines()
        return sum(1 for line in lines if "\tF\t" in line and
                   ("\tSync" in line or "\tQuery" in line))

    return count, trace


def test_a_launch_and_a_later_page_are_one_round_trip_each_on_postgresql(
        postgres_server, tmp_path):
    """Pool pre-ping, BEGIN, the statement and ROLLBACK made a later page four round trips
    on PostgreSQL (1.65-1.8x a bare route, against 1.05-1.1x on SQLite)."""
    storage = SQLStorage(postgres_server.database(), purge_interval=3600)
    upgrade(storage.engine)
    storage.purge_expired()
    count, trace = _round_trips(storage, tmp_path)
    try:
        row = storage.begin_launch(issuer="k", nonce="n-1", secret="s", data="{}",
                                   expires_at=2**40)
        after_insert = count()
        assert storage.load_launch(row, "s", 0) == "{}"
        after_select = count()
        assert storage.begin_launch(issuer="k", nonce="n-1", secret="s", data="{}",
                                    expires_at=2**40) is None  # a replay: refused
        after_replay = count()
    finally:
        # Close the traced connections first: libpq would go on writing its trace to the
        # file descriptor, which the next socket opened may reuse.
        storage.launch_engine.dispose()
        trace.close()
    assert (after_insert, after_select - after_insert, after_replay - after_select) == (1, 1, 1)


def test_the_launch_path_survives_its_connections_being_cut(postgres_server):
    """A server restart kills pooled connections; with no ping at checkout, the launch
    path notices on use, starts a new pool and tries once more."""
    import sqlalchemy as sa

    url = postgres_server.database()
    storage = SQLStorage(url, purge_interval=3600)
    upgrade(storage.engine)
    row = storage.begin_launch(issuer="k", nonce="n-1", secret="s", data="{}",
                               expires_at=2**40)
    assert storage.load_launch(row, "s", 0) == "{}"  # a pooled connection now exists
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        cut = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    admin.dispose()
    assert cut >= 1
    assert storage.load_launch(row, "s", 0) == "{}"
    assert storage.begin_launch(issuer="k", nonce="n-2", secret="s", data="{}",
                                expires_at=2**40) is not None
