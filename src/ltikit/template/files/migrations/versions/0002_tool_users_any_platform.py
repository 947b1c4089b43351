"""The users who launched, from any platform: keyed by platform and LTI user id.

Revision 0001 kept Canvas domains and Canvas user ids; the rows it holds are dropped (they
only recorded launches), since a Canvas user id is not the LTI user id the tool now keeps.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _create(key_columns: list[sa.Column]) -> None:
    op.create_table(
        "tool_users", *key_columns,
        sa.Column("name", sa.String(255)),
        sa.Column("first_launch_at", sa.BigInteger, nullable=False),
        sa.Column("last_launch_at", sa.BigInteger, nullable=False),
    )


def upgrade() -> None:
    op.drop_table("tool_users")
    _create([sa.Column("platform", sa.String(255), primary_key=True),
             sa.Column("user_id", sa.String(255), primary_key=True)])


def downgrade() -> None:
    op.drop_table("tool_users")
    _create([sa.Column("canvas_domain", sa.String(255), primary_key=True),
             sa.Column("canvas_user_id", sa.String(32), primary_key=True)])
