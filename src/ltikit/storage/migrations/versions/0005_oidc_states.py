"""LTI 1.3 OIDC logins in progress.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ltikit_oidc_states",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("platform_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("target_link_uri", sa.Text, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ltikit_oidc_states")
