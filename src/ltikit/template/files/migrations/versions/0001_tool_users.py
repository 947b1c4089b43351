"""The users who launched the tool.

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
        "tool_users",
        sa.Column("canvas_domain", sa.String(255), primary_key=True),
        sa.Column("canvas_user_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("first_launch_at", sa.BigInteger, nullable=False),
        sa.Column("last_launch_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tool_users")
