"""The pages ltikit answers with when it refuses a request, and PyLTI's error callback."""

from __future__ import annotations

import math
from typing import Any

from werkzeug.wrappers import Response

from ..errors import LTIException
from ..pages import refusal_page

__all__ = ["default_error", "error_page"]


def error_page(exc: LTIException, *, title: str | None = None,
               retry: str | None = None, hint: str | None = None) -> Response:
    """The default refusal page (:func:`ltikit.pages.refusal_page`): escaped, plain, with
    the refusal's HTTP status (and a *Try again* link to ``retry`` when there is something
    to try again).  ``title`` and ``hint`` replace those of a refused launch."""
    reply = refusal_page(exc, title=title, retry=retry, hint=hint)
    return Response(reply.body, status=reply.status, headers=list(reply.headers),
                    mimetype=reply.mimetype)


def _with_retry_after(response: Response, exc: LTIException) -> Response:
    """``Retry-After`` on a 503 whose cause says when to try again (Canvas busy or
    throttled), whichever page (ours or the app's error callback) answers it."""
    wait = getattr(exc, "retry_after", None)
    if isinstance(wait, int | float) and response.status_code in (429, 503) and \
            "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def default_error(exception: dict[str, Any] | None = None) -> Response:
    """An error callback with PyLTI's signature that renders ltikit's error page."""
    exc = (exception or {}).get("exception")
    return error_page(exc if isinstance(exc, LTIException) else LTIException())
