"""LTI Advantage service access tokens, shared by every worker.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ltikit_service_tokens",
        sa.Column("platform_id", sa.Integer, primary_key=True),
        sa.Column("scopes", sa.String(1024), primary_key=True),
        sa.Column("access_token", sa.Text),
        sa.Column("expires_at", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("lease_until", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("ltikit_service_tokens")
