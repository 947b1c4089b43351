"""The Starlette (and FastAPI) adapter: :class:`LTIKit`.

Every decision is the framework-neutral core's (:class:`ltikit.tool.Tool`: the same
:class:`~ltikit.flow.LaunchFlow`, LTI 1.3 flow, launches and registrations as the Flask
adapter); this module translates requests and replies.  The core's work (database
statements, a platform's key set fetched on a new ``kid``) runs in a worker thread, so the
event loop goes on serving other requests meanwhile; each outbound call has its deadline.

FastAPI::

    kit = LTIKit(app, config={"LTIKIT_DATABASE_URL": ..., ...}, secret_key=SECRET)

    @app.post("/launch")
    async def launch(lti: Annotated[LTI, Depends(kit.launch(request="initial"))]):
        return RedirectResponse(lti.url_for("index"), 303)

Plain Starlette routes take the decorator: ``@kit.lti(request="session")`` on
``async def page(request, lti)``.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import HTMLResponse, JSONResponse, Response

from .. import _http_async
from ..canvas import CanvasAuthorizationRequired
from ..canvas.flow import Refused
from ..errors import LTIConfigurationError, LTIException
from ..flow import checked_request_type
from ..http import Reply
from ..lti13.dynamic_registration import (
    PlatformConfiguration,
    RegistrationFlow,
    ToolConfiguration,
)
from ..pages import refusal_page
from ..roles import ANY
from ..storage import SQLStorage
from ..store import Store
from ..tool import Tool
from .translate import public_url, to_request, to_response
from .view import LTI, PlatformThreads

__all__ = ["LTIKit"]

log = logging.getLogger("ltikit")

ErrorCallback = Callable[..., Any]


class _Continue(Exception):
    """The launch goes on in the browser (the platform-storage check page): answered
    with ``reply`` instead of the view."""

    def __init__(self, reply: Reply) -> None:
        super().__init__("the launch continues in the browser")
        self.reply = reply


class _Refused(Exception):
    """A refusal to answer with a route's own error callback."""

    def __init__(self, exc: LTIException, error: ErrorCallback | None) -> None:
        super().__init__(exc.message)
        self.exc = exc
        self.error = error


async def _run(call: Callable[[], Any]) -> Any:
    return await anyio.to_thread.run_sync(call)


