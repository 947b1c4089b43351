"""Canvas OAuth2 in the Flask adapter: the authorization redirect, the callback, the client.

Set ``LTIKIT_CANVAS_INSTANCES`` and ``LTIKIT_ENCRYPTION_KEYS`` and create the extension
explicitly (``LTIKit(app)``, which registers the callback route).  Then, in a view::

    @app.route("/")
    @lti(request="session")
    def index(lti):
        profile = lti.canvas_api.get_current_user().get_profile()

A view that needs ``lti.canvas_api`` while the user has no token is sent through
Canvas's authorization and brought back to the same page afterwards.  Every decision of
that authorization (the ``state``, the session binding, the Canvas user match) is
:class:`ltikit.canvas.flow.CanvasFlow`'s; this module only translates requests and replies.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import current_app, request
from werkzeug.sansio.utils import get_current_url
from werkzeug.wrappers import Response

from ..canvas import CanvasAuthorizationRequired
from ..canvas.flow import Refused
from ..canvas.services import CanvasServices
from ..errors import LTIException
from .pages import error_page
from .translate import to_request, to_response
from .view import LTI

if TYPE_CHECKING:
    from canvasapi import Canvas

    from .extension import _AppState

log = logging.getLogger("ltikit")

class CanvasSupport:
    """The Canvas parts of one app's ltikit state: the tool's
    :class:`~ltikit.canvas.services.CanvasServices`, and the redirect URI and authorization
    redirect, which need the Flask request."""

    def __init__(self, state: _AppState, services: CanvasServices) -> None:
        self.state = state
        self.services = services
        self.instances = services.instances
        self.tokens = services.tokens
        self.states = services.states
        self.flow = services.flow
        self.oauth_client = services.oauth_client

    # -- for the LTI object ---------------------------------------------------------------
    def client(self, lti: LTI) -> Canvas:
        return self.services.client(lti.launch)

    def logout(self, lti: LTI) -> bool:
        """Revoke the user's token at Canvas and forget it; True if there was one."""
        return self.services.logout(lti.launch)

    # -- the authorization redirect and the callback ----------------------------------------
    def redirect_uri(self) -> str:
        settings = self.state.settings
        if settings.canvas_redirect_uri:
            return settings.canvas_redirect_uri
        public = urlsplit(self.state.public_url(request))
        return get_current_url(public.scheme, public.netloc, request.root_path,
                               settings.canvas_callback_path)

    def start_authorization(self, lti: LTI, return_to: str | None) -> Response:
        req = to_request(request, self.state.public_url(request))
        return to_response(self.flow.authorize(req, lti._active, return_to,
                                               self.redirect_uri()))


def _page(refused: Refused) -> Response:
    exc = LTIException(refused.message, reason=refused.reason)
    exc.status = refused.status
    return error_page(exc, title=refused.title, retry=refused.retry)


def canvas_callback() -> Response:
    state: _AppState = current_app.extensions["ltikit"]
    canvas = state.canvas
    if canvas is None:
        return _page(Refused("Canvas is not set up",
                             "This tool has no Canvas instances configured.", 404))
    try:
        state.bound(request)
        plain = to_request(request, state.public_url(request))
    except LTIException as exc:
        log.warning("Canvas callback refused: status=%s reason=%s", exc.status, exc.reason)
        title = "This request is too large" if exc.status == 413 else "This request is malformed"
        return _page(Refused(title, exc.message, exc.status, reason=exc.reason))
    decision = canvas.flow.callback(plain, canvas.redirect_uri())
    return _page(decision) if isinstance(decision, Refused) else to_response(decision)


__all__ = ["CanvasAuthorizationRequired", "CanvasSupport", "canvas_callback"]
