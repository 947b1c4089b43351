"""Canvas tokens remember a failed refresh (back-off), and OAuth states their launch.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ltikit_canvas_tokens") as batch:
        batch.add_column(sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("retry_at", sa.BigInteger))
    with op.batch_alter_table("ltikit_oauth_states") as batch:
        batch.add_column(sa.Column("launch_hash", sa.String(64)))
    op.create_index("ix_ltikit_oauth_states_launch_hash", "ltikit_oauth_states", ["launch_hash"])


def downgrade() -> None:
    op.drop_index("ix_ltikit_oauth_states_launch_hash", "ltikit_oauth_states")
    with op.batch_alter_table("ltikit_oauth_states") as batch:
        batch.drop_column("launch_hash")
    with op.batch_alter_table("ltikit_canvas_tokens") as batch:
        batch.drop_column("retry_at")
        batch.drop_column("failures")
