"""The tables ltikit owns, all prefixed ``ltikit_`` to live beside an app's own tables.

The schema is created and changed only by the Alembic migrations in ``migrations/``;
this module describes it for queries.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()

nonces = Table(
    "ltikit_nonces", metadata,
    Column("consumer_key", String(255), nullable=False),
    Column("nonce", String(255), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("consumer_key", "nonce", name="pk_ltikit_nonces"),
    Index("ix_ltikit_nonces_expires_at", "expires_at"),
)

launches = Table(
    "ltikit_launches", metadata,
    Column("id", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_ltikit_launches_expires_at", "expires_at"),
)

consumers = Table(
    "ltikit_consumers", metadata,
    Column("key", String(255), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
