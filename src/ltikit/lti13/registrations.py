"""LTI 1.3 registrations: platforms (issuer + client id) and their deployments.

Looked up on every launch, so answers are cached per process for a few seconds (like LTI
1.1 consumers); a change takes effect within ``cache_seconds``.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import LTIConfigurationError
from ..storage import tables
from ..storage.cache import MISSING, TTLCache
from ..urls import Origin, origin, secure_origin

ALLOW_LIST = "allow_list"
RECORD_NEW = "record_new"

CANVAS_ENVIRONMENTS: Mapping[str, tuple[str, str]] = {
    # environment: (issuer, SSO host).  Canvas's docs: the OIDC auth and JWKS endpoints
    # live on sso.canvaslms.com (sso.beta., sso.test.); service tokens come from the
    # institution's own Canvas domain.
    "production": ("https://canvas.instructure.com", "https://sso.canvaslms.com"),
    "beta": ("https://canvas.beta.instructure.com", "https://sso.beta.canvaslms.com"),
    "test": ("https://canvas.test.instructure.com", "https://sso.test.canvaslms.com"),
}


@dataclass(frozen=True)
class Registration:
    id: int
    name: str
    issuer: str
    client_id: str
    auth_login_url: str
    token_url: str
    jwks_url: str | None = None
    public_jwk: Mapping[str, Any] | None = field(default=None, repr=False)
    token_audience: str | None = None
    deployment_policy: str = ALLOW_LIST
    #: The platform offers LTI client-side storage (``lti_storage_target`` in its logins):
    #: only then is a launch without its state cookie checked through that storage.
    platform_storage: bool = False
    #: Origins, besides the issuer's and the token URL's, where this platform's service
    #: URLs (AGS line items, NRPS memberships) may be; the access token goes nowhere else.
    service_origins: tuple[str, ...] = ()

    def service_url_allowed(self, url: str) -> bool:
        """May ``url`` (from a launch, or a ``Link`` header) be called with this platform's
        access token?  Only on https (http to this machine only) and on an allowed origin."""
        found = secure_origin(url)
        return found is not None and found in self._service_origins

    @functools.cached_property
    def _service_origins(self) -> frozenset[Origin]:
        allowed = (self.issuer, self.token_url, *self.service_origins)
        return frozenset(o for o in map(origin, allowed) if o is not None)


def canvas_preset(client_id: str, canvas_domain: str, *, environment: str = "production",
                  name: str | None = None) -> dict[str, Any]:
    """Registration values for a Canvas (hosted by Instructure) developer key."""
    try:
        issuer, sso = CANVAS_ENVIRONMENTS[environment]
    except KeyError:
        raise LTIConfigurationError(f"Unknown Canvas environment {environment!r} (production, "
                                    "beta, test).", reason="unknown_canvas_environment") from None
    return {"name": name or f"Canvas {canvas_domain}", "issuer": issuer,
            "client_id": client_id, "auth_login_url": f"{sso}/api/lti/authorize_redirect",
            "token_url": f"https://{canvas_domain}/login/oauth2/token",
            "jwks_url": f"{sso}/api/lti/security/jwks", "deployment_policy": RECORD_NEW,
            # Canvas keeps values for tools in its post_message_forwarding frame.
            "platform_storage": True}


def _checked(*, name: str, issuer: str, client_id: str, auth_login_url: str, token_url: str,
             jwks_url: str | None, public_jwk: Mapping[str, Any] | None,
             token_audience: str | None, deployment_policy: str, platform_storage: bool,
             service_origins: tuple[str, ...]) -> dict[str, Any]:
    """The ``ltikit_platforms`` row for these values, checked (``ValueError``)."""
    if not jwks_url and not public_jwk:
        raise ValueError("a platform needs a JWKS URL or an inline public key")
    if deployment_policy not in (ALLOW_LIST, RECORD_NEW):
        raise ValueError(f"deployment_policy must be {ALLOW_LIST!r} or {RECORD_NEW!r}")
    for url in (issuer, auth_login_url, token_url, jwks_url):
        if url and not secure_origin(url):
            raise ValueError(f"{url} must be https:// (http only on localhost)")
    extra = []
    for url in service_origins:
        found = secure_origin(url)
        if found is None:
            raise ValueError(f"service origin {url} must be https:// (http only on "
                             "localhost)")
        extra.append(str(found))
    return {"name": name, "issuer": issuer, "client_id": client_id,
            "auth_login_url": auth_login_url, "token_url": token_url, "jwks_url": jwks_url,
            "public_jwk": json.dumps(dict(public_jwk)) if public_jwk else None,
            "token_audience": token_audience, "deployment_policy": deployment_policy,
            "platform_storage": bool(platform_storage),
            "service_origins": " ".join(dict.fromkeys(extra)) or None}


class Registrations:
    def __init__(self, engine: Engine, *, cache_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        # Issuers and client ids are attacker-chosen: unknown ones are cached (as None) too,
        # and the caches are bounded.
        self._cache: TTLCache[tuple[str, str], Registration | None] = TTLCache(
            1000, cache_seconds, clock=clock)
        self._deployments: TTLCache[tuple[int, str], bool] = TTLCache(
            10000, cache_seconds, clock=clock)

    def add(self, *, name: str, issuer: str, client_id: str, auth_login_url: str,
            token_url: str, jwks_url: str | None = None,
            public_jwk: Mapping[str, Any] | None = None, token_audience: str | None = None,
            deployment_policy: str = ALLOW_LIST, deployments: tuple[str, ...] = (),
            platform_storage: bool = False, service_origins: tuple[str, ...] = ()) -> int:
        """Register a platform; ``ValueError`` when ``issuer`` already has ``client_id``
        (:meth:`save` updates it instead)."""
        values = _checked(name=name, issuer=issuer, client_id=client_id,
                          auth_login_url=auth_login_url, token_url=token_url,
                          jwks_url=jwks_url, public_jwk=public_jwk,
                          token_audience=token_audience, deployment_policy=deployment_policy,
                          platform_storage=platform_storage, service_origins=service_origins)
        try:
            with self.engine.begin() as conn:
                inserted = conn.execute(insert(tables.platforms).values(
                    **values, created_at=int(time.time())))
                platform_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
        except IntegrityError:
            raise ValueError(f"{issuer} already has client id {client_id}") from None
        for deployment_id in deployments:
            self.add_deployment(platform_id, deployment_id)
        self.forget()
        return int(platform_id)

    def save(self, *, name: str, issuer: str, client_id: str, auth_login_url: str,
             token_url: str, jwks_url: str | None = None,
             public_jwk: Mapping[str, Any] | None = None, token_audience: str | None = None,
             deployment_policy: str = ALLOW_LIST, deployments: tuple[str, ...] = (),
             platform_storage: bool = False,
             service_origins: tuple[str, ...] = ()) -> tuple[int, bool]:
        """Register a platform, or update the registration ``issuer`` already has for
        ``client_id`` (a platform that registers the tool again, as Dynamic Registration
        does): ``(row id, created)``.  Deployments are added to those known; an update
        keeps ``record_new`` when the registration had it."""
        values = _checked(name=name, issuer=issuer, client_id=client_id,
                          auth_login_url=auth_login_url, token_url=token_url,
                          jwks_url=jwks_url, public_jwk=public_jwk,
                          token_audience=token_audience, deployment_policy=deployment_policy,
                          platform_storage=platform_storage, service_origins=service_origins)
        t = tables.platforms
        created = False
        with self.engine.begin() as conn:
            row = conn.execute(select(t.c.id, t.c.deployment_policy).where(
                t.c.issuer == issuer, t.c.client_id == client_id)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        inserted = conn.execute(insert(t).values(
                            **values, created_at=int(time.time())))
                    platform_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
                    created = True
                except IntegrityError:  # another worker registered it at the same moment
                    row = conn.execute(select(t.c.id, t.c.deployment_policy).where(
                        t.c.issuer == issuer, t.c.client_id == client_id)).one()
            if row is not None:
                platform_id = int(row.id)
                if row.deployment_policy == RECORD_NEW:
                    values["deployment_policy"] = RECORD_NEW
                conn.execute(update(t).where(t.c.id == platform_id).values(**values))
        for deployment_id in deployments:
            self.add_deployment(platform_id, deployment_id)
        self.forget()
        return platform_id, created

    def add_deployment(self, platform_id: int, deployment_id: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(tables.deployments).values(
                    platform_id=platform_id, deployment_id=deployment_id,
                    created_at=int(time.time())))
        except IntegrityError:
            pass  # already there (another worker recorded it first)

    def get(self, issuer: str, client_id: str, *, cached: bool = True) -> Registration | None:
        """The registration of ``client_id`` at ``issuer`` (answers may be up to
        ``cache_seconds`` old unless ``cached=False``)."""
        key = (issuer, client_id)
        if cached:  # every launch asks: the cache answers first
            found = self._cache.get(key, MISSING)
            if found is not MISSING:
                return found
        t = tables.platforms
        registration = self._select(t.c.issuer == issuer, t.c.client_id == client_id)
        return self._cache.put(key, registration) if cached else registration

    def by_id(self, platform_id: int) -> Registration | None:
        """The registration with this row id (the id a signed login state carries)."""
        return self._select(tables.platforms.c.id == platform_id)

    def _select(self, *where: ColumnElement[bool]) -> Registration | None:
        t = tables.platforms
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(*where)).mappings().first()
        return None if row is None else Registration(
            id=row["id"], name=row["name"], issuer=row["issuer"], client_id=row["client_id"],
            auth_login_url=row["auth_login_url"], token_url=row["token_url"],
            jwks_url=row["jwks_url"],
            public_jwk=json.loads(row["public_jwk"]) if row["public_jwk"] else None,
            token_audience=row["token_audience"], deployment_policy=row["deployment_policy"],
            platform_storage=bool(row["platform_storage"]),
            service_origins=tuple((row["service_origins"] or "").split()))

    def client_ids(self, issuer: str) -> list[str]:
        """The client ids registered under ``issuer``."""
        t = tables.platforms
        with self.engine.connect() as conn:
            return list(conn.execute(select(t.c.client_id).where(t.c.issuer == issuer))
                        .scalars())

    def accept_deployment(self, registration: Registration, deployment_id: str) -> bool:
        """Whether ``deployment_id`` may launch; under ``record_new`` it is recorded."""
        key = (registration.id, deployment_id)
        if self._deployments.get(key):
            return True
        t = tables.deployments
        with self.engine.connect() as conn:
            known = conn.execute(select(t.c.deployment_id).where(
                t.c.platform_id == registration.id, t.c.deployment_id == deployment_id)) \
                .first() is not None
        if not known:
            if registration.deployment_policy != RECORD_NEW:
                return False
            self.add_deployment(registration.id, deployment_id)
        self._deployments.put(key, True)
        return True

    def forget(self) -> None:
        self._cache.clear()
        self._deployments.clear()

