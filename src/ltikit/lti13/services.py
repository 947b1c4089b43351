"""Calling LTI Advantage services: access tokens and authenticated requests.

A tool calls a platform's services (grades, rosters) with an OAuth 2 access token from the
client-credentials grant, authenticated by a JWT the tool signs with its own key (1EdTech
Security Framework 1.0 section 4.1, RFC 7523)::

    POST <token_url>
    grant_type=client_credentials
    client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
    client_assertion=<JWT {iss = sub = client_id, aud = token URL, iat, exp, jti}>
    scope=<space-separated scopes>

Tokens are kept per (registration, scope set) in the database, encrypted, until shortly
before they expire, for every worker: a worker that needs a new one takes a short lease on
the row and the others wait for its token, so a token is requested once per scope set per
expiry, not per call.  A request refused with 401 drops the token and is retried once with
a fresh one.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import requests
from sqlalchemy import ColumnElement, Engine, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from .. import _http
from ..crypto import SecretBox
from ..errors import ServiceError as ServiceError
from ..storage import tables
from ..storage.cache import TTLCache
from ..storage.lease import Lease
from ..urls import same_origin
from .registrations import Registration
from .tool_keys import ToolKeys

log = logging.getLogger("ltikit.lti13")

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Seconds to connect, and for a whole call: services are called inside a user's request.
DEFAULT_TIMEOUT = (3.0, 15.0)
TOKEN_TIMEOUT = (3.0, 8.0)
MAX_BODY_BYTES = 16 * 1024 * 1024


class ServiceTokens:
    """Access tokens for a registration's services, shared by all workers."""

    def __init__(self, engine: Engine, tool_keys: ToolKeys, box: SecretBox, *,
                 session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = TOKEN_TIMEOUT, margin: int = 60,
                 lease_seconds: int | None = None, wait_seconds: float = 3.0,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.engine, self.tool_keys, self.box = engine, tool_keys, box
        self.session = session or _http.new_session()
        self.timeout, self.margin = _http.timeouts(timeout, TOKEN_TIMEOUT), margin
        # The lease outlives the token request's own deadline by two seconds: a worker
        # that died holding it is replaced within seconds.
        self.lease_seconds = lease_seconds if lease_seconds is not None else \
            _http.lease_seconds(self.timeout[1])
        self.wait_seconds = wait_seconds
        self._clock, self._sleep = clock, sleep
        self._lease = Lease(engine, tables.service_tokens.c.lease_until, free=0, clock=clock,
                            sleep=sleep)
        # (token, expiry, version) by (registration, scopes), until the token's expiry.
        self._memo: TTLCache[tuple[int, str], tuple[str, int, int]] = TTLCache(
            1000, clock=clock)

    @staticmethod
    def scope_key(scopes: Iterable[str]) -> str:
        return " ".join(sorted(set(scopes)))

    def token(self, registration: Registration, scopes: Iterable[str]) -> str:
        """A valid access token for ``scopes`` (requested from the platform if needed)."""
        return _http.run(self.token_steps(registration, scopes))

    def token_steps(self, registration: Registration, scopes: Iterable[str]
                    ) -> _http.Steps[str]:
        """:meth:`token` as steps (:mod:`ltikit._http`)."""
        key = (registration.id, self.scope_key(scopes))
        memo = self._memo.get(key)
        if memo is not None and memo[1] - self.margin > self._clock():
            return memo[0]
        return (yield from self._fresh(registration, key, stale_version=None))

    def refused(self, registration: Registration, scopes: Iterable[str], token: str) -> str:
        """The platform refused ``token`` (401): a new one, unless another worker already
        replaced it."""
        return _http.run(self.refused_steps(registration, scopes, token))

    def refused_steps(self, registration: Registration, scopes: Iterable[str], token: str
                      ) -> _http.Steps[str]:
        """:meth:`refused` as steps."""
        key = (registration.id, self.scope_key(scopes))
        memo = self._memo.get(key)
        stale = memo[2] if memo is not None and memo[0] == token else None
        self._memo.pop(key)
        row = self._row(key)
        if stale is None and row is not None and row[0] is not None and \
                self.box.decrypt(row[0]) == token:
            stale = row[2]
        return (yield from self._fresh(registration, key, stale_version=stale))

    # -- the shared row -------------------------------------------------------------------
    def _row(self, key: tuple[int, str]) -> tuple[str | None, int, int, int] | None:
        t = tables.service_tokens
        with self.engine.connect() as conn:
            row = conn.execute(select(t.c.access_token, t.c.expires_at, t.c.version,
                                      t.c.lease_until).where(self._where(key))).first()
        return None if row is None else (row[0], row[1], row[2], row[3])

    @staticmethod
    def _where(key: tuple[int, str]) -> ColumnElement[bool]:
        t = tables.service_tokens
        return and_(t.c.platform_id == key[0], t.c.scopes == key[1])

    def _fresh(self, registration: Registration, key: tuple[int, str],
               stale_version: int | None) -> _http.Steps[str]:
        t = tables.service_tokens
        deadline = self._clock() + self.wait_seconds
        while True:
            now = int(self._clock())
            row = self._row(key)
            if row is not None and row[0] is not None and row[1] - self.margin > now \
                    and row[2] != stale_version:
                token = self.box.decrypt(row[0])
                self._remember(key, token, row[1], row[2])
                return token
            if row is None:  # the first token of these scopes: the new row is the claim
                claimed = self._insert_leased(key, now)
            else:
                claimed = self._lease.claim(and_(self._where(key), t.c.version == row[2]),
                                            self.lease_seconds)
            if claimed:
                return (yield from self._request(registration, key))
            pause = self._lease.pause(deadline)
            if pause is None:
                raise ServiceError("The platform is taking too long to grant access to its "
                                   "services.", reason="service_token_timeout")
            yield pause

    def _insert_leased(self, key: tuple[int, str], now: int) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(tables.service_tokens).values(
                    platform_id=key[0], scopes=key[1], expires_at=0,
                    lease_until=now + self.lease_seconds, version=0))
            return True
        except IntegrityError:  # another worker inserted it first: it holds the lease
            return False

    def _remember(self, key: tuple[int, str], token: str, expires_at: int,
                  version: int) -> None:
        self._memo.put(key, (token, expires_at, version), expires_at=expires_at)

    def _request(self, registration: Registration, key: tuple[int, str]
                 ) -> _http.Steps[str]:
        t = tables.service_tokens
        try:
            token, expires_in = yield from self._grant(registration, key[1])
        except Exception:
            self._lease.release(self._where(key))  # let the next caller try
            raise
        now = int(self._clock())
        with self.engine.begin() as conn:
            row = conn.execute(select(t.c.version).where(self._where(key))).first()
            version = (row[0] if row else 0) + 1
            conn.execute(update(t).where(self._where(key)).values(
                access_token=self.box.encrypt(token), expires_at=now + expires_in,
                lease_until=0, version=version))
        self._remember(key, token, now + expires_in, version)
        log.info("LTI service token granted: issuer=%s client=%s scopes=%s expires_in=%s",
                 registration.issuer, registration.client_id, key[1], expires_in)
        return token

    def _grant(self, registration: Registration, scopes: str
               ) -> _http.Steps[tuple[str, int]]:
        now = int(self._clock())
        audience = registration.token_audience or registration.token_url
        assertion = self.tool_keys.sign({
            "iss": registration.client_id, "sub": registration.client_id, "aud": audience,
            "iat": now, "exp": now + 300, "jti": secrets.token_urlsafe(18)})
        try:
            response = yield from _http.request(
                "POST", registration.token_url, connect_timeout=self.timeout[0],
                total_timeout=self.timeout[1], max_bytes=1 << 20, data={
                    "grant_type": "client_credentials", "client_assertion_type":
                    CLIENT_ASSERTION_TYPE, "client_assertion": assertion, "scope": scopes},
                headers={"Accept": "application/json"}, session=self.session)
        except _http.DeadlineExceeded:
            raise ServiceError(f"The platform's token endpoint did not answer within "
                               f"{self.timeout[1]:g} s.", reason="token_timeout",
                               status=504) from None
        except requests.RequestException as exc:
            raise ServiceError(f"The platform's token endpoint could not be reached "
                               f"({type(exc).__name__}).", reason="token_unreachable") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            error = body.get("error") if isinstance(body, dict) else None
            raise ServiceError(f"The platform refused the tool's token request (HTTP "
                               f"{response.status_code}, {error or 'no error code'}).",
                               http_status=response.status_code, reason="token_refused")
        try:
            expires_in = int(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600
        return token, max(expires_in, 1)


class ServiceClient:
    """Authenticated JSON requests to one registration's services."""

    def __init__(self, tokens: ServiceTokens, registration: Registration, *,
                 session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.tokens, self.registration = tokens, registration
        self.session = session or tokens.session
        self.timeout = _http.timeouts(timeout, DEFAULT_TIMEOUT)

    def request(self, method: str, url: str, scopes: Iterable[str], *,
                accept: str | None = None, content_type: str | None = None,
                body: Any = None, params: Mapping[str, Any] | None = None
                ) -> requests.Response:
        """``url``'s answer (a 2xx) to a request with a token for ``scopes``; any other
        answer or failure is a :class:`ServiceError`."""
        return _http.run(self.request_steps(method, url, scopes, accept=accept,
                                            content_type=content_type, body=body,
                                            params=params))

    def request_steps(self, method: str, url: str, scopes: Iterable[str], *,
                      accept: str | None = None, content_type: str | None = None,
                      body: Any = None, params: Mapping[str, Any] | None = None
                      ) -> _http.Steps[requests.Response]:
        """:meth:`request` as steps (:mod:`ltikit._http`)."""
        scopes = tuple(scopes)
        if not self.registration.service_url_allowed(url):
            # Service URLs come from the launch (or a Link header): the bearer token is
            # sent only where the registration allows, before anything is requested.
            log.warning("LTI service URL refused: issuer=%s client=%s url=%.200s",
                        self.registration.issuer, self.registration.client_id, url)
            raise ServiceError(
                f"The service URL {url[:200]} is not on an origin this platform's "
                "registration allows (https on its issuer's or token URL's origin, or one "
                "listed in its service origins); it was not called.",
                reason="service_url_not_allowed")
        token = yield from self.tokens.token_steps(self.registration, scopes)
        headers = {"Accept": accept or "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            headers["Authorization"] = f"Bearer {token}"
            try:
                response = yield from _http.request(
                    method, url, headers=dict(headers), params=params,
                    connect_timeout=self.timeout[0], total_timeout=self.timeout[1],
                    max_bytes=MAX_BODY_BYTES, session=self.session,
                    data=None if body is None else json.dumps(body, separators=(",", ":")))
            except _http.DeadlineExceeded:
                raise ServiceError(f"The platform's service at {url[:200]} did not answer "
                                   f"within {self.timeout[1]:g} s.", reason="service_timeout",
                                   status=504) from None
            except requests.RequestException as exc:
                raise ServiceError(f"The platform's service at {url} could not be reached "
                                   f"({type(exc).__name__}).", reason="service_unreachable") \
                    from None
            if response.status_code == 401 and attempt == 1:
                token = yield from self.tokens.refused_steps(self.registration, scopes, token)
                continue
            break
        if response.status_code >= 400:
            raise refusal(method, url, response)
        return response

    def pages(self, url: str, scopes: Iterable[str], *, accept: str,
              params: Mapping[str, Any] | None = None, limit: int | None = None,
              count: Callable[[Any], int] = lambda page: len(page) if isinstance(page, list)
              else 0) -> Iterator[tuple[requests.Response, Any]]:
        """Every page of a listing, following ``Link: <...>; rel="next"`` (on the same origin
        only: the access token is not sent anywhere else), each page requested when the
        previous one has been read.  ``limit``: the page size asked for, and ``count`` the
        items of a page: a full page whose ``Link`` header names no readable next page is
        an error, not the end (see :func:`links`)."""
        paging = _Paging(url, params, limit, count)
        while (next_url := paging.next()) is not None:
            response = self.request("GET", next_url, scopes, accept=accept,
                                    params=paging.params)
            yield paging.read(response)

    def pages_steps(self, url: str, scopes: Iterable[str], *, accept: str,
                    params: Mapping[str, Any] | None = None, limit: int | None = None,
                    count: Callable[[Any], int] = lambda page: len(page)
                    if isinstance(page, list) else 0
                    ) -> _http.Steps[list[tuple[requests.Response, Any]]]:
        """:meth:`pages` as steps: all of them, in a list."""
        paging = _Paging(url, params, limit, count)
        read = []
        while (next_url := paging.next()) is not None:
            response = yield from self.request_steps("GET", next_url, scopes,
                                                     accept=accept, params=paging.params)
            read.append(paging.read(response))
        return read


class _Paging:
    """Where a listing goes next, and whether it may (see :meth:`ServiceClient.pages`).
    A page is given to the caller before the trouble with its ``Link`` is raised."""

    def __init__(self, url: str, params: Mapping[str, Any] | None, limit: int | None,
                 count: Callable[[Any], int]) -> None:
        self.first_url, self.limit, self.count = url, limit, count
        self.params = params
        self._next: str | None = url
        self._problem: ServiceError | None = None
        self._seen: set[str] = set()

    def next(self) -> str | None:
        """The URL of the next page, ``None`` at the end."""
        if self._problem is not None:
            raise self._problem
        url, self._next = self._next, None
        if url is not None:
            if url in self._seen:  # a platform whose "next" comes back round never ends
                raise ServiceError(f"The platform's next page ({url[:200]}) was already "
                                   "read; the listing stopped.", reason="paging_loop")
            self._seen.add(url)
        return url

    def read(self, response: requests.Response) -> tuple[requests.Response, Any]:
        """The page in ``response``, after noting where the listing goes next."""
        self.params = None  # the next link carries the query
        page = response.json()
        found = links(response)
        next_url = found.get("next")
        header = response.headers.get("Link") or ""
        # A "next" relation written but not readable, or nothing readable on a full
        # page (a URL merely containing "next" is not a relation).
        if next_url is None and header and (
                _NEXT_RELATION.search(header) or
                (not found and self.limit is not None and self.count(page) >= self.limit)):
            self._problem = ServiceError(
                f"The platform's Link header names no next page that can be read, but "
                f"more may follow ({header[:200]!r}); the listing stopped here.",
                reason="unreadable_next_link")
        elif next_url and not same_origin(next_url, self.first_url):
            self._problem = ServiceError(f"The platform's next page ({next_url}) is on "
                                         "another origin; it was not followed.",
                                         reason="foreign_next_link")
        self._next = next_url
        return response, page


_NEXT_RELATION = re.compile(r"\brel\s*=[^;,<]*\bnext\b", re.IGNORECASE)
_TYPOGRAPHIC_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"',
                                     "\u2018": "'", "\u2019": "'"})


def links(response: requests.Response) -> dict[str, str]:
    """The ``Link`` header's URLs by relation (RFC 8288), lower-cased relation names.

    Read as ``requests`` reads it, after repairing what Moodle 4.5 writes on AGS lists:
    typographic quotes around the relation (``rel=\u201cnext\u201d``) and HTML-escaped
    URLs (``?limit=1&amp;from=1``, ``mod/lti/service/gradebookservices``).  No URL of a
    real listing contains ``&amp;`` as data, and the platform signed nothing here; the
    URL is still checked against the registration before it is called.
    """
    header = response.headers.get("Link")
    if not header:
        return {}
    try:  # http.client reads header bytes as Latin-1; Moodle's quotes are UTF-8 bytes
        repaired = header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        repaired = header
    # Before parsing: the ";" of "&amp;" would split a link's URL from its parameters.
    repaired = repaired.translate(_TYPOGRAPHIC_QUOTES).replace("&amp;", "&")
    found: dict[str, str] = {}
    for link in requests.utils.parse_header_links(repaired):
        url = link.get("url", "")
        if not url:
            continue
        for rel in link.get("rel", "").split():  # rel="next last" names two relations
            found.setdefault(rel.lower(), url)
    if repaired != header or "&amp;" in header:
        log.info("LTI service Link header repaired (typographic quotes or &amp;): %.200s",
                 header)
    return found


def refusal(method: str, url: str, response: requests.Response) -> ServiceError:
    """The :class:`ServiceError` for a platform's 4xx/5xx answer, with what the platform
    said: Moodle gives its reason only in the status line ("409 Refusing score with an
    earlier timestamp…"), Canvas in a JSON body."""
    phrase = (response.reason or "").strip()[:200] or None
    excerpt = " ".join((response.text or "")[:600].split())[:300] or None
    if excerpt in ("[]", "{}", "null"):
        excerpt = None
    message = f"The platform answered {method} {url[:200]} with HTTP {response.status_code}"
    message += f" {phrase}" if phrase else ""
    message += f": {excerpt}" if excerpt else "."
    return ServiceError(message, http_status=response.status_code, reason="service_refused",
                        http_reason=phrase, body_excerpt=excerpt)
