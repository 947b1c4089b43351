"""A tool's Canvas parts, for every adapter: :class:`CanvasServices`.

The configured instances, the users' tokens (encrypted, refreshed once across workers),
the authorizations in progress, the OAuth clients (with their deadlines) and the
authorization flow (:class:`~ltikit.canvas.flow.CanvasFlow`).  An adapter adds the two
things that need its framework: the redirect URI built from the request, and the routes.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from .. import _http
from .client import canvas_for_user
from .flow import CanvasFlow
from .instances import CanvasInstance
from .oauth import CanvasOAuthClient

if TYPE_CHECKING:
    from canvasapi import Canvas

    from ..launch import Launch
    from ..tool import Tool

__all__ = ["CanvasServices"]

log = logging.getLogger("ltikit")


class CanvasServices:
    """The Canvas API as the launching user, for one tool."""

    def __init__(self, tool: Tool, instances: dict[str, CanvasInstance]) -> None:
        self.instances = instances
        settings = tool.settings
        self.token_timeout = settings.canvas_token_timeout
        self.api_timeout = settings.canvas_api_timeout
        self.tokens = tool.store.canvas_tokens(refresh_margin=settings.canvas_refresh_margin,
                                               wait_seconds=settings.canvas_refresh_wait)
        self.states = tool.store.oauth_states
        self._sessions = threading.local()
        self.flow = CanvasFlow(instances, self.tokens, self.states, lambda: tool.launches,
                               self.oauth_client, launch_param=settings.launch_param,
                               cookie_name=settings.cookie_name)

    def oauth_client(self, instance: CanvasInstance) -> CanvasOAuthClient:
        """The OAuth client for ``instance``, with the configured deadlines (one session
        per thread, so connections to Canvas are kept alive between requests)."""
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = _http.new_session()
        return CanvasOAuthClient(instance, session=session, timeout=self.token_timeout)

    def client(self, launch: Launch) -> Canvas:
        """A ``canvasapi.Canvas`` acting as the user of ``launch`` (blocking calls)."""
        instance, user_id = self.flow.user_of(launch)
        return canvas_for_user(self.tokens, instance, user_id,
                               oauth=self.oauth_client(instance), timeouts=self.api_timeout)

    def access_token(self, launch: Launch) -> tuple[CanvasInstance, str]:
        """The Canvas of ``launch`` and a valid access token of its user (refreshed first
        when it is about to expire), for Canvas REST calls made another way."""
        return _http.run(self.access_token_steps(launch))

    def access_token_steps(self, launch: Launch
                           ) -> _http.Steps[tuple[CanvasInstance, str]]:
        """:meth:`access_token` as steps (:mod:`ltikit._http`)."""
        instance, user_id = self.flow.user_of(launch)
        token, _ = yield from self.tokens.access_token_steps(instance, user_id,
                                                             self.oauth_client(instance))
        return instance, token

    def logout(self, launch: Launch) -> bool:
        """Revoke the user's token at Canvas and forget it; True if there was one."""
        return _http.run(self.logout_steps(launch))

    def logout_steps(self, launch: Launch) -> _http.Steps[bool]:
        """:meth:`logout` as steps."""
        instance, user_id = self.flow.user_of(launch)
        token = self.tokens.load(instance, user_id)
        if token is None:
            return False
        yield from self.oauth_client(instance).revoke_steps(token.access_token)
        self.tokens.delete(instance, user_id)
        log.info("Canvas token revoked: user=%s instance=%s", user_id, instance.domain)
        return True
