"""LTI Dynamic Registration in the Flask adapter: the registration URL.

``LTIKit(app, tool_configuration=...)`` serves ``LTIKIT_LTI13_REGISTRATION_PATH`` (default
``/lti13/register``, and ``/lti13/register/<link>`` for single-use links).  What is decided
there is :class:`ltikit.lti13.dynamic_registration.RegistrationFlow`'s; this module only
translates the request and the reply (the refusal page and its log line are the flow's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app, request
from werkzeug.wrappers import Response

from ..errors import LTIException
from ..lti13.dynamic_registration import RegistrationFlow
from .translate import to_request, to_response

if TYPE_CHECKING:
    from .extension import _AppState

__all__ = ["registration_view"]


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
        return to_response(RegistrationFlow.refusal(exc))
