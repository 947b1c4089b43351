"""The OIDC third-party-initiated login of LTI 1.3 (Security Framework 1.0 section 5.1.1).

The platform sends the browser to the tool's login URL; the tool answers with a redirect
to the platform's auth URL carrying a fresh ``state`` and ``nonce``; the platform POSTs the
``id_token`` and the ``state`` back.  The state ties the launch to this login (and to this
browser, through a cookie); the nonce inside the signed token ties the token to the state;
the nonce is claimed once, in shared storage, when the launch is stored.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from itsdangerous import BadSignature

from ..errors import LTIAuthenticationError, LTIMalformedRequest
from ..signing import TimedTokenSerializer
from .registrations import Registration, Registrations

STATE_LIFETIME = 600
# Login parameters are capped at 4 KiB each; the state carries a few of them.
MAX_STATE_LENGTH = 16384
_FRAME_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


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
        message_hint=value("lti_message_hint"),
        storage_target=_frame_name(value("lti_storage_target")))


def _frame_name(target: str | None) -> str | None:
    # A frame name, or "_parent" (LTI Client Side postMessages); anything else is ignored
    # rather than refused: the login still works through the cookie.
    return target if target and _FRAME_NAME.fullmatch(target) else None


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


def auth_request_url(registration: Registration, login: LoginRequest, *, state: str,
                     nonce: str, redirect_uri: str) -> str:
    """The platform's auth URL with the OIDC authentication request (form-encoded query)."""
    url = _auth_prefix(registration.auth_login_url, registration.client_id, redirect_uri) + \
        "&" + urlencode({"login_hint": login.login_hint, "state": state, "nonce": nonce})
    if login.message_hint:
        url += "&" + urlencode({"lti_message_hint": login.message_hint})
    return url


@functools.lru_cache(maxsize=256)
def _auth_prefix(auth_login_url: str, client_id: str, redirect_uri: str) -> str:
    # The part that is the same for every login to one registration and target: encoded once.
    separator = "&" if urlsplit(auth_login_url).query else "?"
    return auth_login_url + separator + urlencode([
        ("scope", "openid"), ("response_type", "id_token"), ("response_mode", "form_post"),
        ("prompt", "none"), ("client_id", client_id), ("redirect_uri", redirect_uri)])


@dataclass(frozen=True)
class NewLogin:
    """What the login route hands out: the state and nonce for the auth request, and, when
    the platform offers client-side storage, the key and secret to put there."""

    state: str
    nonce: str
    storage_key: str | None = None
    storage_secret: str | None = None


@dataclass(frozen=True)
class PendingLogin:
    """A verified state: which login it came from."""

    platform_id: int
    nonce: str
    target_link_uri: str
    storage_target: str | None = None
    storage_key: str | None = None
    storage_digest: str | None = None

    def storage_secret_matches(self, secret: str) -> bool:
        """Did the browser read back the secret this login put in platform storage?"""
        if not self.storage_digest or not secret or len(secret) > 256:
            return False
        return hmac.compare_digest(_digest(secret), self.storage_digest)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def state_cookie(state: str, prefix: str) -> tuple[str, str]:
    """(name, value) of the cookie that ties a browser to the login of ``state``: one
    cookie per login (named ``prefix_`` + the start of the state's digest), holding the
    digest (the state itself may be too long for a cookie, and the browser needs only to
    prove it started this login)."""
    digest = _digest(state)
    return f"{prefix}_{digest[:16]}", digest


class OIDCStates:
    """Login states as signed, expiring tokens that carry their nonce.

    Nothing is written at login: the state is ``{registration, nonce, target}`` signed
    with the app's secret key (itsdangerous), valid ten minutes.  It cannot be forged, the
    browser that started the login holds it in a cookie, and it is single-use because the
    nonce it carries must match the id_token's, and the nonce is claimed in the database
    (unique, shared by all workers) when the launch is stored: a second use is a replay.

    When the platform offers client-side storage (``lti_storage_target``), the login also
    puts a random secret into the platform's window; the state carries only its SHA-256,
    so the launch can ask for the secret back when the cookie did not come back.  It is
    signed, not encrypted: it holds nothing that was not already in the login request's URL
    except the secret's digest.
    """

    def __init__(self, secret_key: str | bytes, *, max_age: int = STATE_LIFETIME) -> None:
        self._serializer = TimedTokenSerializer(secret_key, salt="ltikit.lti13-state")
        self.max_age = max_age

    def create(self, registration: Registration, login: LoginRequest) -> NewLogin:
        nonce = secrets.token_urlsafe(32)
        data: dict[str, object] = {"p": registration.id, "n": nonce,
                                   "t": login.target_link_uri}
        key = secret = None
        # lti_storage_target comes in an unsigned request: honoured only for platforms that
        # are registered as offering the storage (see ltikit.lti13.platform_storage).
        if login.storage_target and registration.platform_storage:
            key, secret = f"ltikit_state_{nonce[:16]}", secrets.token_urlsafe(24)
            data.update(s=login.storage_target, k=key, h=_digest(secret))
        return NewLogin(state=self._serializer.dumps(data), nonce=nonce, storage_key=key,
                        storage_secret=secret)

    def read(self, state: str | None) -> PendingLogin | None:
        """The login ``state`` stands for, when it is ours and unexpired.  Reading does not
        use it up: its nonce does, when the launch is stored (see the class docstring)."""
        if not state or len(state) > MAX_STATE_LENGTH:
            return None
        try:
            data = self._serializer.loads(state, max_age=self.max_age)
        except BadSignature:
            return None
        return PendingLogin(platform_id=int(data["p"]), nonce=str(data["n"]),
                            target_link_uri=str(data["t"]), storage_target=data.get("s"),
                            storage_key=data.get("k"), storage_digest=data.get("h"))

    def take(self, state: str | None) -> PendingLogin | None:
        """Deprecated: :meth:`read` (it verifies; unlike ``OAuthStates.take`` it deletes
        nothing)."""
        warnings.warn("OIDCStates.take is now OIDCStates.read", DeprecationWarning,
                      stacklevel=2)
        return self.read(state)


def relaunch_params(registration: Registration, login: LoginRequest) -> dict[str, str]:
    """The login request's parameters, to start the same login again (in a new window)."""
    params = {"iss": login.issuer, "login_hint": login.login_hint,
              "target_link_uri": login.target_link_uri, "client_id": registration.client_id}
    if login.deployment_id:
        params["lti_deployment_id"] = login.deployment_id
    if login.message_hint:
        params["lti_message_hint"] = login.message_hint
    return params
