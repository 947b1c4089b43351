"""LTI 1.1 launches: nonces, server-side launch state, consumers.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ltikit_nonces",
        sa.Column("consumer_key", sa.String(255), nullable=False),
        sa.Column("nonce", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("consumer_key", "nonce", name="pk_ltikit_nonces"),
    )
    op.create_index("ix_ltikit_nonces_expires_at", "ltikit_nonces", ["expires_at"])
    op.create_table(
        "ltikit_launches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_ltikit_launches_expires_at", "ltikit_launches", ["expires_at"])
    op.create_table(
        "ltikit_consumers",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ltikit_consumers")
    op.drop_index("ix_ltikit_launches_expires_at", "ltikit_launches")
    op.drop_table("ltikit_launches")
    op.drop_index("ix_ltikit_nonces_expires_at", "ltikit_nonces")
    op.drop_table("ltikit_nonces")
