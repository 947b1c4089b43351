"""Single-use LTI Dynamic Registration links.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ltikit_registration_links",
        sa.Column("secret_hash", sa.String(64), primary_key=True),
        sa.Column("note", sa.String(255)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger),
        sa.Column("platform_id", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("ltikit_registration_links")
