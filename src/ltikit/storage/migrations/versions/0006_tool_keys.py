"""LTI 1.3 tool signing keys.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ltikit_tool_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("private_key", sa.Text, nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("retire_at", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("ltikit_tool_keys")
