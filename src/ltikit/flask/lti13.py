"""LTI 1.3 in the Flask adapter: the OIDC login route, the JWKS route, the launch.

``LTIKit(app)`` registers the login URL (``LTIKIT_LTI13_LOGIN_PATH``, default
``/lti13/login``) and the tool's JWKS URL; the launch arrives at the ``target_link_uri``, a
view protected by the same ``@lti`` decorator as LTI 1.1 launches, which recognises the
``id_token``.  Every decision is :class:`ltikit.lti13.flow.LTI13Flow`'s; this module only
translates requests and replies; the app's LTI 1.3 services (registrations, JWKS cache,
tool keys, service tokens) are its :class:`ltikit.tool.Tool`'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import current_app, request
from werkzeug.wrappers import Response

from ..errors import LTIException
from ..lti13.flow import STATE_COOKIE
from .pages import error_page
from .translate import to_request, to_response

if TYPE_CHECKING:
    from .extension import _AppState

__all__ = ["STATE_COOKIE", "jwks_view", "login_view"]

log = logging.getLogger("ltikit")


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
        return to_response(state.lti13.flow.login(to_request(request,
                                                              state.public_url(request))))
    except LTIException as exc:
        log.warning("LTI 1.3 login refused: status=%s reason=%s: %s", exc.status, exc.reason,
                    exc.message)
        return error_page(exc)
