"""LTI Dynamic Registration in the Flask adapter: the registration URL.

``LTIKit(app, tool_configuration=...)`` serves ``LTIKIT_LTI13_REGISTRATION_PATH`` (default
``/lti13/register``, and ``/lti13/register/<link>`` for single-use links).  What is decided
there is :class:`ltikit.lti13.dynamic_registration.RegistrationFlow`'s; this module only
translates the request and the reply, and logs refusals (never the registration token).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import current_app, request
from werkzeug.wrappers import Response

from ..errors import LTIConfigurationError, LTIException
from ..lti13.dynamic_registration import RegistrationFlow
from .pages import error_page
from .translate import to_request, to_response

if TYPE_CHECKING:
    from .extension import _AppState

__all__ = ["registration_flow", "registration_view"]

log = logging.getLogger("ltikit")


def registration_flow(state: _AppState) -> RegistrationFlow:
    settings = state.settings
    if not state.app.secret_key:
        raise LTIConfigurationError("Dynamic Registration needs a secret key (Flask: set "
                                    "SECRET_KEY).", reason="no_secret_key")
    return RegistrationFlow(
        state.store.registrations, state.store.registration_links,
        policy=settings.lti13_registration, secret_key=state.app.secret_key,
        tool_configuration=state.tool_configuration,
        login_path=settings.lti13_login_path, jwks_path=settings.lti13_jwks_path,
        redirect_uri=settings.lti13_redirect_uri,
        timeout=settings.lti13_registration_timeout, clock=state.clock,
        prepare=lambda: _first_tool_key(state))


def _first_tool_key(state: _AppState) -> None:
    """A tool registered with a platform publishes a key at its JWKS URL: make the first
    one (``ltikit tool-keys generate``) when there is none and keys can be stored
    encrypted."""
    if state.store.box is None:
        return
    keys = state.store.tool_keys
    if not keys.jwks()["keys"]:
        keys.generate()


def registration_view(link: str | None = None) -> Response:
    """The registration URL: GET shows what will be registered, POST registers."""
    state: _AppState = current_app.extensions["ltikit"]
    try:
        state.bound(request)
        flow = state.registration
        req = to_request(request, state.public_url(request))
        if request.method == "POST":
            reply, _ = flow.confirm(req, link)
        else:
            reply = flow.start(req, link)
        return to_response(reply)
    except LTIException as exc:
        # The path may hold a link's secret: log the route, not the path.
        log.warning("LTI registration refused: status=%s reason=%s: %s", exc.status,
                    exc.reason, exc.message)
        response = error_page(exc, title="The tool could not be registered", hint=(
            "Nothing was registered. Start again from the platform once the cause is "
            "fixed; the tool's administrator finds this refusal in its log."))
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
