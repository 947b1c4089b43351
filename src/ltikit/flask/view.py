"""The ``lti`` object a decorated Flask view receives: :class:`ltikit.view.BaseLTI` (PyLTI's
members, the launch model, grades, the LTI Advantage services) plus what needs Flask: the
URLs of the app's routes, the deep linking answer as a response, the launch cookie, and the
Canvas API as the user."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import after_this_request, url_for
from flask import request as flask_request
from werkzeug.wrappers import Response

from ..launches import ActiveLaunch
from ..lti13.deep_linking import ContentItem
from ..view import BaseLTI

if TYPE_CHECKING:
    from canvasapi import Canvas

    from .canvas import CanvasSupport
    from .extension import _AppState

__all__ = ["LTI"]


class LTI(BaseLTI):
    """The ``lti`` object a decorated view receives (PyLTI's public members and more)."""

    def __init__(self, state: _AppState, active: ActiveLaunch) -> None:
        super().__init__(state.tool, active)
        self._state = state

    def deep_link_response(self, items: Iterable[ContentItem], *, message: str | None = None,
                           log: str | None = None, error_message: str | None = None,
                           error_log: str | None = None) -> Response:
        """Answer this deep linking request with ``items``
        (:mod:`ltikit.lti13.deep_linking` content items): a page that posts the signed
        ``LtiDeepLinkingResponse`` back to the platform.  An empty list means "nothing
        chosen"."""
        page = self._deep_link_page(items, message=message, log=log,
                                    error_message=error_message, error_log=error_log)
        return Response(page.body, mimetype="text/html", headers=page.headers)

    def _forget_cookie(self, name: str) -> None:
        if flask_request and flask_request.cookies.get(name) == self._active.token:
            def clear(response: Response) -> Response:
                self._state.clear_cookie(response)
                return response

            after_this_request(clear)

    # -- Canvas API as this user -----------------------------------------------------------
    @property
    def canvas_api(self) -> Canvas:
        """A ``canvasapi.Canvas`` acting as the launching user on the launching Canvas.

        Raises :class:`~ltikit.canvas.CanvasAuthorizationRequired` when the user has not
        authorized the tool yet (or revoked it); inside ``@lti`` views that becomes a
        redirect through Canvas's authorization and back to the current page.
        """
        return self._canvas_support().client(self)

    def canvas_logout(self) -> bool:
        """Revoke the user's Canvas token (``DELETE /login/oauth2/token``) and forget it."""
        return self._canvas_support().logout(self)

    def _canvas_support(self) -> CanvasSupport:
        self._canvas_services()  # configured, or a clear error
        assert self._state.canvas is not None
        return self._state.canvas

    # -- carrying the launch to the next request ------------------------------------------
    def url_for(self, endpoint: str, **values: Any) -> str:
        """``flask.url_for`` plus this launch's id, so the link works in this tab even when
        cookies are blocked or another launch happened in another tab."""
        values[self._tool.settings.launch_param] = self.launch_id
        return url_for(endpoint, **values)
