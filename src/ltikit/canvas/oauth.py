"""Canvas's OAuth2 endpoints, from the tool's side (``doc/api/oauth.md`` and
``oauth_endpoints.md`` in Canvas's source).

What this module knows about Canvas that a generic OAuth2 client would get wrong:

* a token-endpoint error on a request that carries a ``redirect_uri`` may come back as a
  **302 to that URI** with ``error`` in the query (unless the instance has its
  ``no_redirect_on_oauth_token_method`` flag on); redirects are therefore never followed
  and a 302 is read as the error it carries;
* an unknown or revoked refresh token is ``400 invalid_request`` "refresh_token not
  found", not ``invalid_grant``; those two are the refusals that end a grant
  (:attr:`CanvasOAuthError.ends_grant`).  Anything else (429 with ``Retry-After``, 5xx, a
  timeout, an answer that is not Canvas's JSON) is :class:`CanvasUnavailable`: the grant is
  kept and the call is tried again later;
* a refresh answer normally has **no** ``refresh_token`` (the old one stays valid), but one
  must be stored whenever it appears;
* ``expires_in`` is absent for keys that do not expire tokens;
* the token answer names the user the token belongs to (``user.id``), which the tool
  checks against the user who launched it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import secrets
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from .. import _http
from ..errors import CanvasOAuthError as CanvasOAuthError
from ..errors import CanvasUnavailable as CanvasUnavailable
from .instances import CanvasInstance

log = logging.getLogger("ltikit.canvas")

# Seconds to connect to Canvas's token endpoint, and for the whole call: a refresh happens
# inside a user's request, so it must end well within a worker's timeout (gunicorn: 30 s).
DEFAULT_TIMEOUT = (3.0, 8.0)
# The longest Retry-After honoured; a longer one is a misconfiguration, not a plan.
MAX_RETRY_AFTER = 300


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), bounded."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value) if value.replace(".", "", 1).isdigit() else \
            parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    refresh_token: str | None
    expires_in: int | None
    user_id: str | None
    user_name: str | None

    def __repr__(self) -> str:  # never print tokens, even in a traceback
        return f"<TokenResponse user_id={self.user_id!r} expires_in={self.expires_in!r}>"


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode("ascii")
    return verifier, challenge


class CanvasOAuthClient:
    """The OAuth2 calls for one Canvas instance's developer key."""

    def __init__(self, instance: CanvasInstance, *, session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.instance = instance
        self._session = session or _http.new_session()
        self._connect_timeout, self._total_timeout = _http.timeouts(timeout, DEFAULT_TIMEOUT)

    @property
    def total_timeout(self) -> float:
        """The longest a token request may take (a refresh lease outlives it a little)."""
        return self._total_timeout

    def authorize_url(self, redirect_uri: str, state: str, *,
                      code_challenge: str | None = None) -> str:
        params = [("client_id", self.instance.client_id), ("response_type", "code"),
                  ("redirect_uri", redirect_uri), ("state", state)]
        if self.instance.scopes:
            params.append(("scope", " ".join(self.instance.scopes)))
        if code_challenge:
            params += [("code_challenge", code_challenge), ("code_challenge_method", "S256")]
        return f"{self.instance.url}/login/oauth2/auth?{urlencode(params)}"

    # Each call is written once, as steps (:mod:`ltikit._http`); the method of the same
    # name without ``_steps`` runs them here and now.  An async adapter awaits the steps.
    def exchange_code(self, code: str, redirect_uri: str, *,
                      code_verifier: str | None = None) -> TokenResponse:
        return _http.run(self.exchange_code_steps(code, redirect_uri,
                                                  code_verifier=code_verifier))

    def exchange_code_steps(self, code: str, redirect_uri: str, *,
                            code_verifier: str | None = None) -> _http.Steps[TokenResponse]:
        form = {"grant_type": "authorization_code", "client_id": self.instance.client_id,
                "client_secret": self.instance.client_secret, "redirect_uri": redirect_uri,
                "code": code}
        if code_verifier:
            form["code_verifier"] = code_verifier
        return (yield from self._token_request(form))

    def refresh(self, refresh_token: str) -> TokenResponse:
        return _http.run(self.refresh_steps(refresh_token))

    def refresh_steps(self, refresh_token: str) -> _http.Steps[TokenResponse]:
        # No redirect_uri here: with one, Canvas may answer errors with a 302 (see above).
        return (yield from self._token_request({"grant_type": "refresh_token",
                                    "client_id": self.instance.client_id,
                                    "client_secret": self.instance.client_secret,
                                    "refresh_token": refresh_token}))

    def revoke(self, access_token: str) -> bool:
        """``DELETE /login/oauth2/token``: True if Canvas confirmed (the token is dropped
        locally either way)."""
        return _http.run(self.revoke_steps(access_token))

    def revoke_steps(self, access_token: str) -> _http.Steps[bool]:
        try:
            response = yield from _http.request(
                "DELETE", f"{self.instance.url}/login/oauth2/token",
                connect_timeout=self._connect_timeout, total_timeout=self._total_timeout,
                max_bytes=65536, headers={"Authorization": f"Bearer {access_token}"},
                session=self._session)
        except requests.RequestException as exc:
            log.warning("token revocation at %s failed: %s", self.instance.domain,
                        type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning("token revocation at %s answered HTTP %s", self.instance.domain,
                        response.status_code)
        return response.status_code == 200

    def _token_request(self, form: dict[str, str]) -> _http.Steps[TokenResponse]:
        url = f"{self.instance.url}/login/oauth2/token"
        domain = self.instance.domain
        try:
            response = yield from _http.request("POST", url, data=form,
                                                connect_timeout=self._connect_timeout,
                                                total_timeout=self._total_timeout,
                                                max_bytes=1 << 20, session=self._session,
                                                headers={"Accept": "application/json"})
            raw = response.content
        except _http.DeadlineExceeded:
            raise CanvasUnavailable(f"Canvas ({domain}) did not answer within "
                                    f"{self._total_timeout:g} s; try again in a moment.",
                                    reason="canvas_timeout", status=504) from None
        except requests.RequestException as exc:
            raise CanvasUnavailable(f"Canvas ({domain}) could not be reached "
                                    f"({type(exc).__name__}).") from None
        if response.status_code in (301, 302, 303, 307, 308):
            query = parse_qs(urlsplit(response.headers.get("Location", "")).query)
            error = (query.get("error") or ["redirected"])[0]
            raise CanvasOAuthError(error, (query.get("error_description") or [""])[0],
                                   http_status=response.status_code)
        wait = retry_after(response.headers.get("Retry-After"))
        if response.status_code == 429 or response.status_code >= 500:
            raise CanvasUnavailable(f"Canvas ({domain}) answered HTTP "
                                    f"{response.status_code}; try again in a moment.",
                                    retry_after=wait)
        body = _json(raw)
        if response.status_code != 200 or "access_token" not in body:
            if not isinstance(body.get("error"), str):
                # Not Canvas's refusal (a proxy's page, a throttled 403, garbage): the grant
                # may well be fine.
                raise CanvasUnavailable(f"Canvas ({domain}) answered HTTP "
                                        f"{response.status_code} without an OAuth error.",
                                        retry_after=wait, reason="canvas_bad_answer")
            raise CanvasOAuthError(str(body.get("error") or "invalid_response"),
                                   str(body.get("error_description") or ""),
                                   http_status=response.status_code)
        user = body.get("user")
        if not isinstance(user, dict):
            user = {}
        expires_in = body.get("expires_in")
        return TokenResponse(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
            expires_in=int(expires_in) if isinstance(expires_in, int | float) else None,
            user_id=str(user["id"]) if user.get("id") is not None else None,
            user_name=user.get("name"))


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
