"""Canvas OAuth2 for the launching user as decisions on a plain request (no web framework).

:class:`CanvasFlow` makes every decision of the authorization; an adapter builds the
:class:`~ltikit.http.Request`, passes the URL Canvas redirects back to, and sends the
:class:`~ltikit.http.Reply` or renders the :class:`Refused` page:

* :meth:`CanvasFlow.user_of` — which Canvas and which Canvas user a launch speaks for
  (``custom_canvas_api_domain`` among the configured instances, ``custom_canvas_user_id``).
* :meth:`CanvasFlow.authorize` — the redirect to Canvas's authorize URL with a random,
  single-use, ten-minute ``state`` bound to the launch, a PKCE challenge, and the local
  path to come back to (never another site: ``//host`` and ``/\\host`` are refused).
* :meth:`CanvasFlow.callback` — the ``state`` is ours, unused and unexpired; the browser
  is the launch's (another launch in this browser must be the same Canvas user, or the
  callback is someone slipping their authorization into this session); Canvas's error is
  reported; the code is exchanged (with the PKCE verifier) and the token kept only if
  Canvas issued it to the user who launched (``user.id`` against ``custom_canvas_user_id``).

The launch's id travels back in the return URL, so the page works when the browser sends
no cookie to the tool inside Canvas's frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeGuard
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .. import _http
from ..errors import LTIException, LTINotInSessionException
from ..http import Reply, Request
from ..launch import Launch
from ..launches import ActiveLaunch, LaunchManager
from .instances import CanvasInstance, CanvasNotConfigured, instance_for
from .oauth import CanvasOAuthClient, CanvasOAuthError, CanvasUnavailable, pkce_pair
from .tokens import CanvasTokens, OAuthStates

__all__ = ["CanvasFlow", "Refused"]

log = logging.getLogger("ltikit")


@dataclass(frozen=True)
class Refused:
    """The callback refused or Canvas declined: a page with ``status``, and a *Try again*
    link (``retry``, the page the user came from) when trying again can help."""

    title: str
    message: str
    status: int
    retry: str | None = None
    reason: str = "canvas_authorization"


class CanvasFlow:
    """The Canvas authorization of one tool (see the module docstring)."""

    def __init__(self, instances: Mapping[str, CanvasInstance], tokens: CanvasTokens,
                 states: OAuthStates, launches: Callable[[], LaunchManager],
                 oauth_client: Callable[[CanvasInstance], CanvasOAuthClient], *,
                 launch_param: str, cookie_name: str) -> None:
        self.instances = instances
        self.tokens = tokens
        self.states = states
        # A callable: the launch manager needs the app's secret key, which PyLTI-style apps
        # set after creating the extension.
        self._launches = launches
        self._oauth_client = oauth_client
        self.launch_param = launch_param
        self.cookie_name = cookie_name

    def serves(self, launch: Launch) -> bool:
        """Does ``launch`` come from a Canvas instance configured here, with the Canvas
        user id the token is kept under?  (Then :meth:`user_of` answers.)"""
        canvas = launch.canvas
        if canvas is None or not canvas.user_id or not canvas.api_domain:
            return False
        return canvas.api_domain.lower() in self.instances

    def user_of(self, launch: Launch) -> tuple[CanvasInstance, str]:
        """The Canvas instance and Canvas user id ``launch`` speaks for, or
        :class:`~ltikit.canvas.CanvasNotConfigured`."""
        canvas = launch.canvas
        instance = instance_for(self.instances, canvas.api_domain if canvas else None)
        if canvas is None or not canvas.user_id:
            raise CanvasNotConfigured(
                "The launch did not include the Canvas user id (custom_canvas_user_id): install "
                "the tool with privacy level public.", reason="no_canvas_user_id")
        return instance, canvas.user_id

    # -- the redirect to Canvas -------------------------------------------------------------
    def authorize(self, request: Request, active: ActiveLaunch, return_to: str | None,
                  redirect_uri: str) -> Reply:
        """The redirect through Canvas's authorization, back to ``return_to`` (a local
        path; default: the current page when it was a GET, else its path)."""
        instance, _ = self.user_of(active.launch)
        if not local_path(return_to):
            query = f"?{urlencode(request.query)}" if request.query else ""
            return_to = request.path + query if request.method == "GET" else request.path
        if not local_path(return_to):  # a request path such as /%5Cevil.example
            return_to = "/"
        verifier, challenge = pkce_pair()
        state = self.states.create(instance=instance.domain, launch_token=active.token,
                                   code_verifier=verifier, return_to=return_to)
        url = self._oauth_client(instance).authorize_url(redirect_uri, state,
                                                         code_challenge=challenge)
        log.info("Canvas authorization started: user=%s instance=%s",
                 active.launch.user.id, instance.domain)
        return Reply.redirect(url)

    # -- Canvas's redirect back ---------------------------------------------------------------
    def callback(self, request: Request, redirect_uri: str) -> Reply | Refused:
        """Canvas's redirect back (``state`` and ``code``, or ``error``): the redirect to
        the page the user came from with the token stored, or the page refusing it."""
        return _http.run(self.callback_steps(request, redirect_uri))

    def callback_steps(self, request: Request, redirect_uri: str
                       ) -> _http.Steps[Reply | Refused]:
        """:meth:`callback` as steps (:mod:`ltikit._http`): the code exchange is the call."""
        error = request.arg("error")
        pending = self.states.take(request.arg("state"))
        if pending is None:
            if error:  # e.g. invalid_scope, which Canvas sends without the state
                log.warning("Canvas authorization failed without a usable state: %s", error)
                return Refused("Canvas refused the authorization",
                               f"Canvas said: {error}. {request.arg('error_description') or ''} "
                               "Open the tool again from the course; if this persists, the "
                               "tool's developer key and its scopes need checking.", 400)
            return Refused("This authorization is no longer valid",
                           "It was already used or it expired. Open the tool again from the "
                           "course.", 400)
        launches = self._launches()
        try:
            active = launches.resume(pending.launch_token)
        except LTINotInSessionException:
            return Refused("Your session has ended",
                           "Open the tool again from the course to connect it to Canvas.", 401)
        instance, canvas_user_id = self.user_of(active.launch)
        back = _with_launch(pending.return_to, self.launch_param, active.token)
        current = request.cookies.get(self.cookie_name)
        if current and current != pending.launch_token:
            # Another launch in this browser: it must be the same Canvas user (two tabs), or
            # someone is trying to slip their authorization into this session.
            try:
                same = self.user_of(launches.resume(current).launch) == \
                    (instance, canvas_user_id)
            except LTIException:
                same = False
            if not same:
                log.warning("Canvas callback refused: started by another session")
                return Refused("This authorization belongs to another session",
                               "Open the tool again from the course.", 403)
        if error:
            log.info("Canvas authorization not granted: user=%s error=%s", canvas_user_id,
                     error)
            if error == "access_denied":
                return Refused("Canvas access was not granted",
                               "The tool needs your permission to use Canvas on your behalf.",
                               403, retry=back)
            return Refused("Canvas refused the authorization",
                           f"Canvas said: {error}. {request.arg('error_description') or ''}",
                           400, retry=back)
        code = request.arg("code")
        if not code:
            return Refused("Canvas sent no authorization code", "Try again.", 400, retry=back)
        try:
            token = yield from self._oauth_client(instance).exchange_code_steps(
                code, redirect_uri, code_verifier=pending.code_verifier)
        except CanvasOAuthError as exc:
            log.warning("Canvas code exchange refused: user=%s error=%s", canvas_user_id,
                        exc.error)
            return Refused("Canvas refused the authorization", exc.message, 400, retry=back)
        except CanvasUnavailable as exc:
            return Refused("Canvas could not be reached", exc.message, exc.status, retry=back)
        if token.user_id != str(canvas_user_id):
            log.warning("Canvas token for another user refused: launch user=%s token user=%s",
                        canvas_user_id, token.user_id)
            return Refused("You signed in to Canvas as someone else",
                           "The Canvas account you authorized is not the one that opened the "
                           "tool. Sign out of Canvas, sign in as yourself, and try again.", 403,
                           retry=back)
        self.tokens.save(instance, canvas_user_id, token)
        log.info("Canvas token stored: user=%s instance=%s", canvas_user_id, instance.domain)
        return Reply.redirect(back)


def local_path(path: str | None) -> TypeGuard[str]:
    """A path on this site: browsers read ``//host`` and ``/\\host`` as another site's."""
    return path is not None and path.startswith("/") and not path.startswith(("//", "/\\")) \
        and not any(c < " " or c == "\x7f" for c in path)


def _with_launch(path: str, param: str, token: str) -> str:
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != param]
    query.append((param, token))
    return urlunsplit(("", "", parts.path, urlencode(query), ""))
