"""The tables ltikit owns, all prefixed ``ltikit_`` to live beside an app's own tables.

The schema is created and changed only by the Alembic migrations in ``migrations/``;
this module describes it for queries.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

launches = Table(
    # One row per accepted launch.  The row is also the record of the launch's nonce:
    # the unique (issuer, nonce) pair is what refuses a replay, in every worker process,
    # and claiming the nonce and storing the launch is a single insert.
    "ltikit_launches", metadata,
    # Integer key, increasing with time: the purge finds expired rows by walking it from
    # the oldest instead of keeping an index on expires_at (one B-tree less per insert).
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    # Who issued the nonce: the LTI 1.1 consumer key (the LTI 1.3 issuer later).
    Column("issuer", String(255), nullable=False),
    Column("nonce", String(255), nullable=False),
    # Random part of the launch id the browser carries, compared in constant time.
    Column("secret", String(64), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    UniqueConstraint("issuer", "nonce", name="uq_ltikit_launches_nonce"),
)

consumers = Table(
    "ltikit_consumers", metadata,
    Column("key", String(255), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
