"""LTI 1.3: platform registrations, their deployments, and the shared JWKS cache.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "ltikit_platforms",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("auth_login_url", sa.Text, nullable=False),
        sa.Column("token_url", sa.Text, nullable=False),
        sa.Column("jwks_url", sa.Text),
        sa.Column("public_jwk", sa.Text),
        sa.Column("token_audience", sa.Text),
        sa.Column("deployment_policy", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("issuer", "client_id", name="uq_ltikit_platforms_issuer_client"),
    )
    op.create_table(
        "ltikit_deployments",
        sa.Column("platform_id", Id, primary_key=True),
        sa.Column("deployment_id", sa.String(255), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ltikit_jwks_cache",
        sa.Column("url", sa.String(1000), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("fetched_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("refetch_after", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ltikit_jwks_cache")
    op.drop_table("ltikit_deployments")
    op.drop_table("ltikit_platforms")
