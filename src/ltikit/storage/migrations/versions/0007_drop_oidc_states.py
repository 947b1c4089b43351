"""Drop the OIDC state table: login states are now signed tokens carrying their nonce, and
the nonce is claimed with the launch (see ltikit.lti13.oidc).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("ltikit_oidc_states")


def downgrade() -> None:
    op.create_table(
        "ltikit_oidc_states",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("platform_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("target_link_uri", sa.Text, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
