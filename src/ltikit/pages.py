"""The page ltikit answers a refused request with, for every adapter: escaped, plain, with
the refusal's HTTP status, never cached (``Retry-After`` on a 503 that says when)."""

from __future__ import annotations

import math

from markupsafe import Markup

from .errors import LTIException
from .http import Reply

__all__ = ["refusal_page"]

_TITLES = {400: "This launch could not be read", 401: "This launch could not be verified",
           403: "You do not have access to this page", 413: "This request is too large",
           503: "Canvas is not available right now", 504: "Canvas is taking too long"}
_HINTS = {
    401: "Go back to your course and open the tool again from there. If this keeps "
         "happening, your browser may be blocking cookies for this tool inside the course "
         "page; opening the tool in a new window usually helps.",
    403: "This part of the tool is for a different role in the course.",
}


def refusal_page(exc: LTIException, *, title: str | None = None,
                 retry: str | None = None, hint: str | None = None) -> Reply:
    """The default refusal page: escaped, plain, with the refusal's HTTP status (and a
    *Try again* link to ``retry`` when there is something to try again).  ``title`` and
    ``hint`` replace those of a refused launch."""
    status = exc.status
    title = title or _TITLES.get(status, "The tool could not complete this request")
    hint = _HINTS.get(status, "") if hint is None else hint
    action = Markup('<p><a href="{}">Try again</a></p>').format(retry) if retry else ""
    relaunch = getattr(exc, "relaunch_url", None)
    if relaunch:
        action = Markup('<p><a href="{}" target="_blank" rel="noopener">Open the tool in a '
                        'new window</a></p>').format(relaunch)
    body = Markup(
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        "<title>{title}</title>"
        "<body style='font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;"
        "padding:0 1rem;color:#222'><h1 style='font-size:1.4rem'>{title}</h1>"
        "<p>{message}</p><p style='color:#555'>{hint}</p>{action}"
        "<p style='color:#888;font-size:.85rem'>Error {status} ({reason})</p></body></html>"
    ).format(title=title, message=exc.message, hint=hint, action=action, status=status,
             reason=exc.reason)
    headers = [("Cache-Control", "no-store")]
    wait = getattr(exc, "retry_after", None)
    if isinstance(wait, int | float) and status in (429, 503):
        headers.append(("Retry-After", str(max(1, math.ceil(wait)))))
    return Reply(status, tuple(headers), str(body))


