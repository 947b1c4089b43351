"""LTI 1.3 in the Flask adapter: the OIDC login route and the id_token launch.

``LTIKit(app)`` registers the login URL (``LTIKIT_LTI13_LOGIN_PATH``, default
``/lti13/login``); the launch arrives at the ``target_link_uri``, a view protected by the
same ``@lti`` decorator as LTI 1.1 launches, which recognises the ``id_token``.

The browser is bound to its login by a short-lived ``SameSite=None; Secure; Partitioned``
cookie holding the state.  When the browser did not send it back (third-party cookies
blocked), the launch is refused with a page that offers to open the tool in a new window;
the platform-storage (postMessage) path is the next step.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING

from flask import current_app, redirect, request
from werkzeug.wrappers import Request, Response

from ..errors import LTIAuthenticationError, LTIConfigurationError, LTIException
from ..lti13 import JWKSCache, Registrations, verify_id_token
from ..lti13.id_token import RESOURCE_LINK_REQUEST
from ..lti13.oidc import (
    OIDCStates,
    auth_request_url,
    parse_login,
    registration_for,
    same_origin,
)
from ..roles import Roles

if TYPE_CHECKING:
    from . import _AppState

log = logging.getLogger("ltikit")

STATE_COOKIE = "ltikit_lti13_state"


class LTI13Support:
    def __init__(self, state: _AppState) -> None:
        engine = state.storage.engine
        self.state = state
        self.registrations = Registrations(engine)
        self.jwks = JWKSCache(engine)
        if not state.app.secret_key:
            raise LTIConfigurationError("LTI 1.3 logins need a secret key (Flask: set "
                                        "SECRET_KEY).", reason="no_secret_key")
        self.states = OIDCStates(state.app.secret_key)
        self._tool_keys = None

    def tool_keys(self):
        """The tool's signing keys (needs LTIKIT_ENCRYPTION_KEYS: private keys are encrypted)."""
        if self._tool_keys is None:
            from ..crypto import SecretBox
            from ..lti13.tool_keys import ToolKeys

            keys = self.state.app.config.get("LTIKIT_ENCRYPTION_KEYS")
            self._tool_keys = ToolKeys(self.state.storage.engine, SecretBox(keys or []))
        return self._tool_keys

    # -- the login ------------------------------------------------------------------------
    def login(self, req: Request) -> Response:
        login = parse_login(req.values)
        registration = registration_for(self.registrations, login)
        public = self.state.public_url(req)
        allowed = self.state.app.config["LTIKIT_LTI13_TARGET_LINK_URIS"]
        if not (same_origin(login.target_link_uri, public) or
                login.target_link_uri in allowed):
            raise LTIException("The login's target_link_uri is not one of this tool's.",
                               reason="foreign_target_link_uri")
        state, nonce = self.states.create(registration, login.target_link_uri)
        response = redirect(auth_request_url(registration, login, state=state, nonce=nonce,
                                             redirect_uri=login.target_link_uri))
        response.headers["Cache-Control"] = "no-store"
        response.set_cookie(STATE_COOKIE, state, max_age=self.states.max_age,
                            **self.state.cookie_options())
        log.info("LTI 1.3 login: issuer=%s client=%s", registration.issuer,
                 registration.client_id)
        return response

    # -- the launch -----------------------------------------------------------------------
    def verify_launch(self, req: Request, message_types: frozenset[str]):
        state = req.form.get("state", "")
        cookie = req.cookies.get(STATE_COOKIE)
        if not cookie:
            raise LTIAuthenticationError(
                "Your browser did not keep the login cookie of this launch (cookies from "
                "the tool are blocked inside the course page). Open the tool in a new window "
                "to continue.", reason="state_cookie_missing")
        if not hmac.compare_digest(cookie.encode(), state.encode()):
            raise LTIAuthenticationError("This launch does not belong to the login this "
                                         "browser started.", reason="state_mismatch")
        pending = self.states.take(state)
        if pending is None:
            raise LTIAuthenticationError("This launch's login is unknown or expired; open the "
                                         "tool again from the course.", reason="unknown_state")
        verified = verify_id_token(req.form.get("id_token", ""), self.registrations,
                                   self.jwks, message_types=message_types,
                                   leeway=int(self.state.app.config["LTIKIT_LTI13_LEEWAY"]))
        if verified.registration.id != pending.platform_id or not hmac.compare_digest(
                str(verified.nonce).encode(), pending.nonce.encode()):
            raise LTIAuthenticationError("The id_token was not issued for this login.",
                                         reason="nonce_mismatch")
        claims = verified.claims
        target = claims.get("https://purl.imsglobal.org/spec/lti/claim/target_link_uri")
        if verified.message_type == RESOURCE_LINK_REQUEST and target != pending.target_link_uri:
            raise LTIAuthenticationError("The launch's target_link_uri is not the one the login "
                                         "asked for.", reason="target_link_uri_mismatch")
        roles = Roles.parse(claims.get("https://purl.imsglobal.org/spec/lti/claim/roles") or [])
        return verified, roles


def jwks_view() -> Response:
    """The tool's public keys (register this URL on the platform as the tool's JWKS URL)."""
    from flask import jsonify

    from . import LTIKit

    state = LTIKit.state(current_app)
    response = jsonify(state.lti13.tool_keys().jwks())
    response.headers["Cache-Control"] = "max-age=3600"
    return response


def login_view() -> Response:
    from . import LTIKit, error_page

    state = LTIKit.state(current_app)
    try:
        return state.lti13.login(request)
    except LTIException as exc:
        log.warning("LTI 1.3 login refused: status=%s reason=%s: %s", exc.status, exc.reason,
                    exc.message)
        return error_page(exc)



