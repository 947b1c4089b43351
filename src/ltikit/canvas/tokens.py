"""Canvas API tokens per (Canvas instance, Canvas user): encrypted, refreshed once.

Refresh coordination works across threads and worker processes with nothing but the
database: the process that needs a new access token takes a short *lease* on the row with a
conditional ``UPDATE`` (only one can succeed), asks Canvas, and stores the answer with a
new ``version``.  This matters with Canvas, where a refresh invalidates the previous access
token at once: two uncoordinated refreshes would leave one request with a dead token.

What the others do meanwhile is bounded, so that one user's slow or stuck refresh never
holds every worker:

* while the current access token is still valid (it is only within the refresh margin),
  they use it and do not wait at all;
* when it has expired, they wait a few seconds (``wait_seconds``) for the new version, then
  give up with :class:`CanvasBusy` (a 503 with ``Retry-After``), never with a trip through
  Canvas's authorization: the grant is fine;
* the lease outlives the refresh's own deadline by two seconds only, so a worker killed
  mid-refresh is taken over within seconds.

A refresh that fails for a reason that keeps the grant (429, 5xx, a timeout, an answer that
is not Canvas's refusal) records a back-off on the row (``Retry-After`` when Canvas sent
one, else 2, 4, 8 … 60 s): until then nobody asks Canvas again, and requests are served
with the old token while it is valid, or get a 503 saying when to retry.  Only Canvas's
documented refusals (``invalid_grant``; ``invalid_request`` "refresh_token not found")
drop the token.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from .. import _http
from ..crypto import SecretBox
from ..errors import CanvasAuthorizationRequired as CanvasAuthorizationRequired
from ..errors import CanvasBusy as CanvasBusy
from ..errors import DecryptionError
from ..storage import tables
from ..storage.lease import Lease
from .instances import CanvasInstance
from .oauth import CanvasOAuthClient, CanvasOAuthError, CanvasUnavailable, TokenResponse

log = logging.getLogger("ltikit.canvas")

STATE_LIFETIME = 600
"""Seconds an authorization may take (Canvas's codes live 10 minutes too)."""


# The refresh margin never exceeds this share of a token's lifetime (5 s tokens would be
# refreshed on every request under a 60 s margin).
MARGIN_SHARE = 0.25
MAX_BACKOFF = 60
STATES_PER_LAUNCH = 3


@dataclass(frozen=True)
class StoredToken:
    access_token: str
    refresh_token: str | None
    expires_at: int | None
    version: int
    updated_at: int = 0
    retry_at: int | None = None
    failures: int = 0

    def __repr__(self) -> str:
        return f"<StoredToken version={self.version} expires_at={self.expires_at}>"


class CanvasTokens:
    """Stores, reads, refreshes and drops the tokens (the database and the key given)."""

    def __init__(self, engine: Engine, box: SecretBox, *, refresh_margin: int = 60,
                 lease_seconds: int | None = None, wait_seconds: float = 3.0,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.engine = engine
        self.box = box
        self.refresh_margin = refresh_margin
        # None: the refresh's own deadline plus two seconds (see _lease_for).
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self._clock = clock
        self._sleep = sleep
        self._lease = Lease(engine, tables.canvas_tokens.c.refreshing_until, clock=clock,
                            sleep=sleep)

    # -- rows -------------------------------------------------------------------------------
    def _key(self, instance: CanvasInstance, user_id: str) -> ColumnElement[bool]:
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
                expires_at=row["expires_at"], version=row["version"],
                updated_at=row["updated_at"], retry_at=row["retry_at"],
                failures=row["failures"])
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
            "refreshing_until": None, "updated_at": now, "failures": 0, "retry_at": None,
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
        return _http.run(self.access_token_steps(instance, user_id, client))

    def access_token_steps(self, instance: CanvasInstance, user_id: str,
                           client: CanvasOAuthClient) -> _http.Steps[tuple[str, int]]:
        """:meth:`access_token` as steps (:mod:`ltikit._http`)."""
        token = self.load(instance, user_id)
        if token is None:
            raise CanvasAuthorizationRequired(reason="no_canvas_token")
        if not self._expiring(token):
            return token.access_token, token.version
        return (yield from self._refresh(instance, user_id, client, token, refused=False))

    def refresh_after_401(self, instance: CanvasInstance, user_id: str,
                          client: CanvasOAuthClient, stale_version: int) -> tuple[str, int]:
        """A new access token after Canvas refused version ``stale_version`` (or the newer
        one someone else already got)."""
        return _http.run(self.refresh_after_401_steps(instance, user_id, client,
                                                      stale_version))

    def refresh_after_401_steps(self, instance: CanvasInstance, user_id: str,
                                client: CanvasOAuthClient, stale_version: int
                                ) -> _http.Steps[tuple[str, int]]:
        """:meth:`refresh_after_401` as steps."""
        token = self.load(instance, user_id)
        if token is None:
            raise CanvasAuthorizationRequired(reason="canvas_token_dropped")
        if token.version != stale_version:
            return token.access_token, token.version
        return (yield from self._refresh(instance, user_id, client, token, refused=True))

    def margin(self, token: StoredToken) -> float:
        """Seconds before expiry at which ``token`` is renewed: the configured margin, but
        never more than a quarter of the token's lifetime."""
        if token.expires_at is None:
            return 0.0
        lifetime = max(token.expires_at - token.updated_at, 0)
        return min(float(self.refresh_margin), lifetime * MARGIN_SHARE)

    def _expiring(self, token: StoredToken) -> bool:
        return token.expires_at is not None and \
            token.expires_at - self._clock() <= self.margin(token)

    def _usable(self, token: StoredToken) -> bool:
        """Not expired yet (only within the margin): good for this request."""
        return token.expires_at is None or token.expires_at > self._clock()

    def _lease_for(self, client: CanvasOAuthClient) -> int:
        if self.lease_seconds is not None:
            return self.lease_seconds
        return _http.lease_seconds(client.total_timeout)

    def _refresh(self, instance: CanvasInstance, user_id: str, client: CanvasOAuthClient,
                 token: StoredToken, *, refused: bool) -> _http.Steps[tuple[str, int]]:
        """Renew ``token`` (or take the version someone else renewed it to).  ``refused``:
        Canvas refused it already, so it cannot serve this request while others renew."""
        t = tables.canvas_tokens
        stale_version = token.version
        deadline = self._clock() + self.wait_seconds
        while True:
            now = self._clock()
            if token.retry_at is not None and token.retry_at > now:
                # Canvas failed or asked to wait: nobody asks again before retry_at.
                if not refused and self._usable(token):
                    return token.access_token, token.version
                raise CanvasBusy("Canvas asked to wait before access is renewed; try again "
                                 "in a moment.", retry_after=token.retry_at - now)
            if token.refresh_token is None:
                self.delete(instance, user_id)
                raise CanvasAuthorizationRequired(reason="no_refresh_token")
            if self._lease.claim(and_(self._key(instance, user_id), t.c.version == token.version),
                                 self._lease_for(client)):
                return (yield from self._do_refresh(instance, user_id, client, token,
                                                    refused=refused))
            # Someone else is renewing it.
            if not refused and self._usable(token):
                return token.access_token, token.version
            pause = self._lease.pause(deadline)
            if pause is None:
                raise CanvasBusy("Access to Canvas is being renewed; try again in a moment.",
                                 retry_after=2)
            yield pause
            fresh = self.load(instance, user_id)
            if fresh is None:
                raise CanvasAuthorizationRequired(reason="canvas_token_dropped")
            if fresh.version != stale_version and not self._expiring(fresh):
                return fresh.access_token, fresh.version  # someone else refreshed
            token = fresh

    def _do_refresh(self, instance: CanvasInstance, user_id: str, client: CanvasOAuthClient,
                    token: StoredToken, *, refused: bool) -> _http.Steps[tuple[str, int]]:
        t = tables.canvas_tokens
        try:
            answer = yield from client.refresh_steps(token.refresh_token or "")
        except CanvasOAuthError as exc:
            if exc.ends_grant:
                log.info("Canvas refused to refresh the token of user %s at %s (%s); it is "
                         "dropped", user_id, instance.domain, exc.error)
                self.delete(instance, user_id)
                raise CanvasAuthorizationRequired(reason="canvas_refresh_refused") from None
            # invalid_client and the like: the tool's key is at fault, not the user's grant.
            self._back_off(instance, user_id, token, None)
            log.error("Canvas refused a refresh for a reason that is not the grant's (%s: "
                      "%s); the token is kept", exc.error, exc.description)
            raise CanvasUnavailable(f"Canvas refused to renew access ({exc.error}); the tool's "
                                    "developer key may be misconfigured.",
                                    reason="canvas_refresh_misconfigured",
                                    status=502) from None
        except CanvasUnavailable as exc:
            wait = self._back_off(instance, user_id, token, exc.retry_after)
            log.warning("Canvas token refresh failed: user=%s instance=%s (%s); kept, next "
                        "attempt in %d s", user_id, instance.domain, exc.reason, wait)
            if not refused and self._usable(token):
                return token.access_token, token.version
            exc.retry_after = wait
            raise
        except BaseException:
            self._lease.release(self._key(instance, user_id))  # let another request try
            raise
        now = int(self._clock())
        values = {"access_token": self.box.encrypt(answer.access_token),
                  "expires_at": now + answer.expires_in if answer.expires_in else None,
                  "version": token.version + 1, "refreshing_until": None, "updated_at": now,
                  "failures": 0, "retry_at": None}
        if answer.refresh_token:  # rotated: the old one may stop working
            values["refresh_token"] = self.box.encrypt(answer.refresh_token)
        with self.engine.begin() as conn:
            conn.execute(update(t).where(self._key(instance, user_id),
                                         t.c.version == token.version).values(values))
        log.info("Canvas token refreshed: user=%s instance=%s", user_id, instance.domain)
        return answer.access_token, token.version + 1

    def _back_off(self, instance: CanvasInstance, user_id: str, token: StoredToken,
                  retry_after: float | None) -> int:
        """Record a failed refresh; returns the seconds until the next attempt."""
        failures = token.failures + 1
        wait = math.ceil(retry_after) if retry_after is not None else \
            min(2 ** failures, MAX_BACKOFF)
        wait = max(wait, 1)
        t = tables.canvas_tokens
        with self.engine.begin() as conn:
            conn.execute(update(t).where(self._key(instance, user_id),
                                         t.c.version == token.version).values(
                refreshing_until=None, failures=failures,
                retry_at=int(self._clock()) + wait))
        return wait

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
        launch_hash = _hash(launch_token)
        with self.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.expires_at < now))
            # A launch keeps its few newest authorizations in progress (two tabs, a retry);
            # a page sending the same launch to Canvas over and over adds no rows.
            older = select(t.c.state_hash).where(t.c.launch_hash == launch_hash) \
                .order_by(t.c.expires_at.desc()).offset(STATES_PER_LAUNCH - 1)
            conn.execute(delete(t).where(t.c.state_hash.in_(older)))
            conn.execute(insert(t).values(
                state_hash=_hash(state), instance=instance, launch_hash=launch_hash,
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
