"""Alembic environment for ltikit's own tables (run through :func:`ltikit.storage.upgrade`)."""

from alembic import context
from sqlalchemy import Connection, create_engine

from ltikit.storage.sql import VERSION_TABLE
from ltikit.storage.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      version_table=VERSION_TABLE, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # plain `alembic -x url=...` use
    url = context.get_x_argument(as_dictionary=True).get("url") or \
        context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("Give the database URL: alembic -x url=sqlite:///tool.db upgrade head")
    with create_engine(url).begin() as conn:
        _run(conn)
