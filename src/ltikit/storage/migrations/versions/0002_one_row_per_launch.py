"""One row per launch: the launch row is also the record of its nonce.

The separate nonce table and its expiry indexes cost a second insert and three more
B-tree updates on every launch; a unique (issuer, nonce) pair on the launch row refuses
replays just as well.  Launches stored by 0001 are dropped: they are short-lived, and a
user whose launch is gone opens the tool again from the course.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_ltikit_launches_expires_at", "ltikit_launches")
    op.drop_table("ltikit_launches")
    op.drop_index("ix_ltikit_nonces_expires_at", "ltikit_nonces")
    op.drop_table("ltikit_nonces")
    op.create_table(
        "ltikit_launches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("nonce", sa.String(255), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.UniqueConstraint("issuer", "nonce", name="uq_ltikit_launches_nonce"),
    )


def downgrade() -> None:
    op.drop_table("ltikit_launches")
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
