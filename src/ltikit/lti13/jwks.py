"""Platform public keys (JWKS), cached for every worker and re-fetched sparingly.

* A key set is fetched over HTTPS (plain http only on localhost), with no redirects and a
  total deadline for the whole fetch (:mod:`ltikit._http`), and kept in
  the database for as long as its ``Cache-Control`` allows (bounded to ``min_ttl`` ..
  ``max_ttl``; ``no-store``/``no-cache`` count as ``min_ttl``), so all workers share one
  fetch.  Parsed keys are also kept in memory: the launch path neither fetches nor
  re-parses while the set is fresh.
* A token naming an unknown ``kid`` (the platform rotated its keys) triggers one re-fetch;
  re-fetches are rate-limited per URL across workers (``refetch_interval``), so a flood of
  tokens with made-up kids cannot make us hammer the platform.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import jwt
import requests
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from .. import _http
from ..errors import JWKSUnavailable as JWKSUnavailable
from ..errors import LTIAuthenticationError
from ..storage import tables
from ..storage.cache import TTLCache

log = logging.getLogger("ltikit.lti13")

# Seconds: to connect, and for the whole fetch (a launch waits for it).
DEFAULT_TIMEOUT = (3.0, 5.0)
MAX_JWKS_BYTES = 512_000


class PlatformKey(jwt.PyJWK):
    """A platform's public key, with the algorithm its JWK pins (``alg``), if any.

    PyJWT fills in an algorithm for a JWK without ``alg`` (RS256 for RSA), so whether the
    platform pinned one is kept here, where the id_token check reads it.
    """

    def __init__(self, jwk: dict[str, Any]) -> None:
        super().__init__(jwk)
        alg = jwk.get("alg")
        self.pinned_algorithm: str | None = alg if isinstance(alg, str) else None


def _ttl(cache_control: str | None, min_ttl: int, max_ttl: int) -> int:
    value = (cache_control or "").lower()
    if "no-store" in value or "no-cache" in value:
        return min_ttl
    match = re.search(r"max-age=(\d+)", value)
    seconds = int(match.group(1)) if match else min_ttl
    return max(min_ttl, min(max_ttl, seconds))


class JWKSCache:
    def __init__(self, engine: Engine, *, session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, min_ttl: int = 300,
                 max_ttl: int = 86400, refetch_interval: int = 10,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._session = session or _http.new_session()
        self._connect_timeout, self._total_timeout = _http.timeouts(timeout, DEFAULT_TIMEOUT)
        self.min_ttl, self.max_ttl, self.refetch_interval = min_ttl, max_ttl, refetch_interval
        self._clock = clock
        # Parsed key sets by URL, with when they were fetched and until when they are fresh:
        # kept past their freshness too, so a set re-read from the database unchanged is
        # not parsed again.
        self._memo: TTLCache[str, tuple[int, int, dict[str, PlatformKey]]] = TTLCache(256)

    def key(self, url: str, kid: str | None) -> PlatformKey:
        """The platform key ``kid`` from the key set at ``url``."""
        return _http.run(self.key_steps(url, kid))

    def key_steps(self, url: str, kid: str | None) -> _http.Steps[PlatformKey]:
        """:meth:`key` as steps (:mod:`ltikit._http`): an async adapter awaits the fetch."""
        now = int(self._clock())
        memo = self._memo.get(url)
        if memo is not None and memo[1] > now:
            found = _pick(memo[2], kid)
            if found is not None:
                return found
        fetched_at, expires_at, keys = self._load(url)
        if keys is not None and expires_at > now:
            found = _pick(keys, kid)
            if found is not None:
                return found
        # Missing, expired, or the kid is new: fetch, unless another request (in any
        # worker) fetched this URL within the refetch interval.
        if self._claim_fetch(url, now, first=keys is None):
            keys = yield from self._fetch(url, now)
        elif keys is None or expires_at <= now:
            # Another worker is fetching this set right now (or just did): wait for it.
            for _ in range(30):
                fetched_at, expires_at, keys = self._load(url)
                if fetched_at:
                    break
                yield _http.Pause(0.1)
        found = _pick(keys or {}, kid)
        if found is None:
            raise LTIAuthenticationError("The launch was signed with a key the platform does "
                                         "not publish.", reason="unknown_kid")
        return found

    def _load(self, url: str) -> tuple[int, int, dict[str, PlatformKey] | None]:
        t = tables.jwks_cache
        with self.engine.connect() as conn:
            row = conn.execute(select(t.c.body, t.c.fetched_at, t.c.expires_at)
                               .where(t.c.url == url)).first()
        if row is None:
            return 0, 0, None
        memo = self._memo.get(url)
        if memo is not None and memo[0] == row.fetched_at:
            return memo[0], row.expires_at, memo[2]
        keys = _parse(row.body)
        self._memo.put(url, (row.fetched_at, row.expires_at, keys))
        return row.fetched_at, row.expires_at, keys

    def _claim_fetch(self, url: str, now: int, *, first: bool) -> bool:
        t = tables.jwks_cache
        with self.engine.begin() as conn:
            if first:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(t).values(url=url, body='{"keys": []}',
                                                      fetched_at=0, expires_at=0,
                                                      refetch_after=now + self.refetch_interval))
                    return True
                except IntegrityError:
                    pass
            claimed = conn.execute(update(t).where(t.c.url == url, t.c.refetch_after <= now)
                                   .values(refetch_after=now + self.refetch_interval)).rowcount
        return bool(claimed)

    def _fetch(self, url: str, now: int) -> _http.Steps[dict[str, PlatformKey]]:
        # No redirects (the registration's https URL is the one fetched, or nothing), one
        # deadline for the whole fetch, and the details in the log only: the page a user
        # sees must not tell what an internal URL answered.
        try:
            response = yield from _http.request(
                "GET", url, connect_timeout=self._connect_timeout,
                total_timeout=self._total_timeout, max_bytes=MAX_JWKS_BYTES,
                headers={"Accept": "application/json", "User-Agent": "ltikit"},
                session=self._session)
            body = response.content
        except requests.RequestException as exc:
            log.warning("JWKS fetch failed: %s: %s", url, type(exc).__name__)
            raise JWKSUnavailable("The platform's keys could not be fetched.") from None
        if response.status_code != 200:
            log.warning("JWKS fetch failed: %s answered HTTP %s%s", url, response.status_code,
                        " (redirects are not followed)" if response.is_redirect else "")
            raise JWKSUnavailable("The platform's keys could not be fetched.")
        text = body.decode("utf-8", errors="replace")
        keys = _parse(text)
        expires_at = now + _ttl(response.headers.get("Cache-Control"), self.min_ttl,
                                self.max_ttl)
        t = tables.jwks_cache
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.url == url).values(
                body=text, fetched_at=now, expires_at=expires_at))
        self._memo.put(url, (now, expires_at, keys))
        log.info("JWKS fetched: %s (%d keys, cached %d s)", url, len(keys), expires_at - now)
        return keys


def _parse(body: str) -> dict[str, PlatformKey]:
    try:
        data: Any = json.loads(body)
        keys = {}
        for item in data.get("keys", []) if isinstance(data, dict) else []:
            if not isinstance(item, dict):
                continue
            try:
                key = PlatformKey(item)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
                continue  # a key of a type we cannot use: skip it, keep the others
            if item.get("use", "sig") == "sig":
                keys[str(item.get("kid", ""))] = key
        return keys
    except ValueError:
        return {}


def _pick(keys: dict[str, PlatformKey], kid: str | None) -> PlatformKey | None:
    if kid is not None:
        return keys.get(str(kid))
    return next(iter(keys.values())) if len(keys) == 1 else None
