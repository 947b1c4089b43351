"""LTI 1.3 registrations say whether the platform offers client-side storage, and which
further origins its service URLs may be on.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ltikit_platforms") as batch:
        batch.add_column(sa.Column("platform_storage", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("service_origins", sa.Text))
    # Registrations made with the Canvas preset (its OIDC endpoints on sso.canvaslms.com
    # and its beta/test twins) kept using Canvas's storage frame before this flag existed.
    platforms = sa.table("ltikit_platforms", sa.column("auth_login_url", sa.Text),
                         sa.column("platform_storage", sa.Boolean))
    op.execute(platforms.update()
               .where(platforms.c.auth_login_url.like("https://sso.%canvaslms.com/%"))
               .values(platform_storage=True))


def downgrade() -> None:
    with op.batch_alter_table("ltikit_platforms") as batch:
        batch.drop_column("service_origins")
        batch.drop_column("platform_storage")
