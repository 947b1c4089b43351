"""Alembic environment for this tool's own tables.

``python manage.py upgrade`` and ``revision`` hand it a connection; run as plain
``alembic`` (with an alembic.ini of your own), it connects with the tool's settings.
ltikit's tables (``ltikit_*``) are ltikit's to migrate: autogenerate leaves them alone.
"""

from alembic import context
from sqlalchemy import create_engine

from models import metadata


def include_name(name, type_, parent_names):
    if type_ == "table":
        return name in metadata.tables or not (name or "").startswith("ltikit_")
    return True


def run(connection):
    context.configure(connection=connection, target_metadata=metadata,
                      version_table="tool_alembic_version", render_as_batch=True,
                      include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    from manage import database_url

    with create_engine(database_url()).begin() as connection:
        run(connection)
