"""Canvas API tokens (encrypted) and OAuth2 authorizations in progress.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ltikit_canvas_tokens",
        sa.Column("instance", sa.String(255), primary_key=True),
        sa.Column("canvas_user_id", sa.String(32), primary_key=True),
        sa.Column("access_token", sa.Text, nullable=False),
        sa.Column("refresh_token", sa.Text),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("refreshing_until", sa.BigInteger),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ltikit_oauth_states",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("instance", sa.String(255), nullable=False),
        sa.Column("launch_token", sa.Text, nullable=False),
        sa.Column("code_verifier", sa.Text, nullable=False),
        sa.Column("return_to", sa.Text, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ltikit_oauth_states")
    op.drop_table("ltikit_canvas_tokens")
