"""The OIDC third-party-initiated login of LTI 1.3 (Security Framework 1.0 section 5.1.1).

The platform sends the browser to the tool's login URL; the tool answers with a redirect
to the platform's auth URL carrying a fresh ``state`` and ``nonce``; the platform POSTs the
``id_token`` and the ``state`` back.  The state ties the launch to this login (and to this
browser, through a cookie); the nonce inside the signed token ties the token to the state;
the nonce is claimed once, in shared storage, when the launch is stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..errors import LTIAuthenticationError, LTIMalformedRequest
from .registrations import Registration, Registrations

STATE_LIFETIME = 600


@dataclass(frozen=True)
class LoginRequest:
    issuer: str
    login_hint: str
    target_link_uri: str
    client_id: str | None = None
    deployment_id: str | None = None
    message_hint: str | None = None
    storage_target: str | None = None


def parse_login(params: Mapping[str, str]) -> LoginRequest:
    def value(name: str) -> str | None:
        raw = params.get(name)
        if raw is not None and len(raw) > 4096:
            raise LTIMalformedRequest(f"The login parameter {name} is too long.",
                                      reason="bad_login")
        return raw or None

    issuer, hint, target = value("iss"), value("login_hint"), value("target_link_uri")
    if not issuer or not hint or not target:
        raise LTIMalformedRequest("The login request needs iss, login_hint and "
                                  "target_link_uri.", reason="bad_login")
    return LoginRequest(
        issuer=issuer, login_hint=hint, target_link_uri=target, client_id=value("client_id"),
        # Canvas sends deployment_id; the specification names it lti_deployment_id.
        deployment_id=value("lti_deployment_id") or value("deployment_id"),
        message_hint=value("lti_message_hint"), storage_target=value("lti_storage_target"))


def registration_for(registrations: Registrations, login: LoginRequest) -> Registration:
    client_id = login.client_id
    if client_id is None:  # only unambiguous when the issuer has one registration
        candidates = registrations.client_ids(login.issuer)
        if len(candidates) != 1:
            raise LTIMalformedRequest("The platform did not say which client id (client_id) "
                                      "this login is for.", reason="no_client_id")
        client_id = candidates[0]
    registration = registrations.get(login.issuer, client_id)
    if registration is None:
        raise LTIAuthenticationError("This platform (issuer and client id) is not registered "
                                     "with the tool.", reason="unknown_platform")
    return registration


def same_origin(url: str, origin: str) -> bool:
    a, b = urlsplit(url), urlsplit(origin)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def auth_request_url(registration: Registration, login: LoginRequest, *, state: str,
                     nonce: str, redirect_uri: str) -> str:
    params = [("scope", "openid"), ("response_type", "id_token"),
              ("response_mode", "form_post"), ("prompt", "none"),
              ("client_id", registration.client_id), ("redirect_uri", redirect_uri),
              ("login_hint", login.login_hint), ("state", state), ("nonce", nonce)]
    if login.message_hint:
        params.append(("lti_message_hint", login.message_hint))
    separator = "&" if urlsplit(registration.auth_login_url).query else "?"
    return f"{registration.auth_login_url}{separator}{urlencode(params)}"


@dataclass(frozen=True)
class PendingLogin:
    platform_id: int
    nonce: str
    target_link_uri: str


class OIDCStates:
    """Login states as signed, expiring tokens that carry their nonce.

    Nothing is written at login: the state is ``{registration, nonce, target}`` signed
    with the app's secret key (itsdangerous), valid ten minutes.  It cannot be forged, the
    browser that started the login holds it in a cookie, and it is single-use because the
    nonce it carries must match the id_token's, and the nonce is claimed in the database
    (unique, shared by all workers) when the launch is stored: a second use is a replay.
    """

    def __init__(self, secret_key: str | bytes, *, max_age: int = STATE_LIFETIME) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="ltikit.lti13-state")
        self.max_age = max_age

    def create(self, registration: Registration, target_link_uri: str) -> tuple[str, str]:
        """(state, nonce) for a new login."""
        nonce = secrets.token_urlsafe(32)
        state = self._serializer.dumps({"p": registration.id, "n": nonce, "t": target_link_uri})
        return state, nonce

    def take(self, state: str | None) -> PendingLogin | None:
        if not state or len(state) > 4096:
            return None
        try:
            data = self._serializer.loads(state, max_age=self.max_age)
        except BadSignature:
            return None
        return PendingLogin(platform_id=int(data["p"]), nonce=str(data["n"]),
                            target_link_uri=str(data["t"]))


