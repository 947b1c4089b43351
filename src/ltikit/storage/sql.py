"""SQLAlchemy implementation of ltikit's storage (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import hmac
import logging
import os
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine, bindparam, create_engine, delete, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.compiler import SQLCompiler

from . import tables

if TYPE_CHECKING:
    from sqlalchemy.sql.expression import ClauseElement

    from ..crypto import SecretBox

log = logging.getLogger("ltikit.storage")

MIGRATIONS = Path(__file__).with_name("migrations")
_ENCRYPTED = "fernet:"
VERSION_TABLE = "ltikit_alembic_version"


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; NORMAL sync is durable across
    # application crashes (only an OS crash may lose the last commits), which is the
    # usual trade-off for SQLite in WAL mode.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine with the settings ltikit relies on (WAL and a busy timeout on SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database
    if not database or database == ":memory:":
        engine = create_engine(url, poolclass=StaticPool,
                               connect_args={"check_same_thread": False})
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _launch_engine(engine: Engine) -> Engine:
    """The engine of the launch path's two statements: on a server database, a second pool
    on the same URL, in autocommit, without a ping at checkout (see
    SQLStorage._on_launch_connection); on SQLite, the engine itself."""
    if engine.dialect.name == "sqlite":
        return engine
    return create_engine(engine.url, pool_pre_ping=False, pool_size=5, max_overflow=10,
                         isolation_level="AUTOCOMMIT")


_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _dispose_after_fork() -> None:
    # A pooled connection must never be shared by two processes (gunicorn --preload forks
    # after the app, and so its engine, was created).
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_after_fork)


class _Prepared:
    """A statement compiled once for one dialect, run on a raw DBAPI cursor."""

    def __init__(self, engine: Engine, statement: ClauseElement) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=engine.dialect))
        self.sql = compiled.string
        self.positions = compiled.positiontup if compiled.positional else None

    def run(self, cursor: Any, params: Mapping[str, Any]) -> None:
        if self.positions is None:
            cursor.execute(self.sql, params)
        else:
            cursor.execute(self.sql, tuple(params[name] for name in self.positions))


class SQLStorage:
    """Launches (with their nonces) and consumers in a SQL database.

    ``purge_interval`` is how often (seconds, per process) expired launches are deleted,
    in passing, by the launch that finds the interval elapsed: no cron job is needed.
    """

    def __init__(self, url_or_engine: str | Engine, *, purge_interval: float = 60.0,
                 clock: Callable[[], float] = time.time,
                 secret_box: SecretBox | None = None) -> None:
        # With a SecretBox (ltikit.crypto), consumer secrets are stored encrypted.
        self.secret_box = secret_box
        self.engine = (make_engine(url_or_engine) if isinstance(url_or_engine, str)
                       else url_or_engine)
        _engines.add(self.engine)
        self.launch_engine = _launch_engine(self.engine)
        if self.launch_engine is not self.engine:
            _engines.add(self.launch_engine)
        self._purge_interval = purge_interval
        self._clock = clock
        self._next_purge = 0.0
        launches = tables.launches
        dialect = self.engine.dialect
        # SQLite hands back the new row id as cursor.lastrowid; elsewhere ask for it.
        self._returning = dialect.name != "sqlite"
        statement = insert(launches).values(
            {name: bindparam(name) for name in ("issuer", "nonce", "secret", "expires_at",
                                                "data")})
        if self._returning:
            statement = statement.returning(launches.c.id)
        self._insert_launch = _Prepared(self.engine, statement)
        self._integrity_error = dialect.loaded_dbapi.IntegrityError
        self._operational_error = dialect.loaded_dbapi.OperationalError
        self._select_launch = _Prepared(self.engine, select(
            launches.c.secret, launches.c.data, launches.c.expires_at)
            .where(launches.c.id == bindparam("row_id")))

    # -- launches -------------------------------------------------------------------------

    def begin_launch(self, *, issuer: str, nonce: str, secret: str, data: str,
                     expires_at: int) -> int | None:
        """Claim ``(issuer, nonce)`` and store the launch: its row id, or ``None`` if the
        nonce was already claimed (a replay)."""
        # The launch path's only write, so it skips SQLAlchemy's per-statement execution
        # machinery (about half the cost of a bare Flask request): the SQL is compiled once
        # by SQLAlchemy for this engine's dialect and run on a pooled DBAPI connection.
        # The unique (issuer, nonce) constraint makes the claim atomic across processes.
        if self._clock() >= self._next_purge:
            self.purge_expired()
        params = {"issuer": issuer, "nonce": nonce, "secret": secret,
                  "expires_at": expires_at, "data": data}

        def insert_launch(cursor: Any) -> int | None:
            try:
                self._insert_launch.run(cursor, params)
            except self._integrity_error:
                return None
            return int(cursor.fetchone()[0] if self._returning else cursor.lastrowid)

        row_id: int | None = self._on_launch_connection(insert_launch, write=True)
        return row_id

    def _on_launch_connection(self, work: Callable[[Any], Any], *, write: bool) -> Any:
        """Run ``work(cursor)`` on a pooled DBAPI connection of the launch path.

        On PostgreSQL that is one round trip per statement: the connection is in autocommit
        (a single INSERT or SELECT is its own transaction, so no BEGIN, COMMIT or ROLLBACK
        travel), and the launch engine does not ping connections at checkout (a round trip
        per request); instead a connection found dead (the server restarted) is dropped
        with the rest of the pool, and the statement is tried once more on a new one.  On
        SQLite (no network) the statement runs in a transaction committed here.
        """
        engine = self.launch_engine
        autocommit = engine is not self.engine
        for attempt in (1, 2):
            connection = engine.raw_connection()
            try:
                cursor = connection.cursor()
                try:
                    result = work(cursor)
                finally:
                    cursor.close()
                if not autocommit:
                    if write and result is not None:
                        connection.commit()
                    else:
                        connection.rollback()  # end the read (or refused) transaction
                return result
            except self._operational_error:
                if attempt == 2 or not autocommit:
                    raise
                # The server went away (a restart): this pool's connections are all dead;
                # start a new pool and try once more.
                connection.invalidate()
                engine.dispose()
                log.warning("database connection lost; retrying once on a new connection")
            finally:
                connection.close()  # back to the pool (a no-op once invalidated)
        raise AssertionError("unreachable")  # pragma: no cover

    def load_launch(self, row_id: int, secret: str, now: int) -> str | None:
        """The stored data of an unexpired launch whose secret matches, else ``None``."""
        # Every later request of a launch runs this: the same raw-cursor path as the insert.
        def select_launch(cursor: Any) -> Any:
            self._select_launch.run(cursor, {"row_id": row_id})
            return cursor.fetchone()

        row = self._on_launch_connection(select_launch, write=False)
        if row is None:
            return None
        stored_secret, data, expires_at = row
        if expires_at <= now or not hmac.compare_digest(stored_secret.encode(),
                                                        secret.encode()):
            return None
        return str(data)

    def delete_launch(self, row_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(tables.launches).where(tables.launches.c.id == row_id))

    def purge_expired(self, now: float | None = None) -> None:
        """Delete expired launches (done in passing every ``purge_interval``).

        Launches expire in about the order they were stored, so the oldest rows are walked
        until the first unexpired one and everything before it is deleted: the work is
        proportional to what is deleted, without an index on ``expires_at``.  A row whose
        lifetime is longer than its successors' (the lifetime setting was lowered) holds
        back their deletion until it expires itself; they are refused as expired meanwhile.
        """
        now = int(self._clock() if now is None else now)
        self._next_purge = now + self._purge_interval
        launches = tables.launches
        with self.engine.begin() as conn:
            first_alive = conn.execute(
                select(launches.c.id).where(launches.c.expires_at > now)
                .order_by(launches.c.id).limit(1)).scalar()
            condition = launches.c.expires_at <= now if first_alive is None \
                else launches.c.id < first_alive
            conn.execute(delete(launches).where(condition))

    # -- consumers ------------------------------------------------------------------------

    def consumer_secret(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            stored = conn.execute(select(tables.consumers.c.secret)
                                  .where(tables.consumers.c.key == key)).scalar()
        if stored is None or not stored.startswith(_ENCRYPTED):
            return stored  # rows from before encryption was configured stay readable
        if self.secret_box is None:
            log.error("consumer %r has an encrypted secret but no encryption keys are "
                      "configured (LTIKIT_ENCRYPTION_KEYS)", key)
            return None
        return self.secret_box.decrypt(stored.removeprefix(_ENCRYPTED))

    def add_consumer(self, key: str, secret: str) -> None:
        """Add a consumer; raises ``ValueError`` if the key exists (secrets are not replaced
        silently: remove the consumer first)."""
        if not key or not secret:
            raise ValueError("a consumer needs a key and a secret")
        try:
            stored = secret if self.secret_box is None else \
                _ENCRYPTED + self.secret_box.encrypt(secret)
            with self.engine.begin() as conn:
                conn.execute(insert(tables.consumers), {"key": key, "secret": stored,
                                                        "created_at": datetime.now(UTC)})
        except IntegrityError:
            raise ValueError(f"consumer {key!r} already exists") from None

    def remove_consumer(self, key: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(delete(tables.consumers).where(tables.consumers.c.key == key))
        return result.rowcount > 0

    def consumer_keys(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(tables.consumers.c.key)
                                     .order_by(tables.consumers.c.key)).scalars())


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Bring ltikit's tables up to ``revision`` with Alembic (idempotent).

    ltikit keeps its own version table (``ltikit_alembic_version``) so it never clashes
    with the app's own Alembic history in the same database.
    """
    from alembic import command
    from alembic.config import Config

    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(url_or_engine: str | Engine) -> str | None:
    from alembic.migration import MigrationContext

    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    with engine.connect() as connection:
        context = MigrationContext.configure(connection,
                                             opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head