class LTIKit:
    """ltikit for a Starlette or FastAPI app (see the module docstring).

    ``config``: the ``LTIKIT_*`` settings, as for Flask (``LTIKIT_DATABASE_URL`` is
    required unless ``database`` is given); ``secret_key`` signs launch ids, login states
    and registration forms.  ``error`` and ``role`` are the defaults of every protected
    route, as ``LTIKit(app, error=..., role=...)`` on Flask: ``error(exception={
    "exception": exc, "kwargs": {"request": request}, "args": ()})`` (PyLTI's contract;
    it may be async) answers a refusal, else ltikit's refusal page.
    ``tool_configuration`` answers what to register by LTI Dynamic Registration;
    ``clock`` times launches, keys and tokens.  LTI Advantage calls (grades, rosters) are
    awaited on httpx's async client and hold no thread; ``platform_threads``: how many
    threads of a worker may wait at once on calls made with synchronous libraries (the
    Canvas API through canvasapi, LTI 1.1 outcomes), apart from the pool that serves
    requests (:class:`~ltikit.starlette.view.PlatformThreads`).  Call :meth:`aclose` when
    the app shuts down (a lifespan's end) to close the async client's connections.
    """

    def __init__(self, app: Starlette | None = None, *, config: Mapping[str, Any],
                 secret_key: str | bytes, database: str | Store | SQLStorage | None = None,
                 role_groups: Mapping[str, Any] | None = None,
                 error: ErrorCallback | None = None, role: str | None = None,
                 clock: Callable[[], float] | None = None,
                 tool_configuration: Callable[[PlatformConfiguration], ToolConfiguration]
                 | None = None, platform_threads: int = 20) -> None:
        if not secret_key:
            raise LTIConfigurationError("LTIKit needs a secret_key.", reason="no_secret_key")
        self.tool = Tool(config, secret_key=secret_key, database=database,
                         role_groups=role_groups, clock=clock,
                         tool_configuration=tool_configuration)
        self.default_error = error
        self.default_role = role or ANY
        self.platform_threads = PlatformThreads(platform_threads)
        # httpx clients for LTI Advantage calls, one per event loop (aclose() at shutdown).
        self.clients = _http_async.Clients()
        if app is not None:
            self.init_app(app)

    async def aclose(self) -> None:
        """Close this event loop's connections to platforms (at the app's shutdown)."""
        await self.clients.aclose()

    # -- the members of the Flask extension ---------------------------------------------
    @property
    def settings(self) -> Any:
        return self.tool.settings

    @property
    def store(self) -> Store:
        return self.tool.store

    @property
    def registrations(self) -> Any:
        return self.tool.store.registrations

    @property
    def tool_keys(self) -> Any:
        return self.tool.store.tool_keys

    @property
    def consumers(self) -> Any:
        return self.tool.consumers

    @property
    def registration_links(self) -> Any:
        return self.tool.store.registration_links

    # -- routes ---------------------------------------------------------------------------
    def init_app(self, app: Starlette) -> None:
        """Add ltikit's routes (the LTI 1.3 login, the JWKS, the registration URL) and its
        refusal handlers to ``app``."""
        settings = self.tool.settings
        app.add_route(settings.lti13_login_path, self._login, methods=["GET", "POST"],
                      name="ltikit_lti13_login")
        app.add_route(settings.lti13_jwks_path, self._jwks, methods=["GET"],
                      name="ltikit_lti13_jwks")
        path = settings.lti13_registration_path
        app.add_route(path, self._register, methods=["GET", "POST"],
                      name="ltikit_lti13_register")
        app.add_route(f"{path}/{{link}}", self._register, methods=["GET", "POST"],
                      name="ltikit_lti13_register_link")
        if self.tool.canvas is not None:
            app.add_route(settings.canvas_callback_path, self._canvas_callback,
                          methods=["GET"], name="ltikit_canvas_callback")
        app.add_exception_handler(LTIException, self._on_refusal)  # type: ignore[arg-type]
        app.add_exception_handler(_Refused, self._on_route_refusal)  # type: ignore[arg-type]
        app.add_exception_handler(_Continue, self._on_continue)  # type: ignore[arg-type]

    async def _login(self, request: StarletteRequest) -> Response:
        try:
            req = await to_request(request, self.tool.settings)
            reply = await _run(functools.partial(self.tool.lti13.flow.login, req))
            return to_response(reply)
        except LTIException as exc:
            log.warning("LTI 1.3 login refused: status=%s reason=%s: %s", exc.status,
                        exc.reason, exc.message)
            return to_response(refusal_page(exc))

    async def _jwks(self, request: StarletteRequest) -> Response:
        keys = await _run(lambda: self.tool.lti13.tool_keys().jwks())
        return JSONResponse(keys, headers={"Cache-Control": "max-age=3600"})

    async def _register(self, request: StarletteRequest) -> Response:
        link = request.path_params.get("link")
        try:
            req = await to_request(request, self.tool.settings)
            flow = self.tool.registration
            if request.method == "POST":
                reply, _ = await _run(functools.partial(flow.confirm, req, link))
            else:
                reply = await _run(functools.partial(flow.start, req, link))
            return to_response(reply)
        except LTIException as exc:
            return to_response(RegistrationFlow.refusal(exc))

    # -- Canvas's authorization ----------------------------------------------------------
    def canvas_redirect_uri(self, request: StarletteRequest) -> str:
        """Where Canvas sends the user back (``LTIKIT_CANVAS_REDIRECT_URI``, else built
        from the request and the callback path)."""
        settings = self.tool.settings
        if settings.canvas_redirect_uri:
            return str(settings.canvas_redirect_uri)
        public = self.public_url(request)
        origin = public[: len(public) - len(request.url.path)]
        return origin + str(request.scope.get("root_path", "")) + settings.canvas_callback_path

    async def _start_authorization(self, request: StarletteRequest,
                                   exc: CanvasAuthorizationRequired) -> Response | None:
        the_lti = getattr(exc, "ltikit_lti", None)
        canvas = self.tool.canvas
        if the_lti is None or canvas is None:
            return None
        req = await to_request(request, self.tool.settings)
        reply = await _run(functools.partial(canvas.flow.authorize, req, the_lti._active,
                                             exc.return_to, self.canvas_redirect_uri(request)))
        response = to_response(reply)
        for cookie in the_lti._cookie_headers:
            response.headers.append("set-cookie", cookie)
        return response

    async def _canvas_callback(self, request: StarletteRequest) -> Response:
        canvas = self.tool.canvas
        assert canvas is not None
        try:
            req = await to_request(request, self.tool.settings)
        except LTIException as exc:
            log.warning("Canvas callback refused: status=%s reason=%s", exc.status, exc.reason)
            return to_response(refusal_page(exc))
        decision = await _http_async.run(canvas.flow.callback_steps(
            req, self.canvas_redirect_uri(request)), self.clients.client())
        if isinstance(decision, Refused):
            refused = LTIException(decision.message, reason=decision.reason)
            refused.status = decision.status
            return to_response(refusal_page(refused, title=decision.title,
                                            retry=decision.retry))
        return to_response(decision)

    # -- protecting routes ---------------------------------------------------------------
    async def authenticate(self, request: StarletteRequest, request_type: str = "any",
                           role: str | None = None,
                           message_types: Collection[str] | None = None) -> LTI:
        """The ``lti`` object of an authenticated request; refusals raise
        :class:`~ltikit.errors.LTIException` (an LTI 1.3 launch that goes on in the
        browser raises an exception the app's handler answers with that page)."""
        checked_request_type(request_type)
        req = await to_request(request, self.tool.settings)
        # The core's work in a worker thread; a fetch of the platform's keys awaited here.
        decision = await _http_async.run(self.tool.flow.authenticate_steps(
            req, request_type=request_type, role=role or self.default_role,
            message_types=message_types), self.clients.client())
        if isinstance(decision, Reply):
            raise _Continue(decision)
        the_lti = LTI(self.tool, decision.active, request, self.platform_threads, self.clients)
        the_lti._cookie_headers.extend(decision.cookies)
        return the_lti

    def launch(self, request: str = "any", role: str | None = None, *,
               message_types: Collection[str] | None = None,
               error: ErrorCallback | None = None) -> Callable[..., Awaitable[LTI]]:
        """A FastAPI dependency giving the view its ``lti`` (the arguments of Flask's
        ``@lti``): ``lti: Annotated[LTI, Depends(kit.launch(request="initial"))]``."""
        request_type = checked_request_type(request)

        async def dependency(request: StarletteRequest, response: Response) -> LTI:
            try:
                the_lti = await self.authenticate(request, request_type, role, message_types)
            except LTIException as exc:
                raise _Refused(exc, error) from None
            # FastAPI adds this response's headers to the view's answer.
            the_lti._response = response
            for cookie in the_lti._cookie_headers:
                response.headers.append("set-cookie", cookie)
            the_lti._cookie_headers.clear()
            return the_lti

        return dependency

    def lti(self, request: str = "any", role: str | None = None, *,
            message_types: Collection[str] | None = None,
            error: ErrorCallback | None = None) -> Callable[[Callable[..., Any]],
                                                            Callable[..., Any]]:
        """The decorator for plain Starlette routes: ``async def view(request, lti)``."""
        request_type = checked_request_type(request)

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(view)
            async def wrapper(request: StarletteRequest) -> Response:
                try:
                    the_lti = await self.authenticate(request, request_type, role,
                                                      message_types)
                    response: Response = await view(request, the_lti)
                except _Continue as going_on:
                    return to_response(going_on.reply)
                except CanvasAuthorizationRequired as exc:
                    started = await self._start_authorization(request, exc)
                    return started or await self.refuse(request, exc, error)
                except LTIException as exc:
                    return await self.refuse(request, exc, error)
                for cookie in the_lti._cookie_headers:
                    response.headers.append("set-cookie", cookie)
                return response

            return wrapper

        return decorator

    # -- refusals -------------------------------------------------------------------------
    async def refuse(self, request: StarletteRequest, exc: LTIException,
                     error: ErrorCallback | None = None) -> Response:
        """The answer to a refusal: the route's or the app's error callback, else ltikit's
        refusal page; a log line with the reason and no secret."""
        key = request.query_params.get("oauth_consumer_key")
        body = getattr(request, "_body", None)  # the form, when the adapter read it
        if key is None and isinstance(body, bytes) and b"oauth_consumer_key=" in body:
            key = next((v for k, v in parse_qsl(body.decode("utf-8", "replace"))
                        if k == "oauth_consumer_key"), None)
        log.warning("LTI request refused: status=%s reason=%s path=%s key=%s: %s",
                    exc.status, exc.reason, request.url.path, key, exc.message)
        error = error or self.default_error
        if error is None:
            return to_response(refusal_page(exc))
        answer = error(exception={"exception": exc, "kwargs": {"request": request}, "args": ()})
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, tuple):  # (body, status), as Flask views may answer
            body, status = answer
            return HTMLResponse(str(body), status_code=int(status))
        if not isinstance(answer, Response):
            return HTMLResponse(str(answer), status_code=exc.status)
        if answer.status_code == 200:
            # PyLTI error callbacks usually return a bare page; a refusal is never a 200.
            answer.status_code = exc.status
        return answer

    async def _on_refusal(self, request: StarletteRequest, exc: LTIException) -> Response:
        if isinstance(exc, CanvasAuthorizationRequired):
            started = await self._start_authorization(request, exc)
            if started is not None:
                return started
        return await self.refuse(request, exc)

    async def _on_route_refusal(self, request: StarletteRequest, refused: _Refused) -> Response:
        return await self.refuse(request, refused.exc, refused.error)

    async def _on_continue(self, request: StarletteRequest, going_on: _Continue) -> Response:
        return to_response(going_on.reply)

    def public_url(self, request: StarletteRequest) -> str:
        """The URL the client used for ``request``, trusted proxies considered."""
        return public_url(request, self.tool.settings.trusted_proxies)
