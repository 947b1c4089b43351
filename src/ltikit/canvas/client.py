"""A ``canvasapi.Canvas`` for one user that keeps its token valid by itself.

canvasapi has no refresh hook: its requester sends ``Authorization: Bearer <token>``
with the token it was given.  A ``requests`` auth object on its session runs after that
header is set, so it replaces the header with the current token and, on a 401 that
carries ``WWW-Authenticate`` (Canvas's sign that a new token would help), refreshes once
and retries once.  A second 401 drops the token and raises
:class:`~ltikit.canvas.tokens.CanvasAuthorizationRequired`.  A 401 *without* that header
(insufficient scopes, no permission) is left to canvasapi (``Unauthorized``):
re-authorizing would not help.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import requests

from .. import _http
from .instances import CanvasInstance
from .oauth import CanvasOAuthClient, CanvasUnavailable, retry_after
from .tokens import CanvasAuthorizationRequired, CanvasTokens

if TYPE_CHECKING:
    from canvasapi import Canvas

# Seconds to connect to Canvas's API, and for a whole call (canvasapi sends no timeout).
DEFAULT_API_TIMEOUT = (3.0, 15.0)


def check_available(instance: CanvasInstance, status: int, retry_after_header: str | None
                    ) -> None:
    """Raise :class:`~ltikit.errors.CanvasUnavailable` for an API answer that says Canvas
    is throttling (429, as Canvas answers since late 2025) or down (5xx): a 503 page
    saying when to retry, instead of a client's generic exception (a 500)."""
    if status == 429 or status >= 500:
        raise CanvasUnavailable(
            f"Canvas ({instance.domain}) answered HTTP {status}; try again in a moment.",
            retry_after=retry_after(retry_after_header),
            reason="canvas_throttled" if status == 429 else "canvas_unavailable")


class CanvasTokenAuth(requests.auth.AuthBase):
    def __init__(self, tokens: CanvasTokens, instance: CanvasInstance, user_id: str,
                 oauth: CanvasOAuthClient, access_token: str, version: int) -> None:
        self._tokens = tokens
        self._instance = instance
        self._user_id = user_id
        self._oauth = oauth
        self._token, self._version = access_token, version
        self._lock = threading.Lock()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        request.register_hook("response", self._on_response)  # type: ignore[no-untyped-call]
        return request

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        check_available(self._instance, response.status_code,
                        response.headers.get("Retry-After"))
        if response.status_code != 401 or "WWW-Authenticate" not in response.headers or \
                getattr(response.request, "_ltikit_retry", False):
            if response.status_code == 401 and "WWW-Authenticate" in response.headers:
                self._tokens.delete(self._instance, self._user_id)
                raise CanvasAuthorizationRequired(reason="canvas_token_refused")
            return response
        with self._lock:
            self._token, self._version = self._tokens.refresh_after_401(
                self._instance, self._user_id, self._oauth, self._version)
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {self._token}"
        retry._ltikit_retry = True  # type: ignore[attr-defined]  # our mark, on our copy
        response.content  # noqa: B018 - read the body so the connection can be reused
        response.close()
        again = response.connection.send(retry, **kwargs)
        again.history.append(response)
        again.request = retry
        return self._on_response(again, **kwargs)


class _CanvasAPIAdapter(_http.DeadlineAdapter):
    """canvasapi's transport: every call within the API deadline; a timeout or an
    unreachable Canvas is :class:`CanvasUnavailable` (a 504 or 503 page), not a 500."""

    def __init__(self, domain: str, timeouts: tuple[float, float]) -> None:
        super().__init__(timeouts)
        self.domain = domain

    def send(self, request: requests.PreparedRequest, *args: Any,
             **kwargs: Any) -> requests.Response:
        try:
            return super().send(request, *args, **kwargs)
        except _http.DeadlineExceeded:
            total = self.timeouts[1] if self.timeouts else 0
            raise CanvasUnavailable(f"Canvas ({self.domain}) did not answer within {total:g} "
                                    "s; try again in a moment.", status=504,
                                    reason="canvas_timeout") from None
        except requests.ConnectionError as exc:
            raise CanvasUnavailable(f"Canvas ({self.domain}) could not be reached "
                                    f"({type(exc).__name__}).") from None


def canvas_for_user(tokens: CanvasTokens, instance: CanvasInstance, user_id: str, *,
                    oauth: CanvasOAuthClient | None = None,
                    timeouts: tuple[float, float] = DEFAULT_API_TIMEOUT) -> Canvas:
    """A ``canvasapi.Canvas`` acting as ``user_id`` on ``instance``, with a valid token
    (refreshed first if it expires soon); :class:`CanvasAuthorizationRequired` if there is
    none.  Every call ends within ``timeouts`` (connect, total seconds), or raises
    :class:`CanvasUnavailable`, as do 429 and 5xx answers."""
    from canvasapi import Canvas

    oauth = oauth or CanvasOAuthClient(instance)
    access, version = tokens.access_token(instance, user_id, oauth)
    canvas = Canvas(instance.url, access)
    session = _session_of(canvas)
    _http.mount(session, _CanvasAPIAdapter(instance.domain, timeouts))
    session.auth = CanvasTokenAuth(tokens, instance, user_id, oauth, access, version)
    return canvas


def _session_of(canvas: Canvas) -> requests.Session:
    """The ``requests.Session`` a ``canvasapi.Canvas`` sends with.

    canvasapi (3.x) offers no way to give it a session, a timeout or an auth hook
    (ucfopen/canvasapi#629 is open), so this is the one place that reads its requester; if
    a canvasapi release moves it, this fails at once with a clear message rather than
    sending requests without our deadline or token handling.
    """
    requester = vars(canvas).get("_Canvas__requester")
    session = getattr(requester, "_session", None)
    if not isinstance(session, requests.Session):
        raise RuntimeError("This canvasapi release keeps its HTTP session elsewhere; ltikit "
                           "cannot give it deadlines or token refresh. Pin canvasapi<4 and "
                           "report it to ltikit.")
    return session
