"""The ``lti`` object a Starlette or FastAPI view receives: :class:`ltikit.view.BaseLTI`
plus what needs Starlette, and awaitable services.

The services of :class:`~ltikit.view.BaseLTI` call the platform and wait for it; here they
are awaited instead, and run the same core code as on Flask (one implementation of their
checks, deadlines and token handling):

* LTI Advantage (``await lti.ags.post_score(...)``, ``await lti.nrps.members()``, a list,
  and ``await lti.post_grade(0.9)`` on a 1.3 launch) sends its requests with httpx's async
  client (:mod:`ltikit.starlette.services`): a slow platform holds no thread;
* calls made with synchronous libraries (canvasapi, and the LTI 1.1 outcome service)
  run in the worker's platform threads (:class:`PlatformThreads`), apart from the threads
  that serve requests.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import anyio.to_thread
import httpx
from starlette.requests import Request as StarletteRequest
from starlette.responses import HTMLResponse, Response

from .. import _http, _http_async
from ..canvas import CanvasAuthorizationRequired
from ..launches import ActiveLaunch
from ..lti11.outcomes import OutcomeResponse
from ..lti13.deep_linking import ContentItem
from ..view import BaseLTI, grade_value
from .services import AsyncAssignmentGradeService, AsyncNamesRoleService

if TYPE_CHECKING:
    from canvasapi import Canvas

    from ..tool import Tool

__all__ = ["LTI", "PlatformThreads"]

_T = TypeVar("_T")
# For an LTI made without its LTIKit's clients (the adapter always passes them).
_CLIENTS = _http_async.Clients()


async def in_thread(call: Callable[[], _T], limiter: anyio.CapacityLimiter | None = None
                    ) -> _T:
    """``call()`` in a worker thread (one of ``limiter``'s, else AnyIO's default pool); an
    iterator it returns (a generator of the app's) is read there too, not on the loop."""

    def run() -> Any:
        result = call()
        return list(result) if isinstance(result, Iterator) else result

    return await anyio.to_thread.run_sync(run, limiter=limiter)


class PlatformThreads:
    """The threads a worker lends to calls that wait on a platform or on Canvas (grades,
    rosters, the Canvas API): at most ``total`` at once, apart from AnyIO's default pool,
    which serves the requests' own work (launches, later pages).  So a platform that
    answers slowly, however many of its users wait on it, holds these threads only; other
    requests on the worker are still answered.  (One limiter per event loop: AnyIO's are
    bound to the loop that made them.)"""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("platform_threads must be at least 1")
        self.total = total
        self._limiters = _http_async.PerLoop(lambda: anyio.CapacityLimiter(total))

    def limiter(self) -> anyio.CapacityLimiter:
        try:
            return self._limiters.get()
        except RuntimeError:  # another AnyIO backend (trio): a limiter per call
            return anyio.CapacityLimiter(self.total)


class LTI(BaseLTI):
    """The ``lti`` object of a Starlette or FastAPI view (see the module docstring)."""

    def __init__(self, tool: Tool, active: ActiveLaunch, request: StarletteRequest,
                 platform_threads: PlatformThreads | None = None,
                 clients: _http_async.Clients | None = None) -> None:
        super().__init__(tool, active)
        self._request = request
        self._platform_threads = platform_threads
        self._clients = clients or _CLIENTS
        self._cookie_headers: list[str] = []
        # FastAPI: the response whose headers are added to the view's answer.
        self._response: Response | None = None

    # -- awaitable services -----------------------------------------------------------------
    @property
    def ags(self) -> AsyncAssignmentGradeService:  # type: ignore[override]
        """Assignment and Grade Services, awaited (``await lti.ags.post_score(score)``)."""
        return AsyncAssignmentGradeService(self._ags, self._await_steps)

    @property
    def nrps(self) -> AsyncNamesRoleService:  # type: ignore[override]
        """Names and Role Provisioning, awaited (``await lti.nrps.members()``: a list).
        One object per request, as on Flask."""
        return self._async_nrps

    @functools.cached_property
    def _async_nrps(self) -> AsyncNamesRoleService:
        return AsyncNamesRoleService(self._nrps, self._await_steps)

    async def post_grade(self, score: float, *, result_text: str | None = None,  # type: ignore[override]
                         result_url: str | None = None) -> bool:
        """:meth:`ltikit.view.BaseLTI.post_grade`, awaited."""
        if self.version == "1.3":
            value = grade_value(score)
            if value is None:
                return False
            await self._await_steps(self._ags_score_steps(value, comment=result_text))
            return True
        return await in_thread(functools.partial(BaseLTI.post_grade, self, score,
                                                 result_text=result_text,
                                                 result_url=result_url), self._limiter())

    async def _await_steps(self, steps: _http.Steps[_T]) -> _T:
        return await _http_async.run(steps, self._clients.client())

    async def read_grade(self) -> float | None:  # type: ignore[override]
        return await in_thread(functools.partial(BaseLTI.read_grade, self), self._limiter())

    async def delete_grade(self) -> OutcomeResponse:  # type: ignore[override]
        return await in_thread(functools.partial(BaseLTI.delete_grade, self),
                               self._limiter())

    async def post_grade2(self, grade: float, user: str | None = None,  # type: ignore[override]
                          comment: str = "") -> bool:
        return await in_thread(functools.partial(BaseLTI.post_grade2, self, grade, user,
                                                 comment), self._limiter())

    async def close_session(self) -> None:  # type: ignore[override]
        """End this launch: later requests carrying its id are refused."""
        await in_thread(functools.partial(BaseLTI.close_session, self))

    async def deep_link_response(self, items: Iterable[ContentItem], *,
                                 message: str | None = None, log: str | None = None,
                                 error_message: str | None = None,
                                 error_log: str | None = None) -> Response:
        """The page that posts the signed ``LtiDeepLinkingResponse`` with ``items`` back
        to the platform."""
        page = await in_thread(functools.partial(
            self._deep_link_page, list(items), message=message, log=log,
            error_message=error_message, error_log=error_log))
        return HTMLResponse(page.body, headers=page.headers)

    # -- Canvas API as this user -----------------------------------------------------------
    async def in_canvas(self, call: Callable[[Canvas], _T]) -> _T:
        """``call(canvas)`` in a worker thread, ``canvas`` a ``canvasapi.Canvas`` acting as
        the launching user (canvasapi is synchronous: its calls wait on Canvas), e.g.
        ``await lti.in_canvas(lambda c: c.get_current_user().get_profile())``.  With no
        token yet, :class:`~ltikit.canvas.CanvasAuthorizationRequired` sends the user
        through Canvas's authorization and back to this page."""
        canvas = self._canvas_services()
        return await self._authorizing(in_thread(lambda: call(canvas.client(self.launch)),
                                                 self._limiter()))

    async def canvas_token(self) -> tuple[str, str]:
        """``(API base URL, access token)`` of the launching user, the token refreshed first
        when it is about to expire, for Canvas REST calls made with an async client:
        ``base, token = await lti.canvas_token()``, then
        ``httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"})``.
        The same token as canvasapi's, kept and refreshed by the same code."""
        canvas = self._canvas_services()
        instance, token = await self._authorizing(
            self._await_steps(canvas.access_token_steps(self.launch)))
        return f"{instance.url}/api/v1", token

    async def canvas_http(self) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` on the Canvas REST API (``base_url`` ``.../api/v1``)
        as the launching user, awaited on the event loop: the token refreshed before it
        expires and once after a 401, no redirects, the Canvas API deadline per request
        (:mod:`ltikit.starlette.canvas`)::

            async with await lti.canvas_http() as canvas:
                profile = (await canvas.get("/users/self/profile")).json()
        """
        from .canvas import CanvasAuth, canvas_http_client

        services = self._canvas_services()
        launch, platform_client = self.launch, self._clients.client()

        def prepare() -> _http.Steps[tuple[Any, CanvasAuth]]:
            instance, user_id = services.flow.user_of(launch)
            oauth = services.oauth_client(instance)
            token, version = yield from services.tokens.access_token_steps(instance, user_id,
                                                                           oauth)
            return instance, CanvasAuth(services.tokens, instance, user_id, oauth, token,
                                        version, platform_client)

        instance, auth = await self._authorizing(self._await_steps(prepare()))
        return canvas_http_client(instance, auth, services.api_timeout)

    async def canvas_logout(self) -> bool:
        """Revoke the user's Canvas token (``DELETE /login/oauth2/token``) and forget it."""
        canvas = self._canvas_services()
        return await self._await_steps(canvas.logout_steps(self.launch))

    def _limiter(self) -> anyio.CapacityLimiter | None:
        threads = self._platform_threads
        return threads.limiter() if threads is not None else None

    async def _authorizing(self, work: Awaitable[_T]) -> _T:
        """``work``'s result; a Canvas authorization it needs goes to the app's handler
        with this ``lti`` (to send the user to Canvas and back here)."""
        try:
            return await work
        except CanvasAuthorizationRequired as exc:
            setattr(exc, "ltikit_lti", self)  # noqa: B010 - for the app's handler
            raise

    def _forget_cookie(self, name: str) -> None:
        if self._request.cookies.get(name) == self._active.token:
            deletion = self._tool.cookies.deletion(name)
            if self._response is not None:
                self._response.headers.append("set-cookie", deletion)
            else:
                self._cookie_headers.append(deletion)

    # -- carrying the launch to the next request ------------------------------------------
    def url_for(self, endpoint: str, **values: Any) -> str:
        """The path of the route named ``endpoint`` (path parameters from ``values``, the
        rest as the query) plus this launch's id, so the link works in this tab even
        when cookies are blocked or another launch happened in another tab."""
        router = self._request.scope["router"]
        route = next((r for r in router.routes if getattr(r, "name", None) == endpoint),
                     None)
        names = set(getattr(route, "param_convertors", {}) or {})
        path = str(self._request.url_for(endpoint, **{k: v for k, v in values.items()
                                                      if k in names}).path)
        query = {k: str(v) for k, v in values.items() if k not in names}
        query[self._tool.settings.launch_param] = self.launch_id
        return f"{path}?{urlencode(query)}"
