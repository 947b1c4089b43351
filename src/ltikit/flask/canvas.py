"""Canvas OAuth2 in the Flask adapter: the authorization redirect, the callback, the client.

Set ``LTIKIT_CANVAS_INSTANCES`` and ``LTIKIT_ENCRYPTION_KEYS`` and create the extension
explicitly (``LTIKit(app)``, which registers the callback route).  Then, in a view::

    @app.route("/")
    @lti(request="session")
    def index(lti):
        profile = lti.canvas_api.get_current_user().get_profile()

A view that needs ``lti.canvas_api`` while the user has no token is sent through
Canvas's authorization and brought back to the same page afterwards.  The ``state`` of
each authorization is random, single-use, expires after ten minutes and is bound to the
launch that started it; the callback also checks that Canvas issued the token to the user
who launched the tool (``user.id`` against ``custom_canvas_user_id``).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app, redirect, request
from werkzeug.sansio.utils import get_current_url
from werkzeug.wrappers import Response

from .. import _http
from ..canvas import (
    CanvasAuthorizationRequired,
    CanvasInstance,
    CanvasNotConfigured,
    CanvasOAuthClient,
    CanvasOAuthError,
    CanvasTokens,
    CanvasUnavailable,
    OAuthStates,
    canvas_for_user,
    instance_for,
)
from ..canvas.oauth import pkce_pair
from ..crypto import SecretBox
from ..errors import LTIException, LTINotInSessionException
from .pages import error_page
from .view import LTI

if TYPE_CHECKING:
    from .extension import _AppState

log = logging.getLogger("ltikit")

class CanvasSupport:
    """The Canvas parts of one app's ltikit state."""

    def __init__(self, state: _AppState, instances: dict[str, CanvasInstance],
                 keys: Any) -> None:
        self.state = state
        self.instances = instances
        box = SecretBox(keys or [])
        settings = state.settings
        self.token_timeout = settings.canvas_token_timeout
        self.api_timeout = settings.canvas_api_timeout
        self.tokens = CanvasTokens(state.storage.engine, box,
                                   refresh_margin=settings.canvas_refresh_margin,
                                   wait_seconds=settings.canvas_refresh_wait)
        self.states = OAuthStates(state.storage.engine, box)
        self._sessions = threading.local()

    def oauth_client(self, instance: CanvasInstance) -> CanvasOAuthClient:
        """The OAuth client for ``instance``, with the configured deadlines (one session
        per thread, so connections to Canvas are kept alive between requests)."""
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = _http.new_session()
        return CanvasOAuthClient(instance, session=session, timeout=self.token_timeout)

    # -- for the LTI object ---------------------------------------------------------------
    def instance_of(self, lti: LTI) -> tuple[CanvasInstance, str]:
        canvas = lti.launch.canvas
        instance = instance_for(self.instances, canvas.api_domain if canvas else None)
        if canvas is None or not canvas.user_id:
            raise CanvasNotConfigured(
                "The launch did not include the Canvas user id (custom_canvas_user_id): install "
                "the tool with privacy level public.", reason="no_canvas_user_id")
        return instance, canvas.user_id

    def client(self, lti: LTI):
        instance, user_id = self.instance_of(lti)
        return canvas_for_user(self.tokens, instance, user_id,
                               oauth=self.oauth_client(instance), timeouts=self.api_timeout)

    def logout(self, lti: LTI) -> bool:
        """Revoke the user's token at Canvas and forget it; True if there was one."""
        instance, user_id = self.instance_of(lti)
        token = self.tokens.load(instance, user_id)
        if token is None:
            return False
        self.oauth_client(instance).revoke(token.access_token)
        self.tokens.delete(instance, user_id)
        log.info("Canvas token revoked: user=%s instance=%s", user_id, instance.domain)
        return True

    # -- the authorization redirect -------------------------------------------------------
    def redirect_uri(self) -> str:
        settings = self.state.settings
        if settings.canvas_redirect_uri:
            return settings.canvas_redirect_uri
        public = urlsplit(self.state.public_url(request))
        return get_current_url(public.scheme, public.netloc, request.root_path,
                               settings.canvas_callback_path)

    def start_authorization(self, lti: LTI, return_to: str | None) -> Response:
        instance, _ = self.instance_of(lti)
        if not _local_path(return_to):
            return_to = request.full_path if request.method == "GET" else request.path
        if not _local_path(return_to):  # a request path such as /%5Cevil.example
            return_to = "/"
        verifier, challenge = pkce_pair()
        state = self.states.create(instance=instance.domain, launch_token=lti.launch_id,
                                   code_verifier=verifier, return_to=return_to)
        url = self.oauth_client(instance).authorize_url(self.redirect_uri(), state,
                                                        code_challenge=challenge)
        log.info("Canvas authorization started: user=%s instance=%s", lti.user_id,
                 instance.domain)
        response = redirect(url)
        response.headers["Cache-Control"] = "no-store"
        return response


