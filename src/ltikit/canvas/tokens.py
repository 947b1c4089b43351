"""Canvas API tokens per (Canvas instance, Canvas user): encrypted, refreshed once.

Refresh coordination works across threads and worker processes with nothing but the
database: the process that needs a new access token takes a short *lease* on the row with a
conditional ``UPDATE`` (only one can succeed), asks Canvas, and stores the answer with a
new ``version``; the others wait for the version to change and use the new token.  This
matters with Canvas, where a refresh invalidates the previous access token at once: two
uncoordinated refreshes would leave one request with a dead token.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..crypto import DecryptionError, SecretBox
from ..errors import LTIException
from ..storage import tables
from .instances import CanvasInstance
from .oauth import CanvasOAuthClient, CanvasOAuthError, TokenResponse

log = logging.getLogger("ltikit.canvas")

STATE_LIFETIME = 600
"""Seconds an authorization may take (Canvas's codes live 10 minutes too)."""


class CanvasAuthorizationRequired(LTIException):
    """There is no usable token for this user: send them through authorization."""

    status = 401
    reason = "canvas_authorization_required"

    def __init__(self, message: str = "Canvas access must be authorized.", *,
                 return_to: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.return_to = return_to


@dataclass(frozen=True)
class StoredToken:
    access_token: str
    refresh_token: str | None
    expires_at: int | None
    version: int

    def __repr__(self) -> str:
        return f"<StoredToken version={self.version} expires_at={self.expires_at}>"


class CanvasTokens:
    """Stores, reads, refreshes and drops the tokens (the database and the key given)."""

    def __init__(self, engine: Engine, box: SecretBox, *, refresh_margin: int = 60,
                 lease_seconds: int = 30, wait_seconds: float = 20.0,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.engine = engine
        self.box = box
        self.refresh_margin = refresh_margin
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self._clock = clock
        self._sleep = sleep

    # -- rows -------------------------------------------------------------------------------
    def _key(self, instance: CanvasInstance, user_id: str):
        t = tables.canvas_tokens
        return and_(t.c.instance == instance.domain, t.c.canvas_user_id == str(user_id))

    def load(self, instance: CanvasInstance, user_id: str) -> StoredToken | None:
        t = tables.canvas_tokens
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(self._key(instance, user_id))).mappings().first()
        if row is None:
            return None
        try:
            return StoredToken(
                access_token=self.box.decrypt(row["access_token"]),
                refresh_token=self.box.decrypt(row["refresh_token"])
                if row["refresh_token"] else None,
                expires_at=row["expires_at"], version=row["version"])
        except DecryptionError:
            log.error("the Canvas token of user %s at %s cannot be decrypted with the "
                      "configured keys; it is dropped", user_id, instance.domain)
            self.delete(instance, user_id)
            return None

    def save(self, instance: CanvasInstance, user_id: str, token: TokenResponse) -> None:
        """Store a new grant (replacing any earlier token of this user)."""
        now = int(self._clock())
        values = {
            "access_token": self.box.encrypt(token.access_token),
            "refresh_token": self.box.encrypt(token.refresh_token)
            if token.refresh_token else None,
            "expires_at": now + token.expires_in if token.expires_in else None,
            "refreshing_until": None, "updated_at": now,
        }
        t = tables.canvas_tokens
        with self.engine.begin() as conn:
            updated = conn.execute(update(t).where(self._key(instance, user_id))
                                   .values(version=t.c.version + 1, **values)).rowcount
            if not updated:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(t).values(instance=instance.domain,
                                                      canvas_user_id=str(user_id), version=1,
                                                      **values))
                except IntegrityError:  # a concurrent first grant: ours is as good
                    conn.execute(update(t).where(self._key(instance, user_id))
                                 .values(version=t.c.version + 1, **values))

    def delete(self, instance: CanvasInstance, user_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(tables.canvas_tokens).where(self._key(instance, user_id)))

    # -- a valid access token -------------------------------------------------------------
    def access_token(self, instance: CanvasInstance, user_id: str,
                     client: CanvasOAuthClient) -> tuple[str, int]:
        """(access token, version), refreshed first if it expires within the margin."""
        token = self.load(instance, user_id)
        if token is None:
            raise CanvasAuthorizationRequired(reason="no_canvas_token")
        if not self._expiring(token):
            return token.access_token, token.version
        return self._refresh(instance, user_id, client, stale_version=token.version)

    def refresh_after_401(self, instance: CanvasInstance, user_id: str,
                          client: CanvasOAuthClient, stale_version: int) -> tuple[str, int]:
        """A new access token after Canvas refused version ``stale_version`` (or the newer
        one someone else already got)."""
        return self._refresh(instance, user_id, client, stale_version=stale_version)

    def _expiring(self, token: StoredToken) -> bool:
        return token.expires_at is not None and \
            token.expires_at - self._clock() <= self.refresh_margin

    def _refresh(self, instance: CanvasInstance, user_id: str, client: CanvasOAuthClient,
                 stale_version: int) -> tuple[str, int]:
        t = tables.canvas_tokens
        deadline = self._clock() + self.wait_seconds
        while True:
            token = self.load(instance, user_id)
            if token is None:
                raise CanvasAuthorizationRequired(reason="canvas_token_dropped")
            if token.version != stale_version and not self._expiring(token):
                return token.access_token, token.version  # someone else refreshed
            if token.refresh_token is None:
                self.delete(instance, user_id)
                raise CanvasAuthorizationRequired(reason="no_refresh_token")
            now = int(self._clock())
            with self.engine.begin() as conn:
                claimed = conn.execute(
                    update(t).where(self._key(instance, user_id), t.c.version == token.version,
                                    or_(t.c.refreshing_until.is_(None),
                                        t.c.refreshing_until < now))
                    .values(refreshing_until=now + self.lease_seconds)).rowcount
            if claimed:
                return self._do_refresh(instance, user_id, client, token)
            if self._clock() > deadline:
                raise CanvasAuthorizationRequired(
                    "Canvas is taking too long to renew access; try again.",
                    reason="canvas_refresh_timeout")
            self._sleep(0.05 + secrets.randbelow(50) / 1000)

    def _do_refresh(self, instance: CanvasInstance, user_id: str, client: CanvasOAuthClient,
                    token: StoredToken) -> tuple[str, int]:
        t = tables.canvas_tokens
        try:
            answer = client.refresh(token.refresh_token or "")
        except CanvasOAuthError as exc:
            # Canvas says invalid_request "refresh_token not found" for a revoked or unknown
            # refresh token (not invalid_grant): any refusal means authorize again.
            log.info("Canvas refused to refresh the token of user %s at %s (%s); it is "
                     "dropped", user_id, instance.domain, exc.error)
            self.delete(instance, user_id)
            raise CanvasAuthorizationRequired(reason="canvas_refresh_refused") from None
        except Exception:
            with self.engine.begin() as conn:  # let another request try again
                conn.execute(update(t).where(self._key(instance, user_id))
                             .values(refreshing_until=None))
            raise
        now = int(self._clock())
        values = {"access_token": self.box.encrypt(answer.access_token),
                  "expires_at": now + answer.expires_in if answer.expires_in else None,
                  "version": token.version + 1, "refreshing_until": None, "updated_at": now}
        if answer.refresh_token:  # rotated: the old one may stop working
            values["refresh_token"] = self.box.encrypt(answer.refresh_token)
        with self.engine.begin() as conn:
            conn.execute(update(t).where(self._key(instance, user_id),
                                         t.c.version == token.version).values(values))
        log.info("Canvas token refreshed: user=%s instance=%s", user_id, instance.domain)
        return answer.access_token, token.version + 1

    def rotate_keys(self) -> int:
        """Re-encrypt every stored token with the newest key; returns the rows changed."""
        t = tables.canvas_tokens
        changed = 0
        with self.engine.begin() as conn:
            rows = conn.execute(select(t.c.instance, t.c.canvas_user_id, t.c.access_token,
                                       t.c.refresh_token)).all()
            for instance, user_id, access, refresh in rows:
                conn.execute(update(t).where(t.c.instance == instance,
                                             t.c.canvas_user_id == user_id).values(
                    access_token=self.box.rotate(access),
                    refresh_token=self.box.rotate(refresh) if refresh else None))
                changed += 1
        return changed


@dataclass(frozen=True)
class PendingAuthorization:
    instance: str
    launch_token: str
    code_verifier: str
    return_to: str


class OAuthStates:
    """Authorizations in progress, keyed by the hash of their random, single-use ``state``."""

    def __init__(self, engine: Engine, box: SecretBox, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.box = box
        self._clock = clock

    def create(self, *, instance: str, launch_token: str, code_verifier: str,
               return_to: str) -> str:
        state = secrets.token_urlsafe(32)
        now = int(self._clock())
        t = tables.oauth_states
        with self.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.expires_at < now))
            conn.execute(insert(t).values(
                state_hash=_hash(state), instance=instance,
                launch_token=self.box.encrypt(launch_token),
                code_verifier=self.box.encrypt(code_verifier), return_to=return_to,
                expires_at=now + STATE_LIFETIME))
        return state

    def take(self, state: str | None) -> PendingAuthorization | None:
        """The authorization ``state`` belongs to, once: it is deleted as it is read."""
        if not state or len(state) > 200:
            return None
        t = tables.oauth_states
        with self.engine.begin() as conn:
            row = conn.execute(select(t).where(t.c.state_hash == _hash(state))).mappings() \
                .first()
            if row is None:
                return None
            taken = conn.execute(delete(t).where(t.c.state_hash == row["state_hash"])).rowcount
        if not taken or row["expires_at"] < self._clock():
            return None
        try:
            return PendingAuthorization(
                instance=row["instance"], launch_token=self.box.decrypt(row["launch_token"]),
                code_verifier=self.box.decrypt(row["code_verifier"]),
                return_to=row["return_to"])
        except DecryptionError:
            return None


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()
