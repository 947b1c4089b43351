"""Alembic environment for this tool's own tables (run by ``python manage.py upgrade``)."""

from alembic import context

from models import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  version_table="tool_alembic_version", render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