def _local_path(path: str | None) -> bool:
    """A path on this site: browsers read ``//host`` and ``/\\host`` as another site's."""
    return path is not None and path.startswith("/") and not path.startswith(("//", "/\\")) \
        and not any(c < " " or c == "\x7f" for c in path)


def _with_launch(path: str, param: str, token: str) -> str:
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != param]
    query.append((param, token))
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


def _page(title: str, message: str, status: int, *, retry: str | None = None) -> Response:
    exc = LTIException(message, reason="canvas_authorization")
    exc.status = status
    return error_page(exc, title=title, retry=retry)


def canvas_callback() -> Response:
    state = current_app.extensions["ltikit"]
    canvas = state.canvas
    if canvas is None:
        return _page("Canvas is not set up", "This tool has no Canvas instances configured.",
                     404)
    try:
        state.bound(request)
    except LTIException as exc:
        log.warning("Canvas callback refused: status=%s reason=%s", exc.status, exc.reason)
        return _page("This request is too large", exc.message, exc.status)
    args = request.args
    pending = canvas.states.take(args.get("state"))
    error = args.get("error")
    if pending is None:
        if error:  # e.g. invalid_scope, which Canvas sends without the state
            log.warning("Canvas authorization failed without a usable state: %s", error)
            return _page("Canvas refused the authorization",
                         f"Canvas said: {error}. {args.get('error_description', '')} "
                         "Open the tool again from the course; if this persists, the tool's "
                         "developer key and its scopes need checking.", 400)
        return _page("This authorization is no longer valid",
                     "It was already used or it expired. Open the tool again from the course.",
                     400)
    try:
        active = state.launches.resume(pending.launch_token)
    except LTINotInSessionException:
        return _page("Your session has ended",
                     "Open the tool again from the course to connect it to Canvas.", 401)
    lti = LTI(state, active)
    instance, canvas_user_id = canvas.instance_of(lti)
    param = state.settings.launch_param
    back = _with_launch(pending.return_to, param, lti.launch_id)
    current = state._launch_token(request)
    if current and current != pending.launch_token:
        # Another launch in this browser: it must be the same Canvas user (two tabs), or
        # someone is trying to slip their authorization into this session.
        try:
            other = LTI(state, state.launches.resume(current))
            same = canvas.instance_of(other) == (instance, canvas_user_id)
        except LTIException:
            same = False
        if not same:
            log.warning("Canvas callback refused: started by another session")
            return _page("This authorization belongs to another session",
                         "Open the tool again from the course.", 403)
    if error:
        log.info("Canvas authorization not granted: user=%s error=%s", canvas_user_id, error)
        if error == "access_denied":
            return _page("Canvas access was not granted",
                         "The tool needs your permission to use Canvas on your behalf.", 403,
                         retry=back)
        return _page("Canvas refused the authorization",
                     f"Canvas said: {error}. {args.get('error_description', '')}", 400,
                     retry=back)
    code = args.get("code")
    if not code:
        return _page("Canvas sent no authorization code", "Try again.", 400, retry=back)
    try:
        token = canvas.oauth_client(instance).exchange_code(
            code, canvas.redirect_uri(), code_verifier=pending.code_verifier)
    except CanvasOAuthError as exc:
        log.warning("Canvas code exchange refused: user=%s error=%s", canvas_user_id,
                    exc.error)
        return _page("Canvas refused the authorization", exc.message, 400, retry=back)
    except CanvasUnavailable as exc:
        return _page("Canvas could not be reached", exc.message, exc.status, retry=back)
    if token.user_id != str(canvas_user_id):
        log.warning("Canvas token for another user refused: launch user=%s token user=%s",
                    canvas_user_id, token.user_id)
        return _page("You signed in to Canvas as someone else",
                     "The Canvas account you authorized is not the one that opened the tool. "
                     "Sign out of Canvas, sign in as yourself, and try again.", 403, retry=back)
    canvas.tokens.save(instance, canvas_user_id, token)
    log.info("Canvas token stored: user=%s instance=%s", canvas_user_id, instance.domain)
    response = redirect(back)
    response.headers["Cache-Control"] = "no-store"
    return response


__all__ = ["CanvasAuthorizationRequired", "CanvasSupport", "canvas_callback"]
