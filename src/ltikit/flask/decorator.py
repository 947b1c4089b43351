"""The PyLTI-compatible ``@lti`` decorator and the ``current_lti`` proxy."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from typing import Any

from flask import Flask, current_app, g
from flask import request as flask_request
from werkzeug.local import LocalProxy
from werkzeug.wrappers import Request, Response

from ..errors import (
    CanvasAuthorizationRequired,
    LTIException,
    LTINotInSessionException,
)
from ..flow import checked_request_type
from .extension import _AppState, _state
from .pages import error_page
from .view import LTI

__all__ = ["current_lti", "lti"]

log = logging.getLogger("ltikit")



def lti(app: Flask | Callable[..., Any] | None = None, request: str = "any",
        error: Callable[..., Any] | None = None, role: str | None = None, *,
        message_types: Collection[str] | None = None) -> Callable[..., Any]:
    """Protect a view with an LTI launch, PyLTI-style; the view receives ``lti=LTI``.

    ``request``: ``'initial'`` (the request must be a signed launch), ``'session'`` (an
    earlier launch of this browser or tab), ``'any'`` (either).  ``role``: a role group
    name, or ``'any'`` (default: the extension's ``role``, else ``'any'``).  ``error``
    (default: the extension's ``error``; without either, the app's
    ``@app.errorhandler(LTIException)`` if it has one): called as
    ``error(exception={'exception': exc, 'kwargs': ..., 'args': ...})`` when the request
    is refused; its return value is the
    response (given the refusal's status when it has none); LTI errors raised by the view
    itself (such as a refused ``post_grade``) are handled the same way.  ``message_types``: the
    message types accepted as a launch, LTI 1.1 ``lti_message_type`` values and LTI 1.3
    ``message_type`` values alike (default: ``LTIKIT_MESSAGE_TYPES`` for 1.1, basic launches,
    and ``LTIKIT_LTI13_MESSAGE_TYPES`` for 1.3, resource link launches).  Declared types are
    never widened: ``("ContentItemSelectionRequest",)`` takes no LTI 1.3 launch; declare
    ``"LtiDeepLinkingRequest"`` too for that.
    """
    if callable(app) and not isinstance(app, Flask):  # bare @lti
        view: Callable[..., Any] = lti()(app)
        return view
    checked_request_type(request)
    bound_app = app

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            flask_app = bound_app if isinstance(bound_app, Flask) else \
                current_app._get_current_object()  # type: ignore[attr-defined]
            req = flask_request._get_current_object()  # type: ignore[attr-defined]
            try:
                state = _state(flask_app)
                the_lti = state.authenticate(req, request, role or state.default_role,
                                             message_types)
                if isinstance(the_lti, Response):  # the launch continues in the browser
                    return the_lti
                g.ltikit_lti = the_lti
                kwargs["lti"] = the_lti
                # As in PyLTI, an LTI error raised by the view itself (a refused grade,
                # say) goes to the same error callback instead of becoming a 500.
                return view(*args, **kwargs)
            except CanvasAuthorizationRequired as exc:
                the_lti = g.get("ltikit_lti")
                if the_lti is None or the_lti._state.canvas is None:
                    return _refuse(flask_app, req, exc, error, args, kwargs)
                try:
                    return the_lti._state.canvas.start_authorization(the_lti, exc.return_to)
                except LTIException as inner:
                    return _refuse(flask_app, req, inner, error, args, kwargs)
            except LTIException as exc:
                return _refuse(flask_app, req, exc, error, args, kwargs)

        return wrapper

    return decorator


def _refuse(app: Flask, req: Request, exc: LTIException, error: Callable[..., Any] | None,
            args: tuple[Any, ...], kwargs: dict[str, Any]) -> Response:
    state: _AppState | None = app.extensions.get("ltikit")
    if state is None:  # the extension itself could not start: still answer with a page
        log.error("ltikit is misconfigured: %s", exc.message)
        return error_page(exc)
    error = error or state.default_error
    if error is None and _has_error_handler(app, req, exc):
        state.log_refusal(req, exc)
        raise exc  # to the app's @app.errorhandler(LTIException)
    refusal: Response = state.refuse(req, exc, error, args, kwargs)
    return refusal


def _has_error_handler(app: Flask, req: Request, exc: LTIException) -> bool:
    """Does the app (or the request's blueprint) handle ``exc``'s class or a base of it
    up to :class:`LTIException`?  (``Flask.error_handler_spec``, keyed by blueprint name
    and status code, ``None`` for class handlers.)"""
    classes = [c for c in type(exc).__mro__ if issubclass(c, LTIException)]
    for blueprint in (*getattr(req, "blueprints", ()), None):
        handlers = app.error_handler_spec.get(blueprint, {}).get(None, {})
        if any(c in handlers for c in classes):
            return True
    return False


def _current() -> LTI:
    the_lti: LTI | None = g.get("ltikit_lti")
    if the_lti is None:
        raise LTINotInSessionException(reason="no_launch_in_request")
    return the_lti


current_lti: LTI = LocalProxy(_current)  # type: ignore[assignment]
"""The ``lti`` object of the current request (inside a decorated view)."""
