"""LTI 1.3 in the Flask adapter: the OIDC login route, the JWKS route, the launch.

``LTIKit(app)`` registers the login URL (``LTIKIT_LTI13_LOGIN_PATH``, default
``/lti13/login``) and the tool's JWKS URL; the launch arrives at the ``target_link_uri``, a
view protected by the same ``@lti`` decorator as LTI 1.1 launches, which recognises the
``id_token``.  Every decision is :class:`ltikit.lti13.flow.LTI13Flow`'s; this module only
translates requests and replies, and holds the app's LTI 1.3 services (registrations,
JWKS cache, tool keys, service tokens).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import current_app, request
from werkzeug.wrappers import Request, Response

from ..errors import LTIConfigurationError, LTIException
from ..lti13.flow import STATE_COOKIE, LTI13Flow
from ..lti13.oidc import OIDCStates
from ..lti13.services import ServiceClient, ServiceTokens
from ..lti13.tool_keys import ToolKeys
from .pages import error_page
from .translate import to_request, to_response

if TYPE_CHECKING:
    from ..launch import Launch
    from ..lti13.registrations import Registration
    from .extension import _AppState

__all__ = ["STATE_COOKIE", "LTI13Support", "jwks_view", "login_view"]

log = logging.getLogger("ltikit")


class LTI13Support:
    def __init__(self, state: _AppState) -> None:
        store = state.store
        self.state = state
        self.registrations = store.registrations
        settings = state.settings
        self.jwks = store.jwks(refetch_interval=settings.lti13_jwks_refetch_interval,
                               timeout=settings.lti13_jwks_timeout)
        self.service_timeout = settings.lti13_service_timeout
        if not state.app.secret_key:
            raise LTIConfigurationError("LTI 1.3 logins need a secret key (Flask: set "
                                        "SECRET_KEY).", reason="no_secret_key")
        self.states = OIDCStates(state.app.secret_key)
        self.flow = LTI13Flow(self.registrations, self.jwks, self.states, state.cookies,
                              target_link_uris=settings.lti13_target_link_uris,
                              leeway=settings.lti13_leeway,
                              redirect_uri=settings.lti13_redirect_uri)
        self._service_tokens: ServiceTokens | None = None

    def tool_keys(self) -> ToolKeys:
        """The tool's signing keys (needs LTIKIT_ENCRYPTION_KEYS: private keys are encrypted)."""
        return self.state.store.tool_keys

    def registration_of(self, launch: Launch) -> Registration:
        """The registration a stored LTI 1.3 launch came through."""
        registration = self.registrations.get(str(launch.claims.get("iss")),
                                              launch.consumer_key or "")
        if registration is None:
            raise LTIException("The platform of this launch is no longer registered.",
                               reason="unknown_platform")
        return registration

    def service_client(self, launch: Launch) -> ServiceClient:
        """An authenticated client for the services of ``launch``'s platform."""
        registration = self.registration_of(launch)
        if self._service_tokens is None:
            connect, total = self.service_timeout
            self._service_tokens = self.state.store.service_tokens(
                timeout=(connect, min(total, 8.0)))
        return ServiceClient(self._service_tokens, registration, timeout=self.service_timeout)

    # -- the login and the launch: decided by the core flow ------------------------------
    def login(self, req: Request) -> Response:
        return to_response(self.flow.login(to_request(req, self.state.public_url(req))))


def jwks_view() -> Response:
    """The tool's public keys (register this URL on the platform as the tool's JWKS URL)."""
    from flask import jsonify

    state: _AppState = current_app.extensions["ltikit"]
    response = jsonify(state.lti13.tool_keys().jwks())
    response.headers["Cache-Control"] = "max-age=3600"
    return response


def login_view() -> Response:
    state: _AppState = current_app.extensions["ltikit"]
    try:
        state.bound(request)
        return state.lti13.login(request)
    except LTIException as exc:
        log.warning("LTI 1.3 login refused: status=%s reason=%s: %s", exc.status, exc.reason,
                    exc.message)
        return error_page(exc)
