"""The tables ltikit owns, all prefixed ``ltikit_`` to live beside an app's own tables.

The schema is created and changed only by the Alembic migrations in ``migrations/``;
this module describes it for queries.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

launches = Table(
    # One row per accepted launch.  The row is also the record of the launch's nonce:
    # the unique (issuer, nonce) pair is what refuses a replay, in every worker process,
    # and claiming the nonce and storing the launch is a single insert.
    "ltikit_launches", metadata,
    # Integer key, increasing with time: the purge finds expired rows by walking it from
    # the oldest instead of keeping an index on expires_at (one B-tree less per insert).
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    # Who issued the nonce: the LTI 1.1 consumer key (the LTI 1.3 issuer later).
    Column("issuer", String(255), nullable=False),
    Column("nonce", String(255), nullable=False),
    # Random part of the launch id the browser carries, compared in constant time.
    Column("secret", String(64), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    UniqueConstraint("issuer", "nonce", name="uq_ltikit_launches_nonce"),
)

consumers = Table(
    "ltikit_consumers", metadata,
    Column("key", String(255), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

canvas_tokens = Table(
    # One Canvas API token per user per Canvas instance; both tokens encrypted
    # (ltikit.crypto).  ``version`` changes with every new access token and
    # ``refreshing_until`` is a short lease, so that when many requests or processes find
    # the token expiring at once, exactly one of them asks Canvas for a new one.
    "ltikit_canvas_tokens", metadata,
    Column("instance", String(255), primary_key=True),
    Column("canvas_user_id", String(32), primary_key=True),
    Column("access_token", Text, nullable=False),
    Column("refresh_token", Text),
    Column("expires_at", BigInteger),
    Column("version", Integer, nullable=False),
    Column("refreshing_until", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
    # After a refresh failed for a reason that keeps the grant (429, 5xx, a timeout): how
    # many times in a row, and when the next attempt may be made (back-off, Retry-After).
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("retry_at", BigInteger),
)

oauth_states = Table(
    # An OAuth2 authorization in progress: the hash of its single-use ``state``, the launch
    # it belongs to (its signed id, encrypted) and where to go afterwards.
    "ltikit_oauth_states", metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("instance", String(255), nullable=False),
    Column("launch_token", Text, nullable=False),
    Column("code_verifier", Text, nullable=False),
    Column("return_to", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    # SHA-256 of the launch: a launch keeps only its few newest authorizations in progress.
    Column("launch_hash", String(64), index=True),
)

platforms = Table(
    # LTI 1.3 registrations: one row per (issuer, client id).  Canvas uses one issuer for
    # every tool on every hosted instance, so the client id is what tells tools apart.
    "ltikit_platforms", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("issuer", String(255), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("auth_login_url", Text, nullable=False),
    Column("token_url", Text, nullable=False),
    Column("jwks_url", Text),
    Column("public_jwk", Text),  # inline key (JSON), for platforms without a JWKS URL
    Column("token_audience", Text),  # when the token endpoint wants another "aud"
    # "allow_list": only registered deployments; "record_new": accept and record new ones
    # (Canvas creates a deployment per install).
    Column("deployment_policy", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Whether the platform offers LTI client-side storage (lti_storage_target): only then
    # does a login honour it (Canvas does; the request asking for it is unsigned).
    Column("platform_storage", Boolean, nullable=False, server_default=false()),
    # Origins, besides the issuer's and the token URL's, that service URLs (AGS, NRPS) from
    # this platform's launches may be on: space-separated.
    Column("service_origins", Text),
    UniqueConstraint("issuer", "client_id", name="uq_ltikit_platforms_issuer_client"),
)

deployments = Table(
    "ltikit_deployments", metadata,
    Column("platform_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("deployment_id", String(255), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

jwks_cache = Table(
    # Platform key sets, shared by every worker: fetched at most once per expiry, and
    # re-fetched for an unknown kid no more often than ``refetch_after`` allows.
    "ltikit_jwks_cache", metadata,
    Column("url", String(1000), primary_key=True),
    Column("body", Text, nullable=False),
    Column("fetched_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("refetch_after", BigInteger, nullable=False),
)

tool_keys = Table(
    # The tool's own LTI 1.3 signing keys (service tokens, deep linking responses): private
    # keys encrypted (ltikit.crypto), public halves published at the tool's JWKS URL.
    "ltikit_tool_keys", metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_key", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Once superseded, a key is still published until retire_at, so platforms that cached
    # the JWKS keep accepting what was signed with it.
    Column("retire_at", BigInteger),
)


service_tokens = Table(
    # LTI Advantage access tokens (client_credentials), one per platform registration and
    # scope set, encrypted (ltikit.crypto); the lease lets one worker fetch a new token
    # while the others wait for it, so a token is requested once per scope set per expiry.
    "ltikit_service_tokens", metadata,
    Column("platform_id", Integer, primary_key=True),
    Column("scopes", String(1024), primary_key=True),  # sorted, space-separated
    Column("access_token", Text),
    Column("expires_at", BigInteger, nullable=False, server_default="0"),
    Column("lease_until", BigInteger, nullable=False, server_default="0"),
    Column("version", Integer, nullable=False, server_default="0"),
)

registration_links = Table(
    # Single-use LTI Dynamic Registration links (``ltikit registration-link``): the link
    # holds a secret, the table only its SHA-256, so a copy of the database opens nothing.
    "ltikit_registration_links", metadata,
    Column("secret_hash", String(64), primary_key=True),
    Column("note", String(255)),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    # Set while a registration through the link is under way (claimed) and when it
    # succeeded; a failed registration gives the link back.
    Column("used_at", BigInteger),
    # The registration (ltikit_platforms.id) made through the link.
    Column("platform_id", Integer),
)
