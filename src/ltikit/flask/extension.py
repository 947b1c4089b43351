"""The Flask extension: :class:`LTIKit`, and what it keeps per app (settings, storage,
consumers, launches, the LTI 1.3 and Canvas services) and how it authenticates a request."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any

from flask import Flask, after_this_request, make_response
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.utils import get_current_url
from werkzeug.wrappers import Request, Response

from ..errors import LTIException, LTIRequestTooLarge
from ..flow import LaunchFlow
from ..http import Reply, forwarded
from ..launches import LaunchManager
from ..lti11.consumers import ConsumerRegistry
from ..lti13 import Registrations
from ..lti13.dynamic_registration import (
    PlatformConfiguration,
    RegistrationFlow,
    RegistrationLinks,
    ToolConfiguration,
)
from ..lti13.tool_keys import ToolKeys
from ..roles import ANY
from ..settings import DEFAULTS, Settings
from ..storage import SQLStorage
from ..storage.cache import TTLCache
from ..store import Store
from ..tool import LTI13Services, Tool
from .canvas import CanvasSupport, canvas_callback
from .lti13 import jwks_view, login_view
from .pages import _with_retry_after, error_page
from .registration import registration_view
from .translate import to_request, to_response
from .view import LTI

__all__ = ["CONFIG_DEFAULTS", "LTIKit"]

log = logging.getLogger("ltikit")

CONFIG_DEFAULTS = DEFAULTS
"""Every ``LTIKIT_*`` setting and its default (:data:`ltikit.settings.DEFAULTS`)."""


class _AppState:
    """What the extension keeps per Flask app (one extension may serve several apps): the
    app's :class:`ltikit.tool.Tool` (everything ltikit decides and keeps), and the Flask
    parts (the error callback, Canvas's routes, URLs)."""

    def __init__(self, app: Flask, role_groups: Mapping[str, Any] | None,
                 storage: Store | SQLStorage | None,
                 clock: Callable[[], float] | None = None,
                 tool_configuration: Callable[[PlatformConfiguration], ToolConfiguration]
                 | None = None) -> None:
        config = app.config
        for name, value in CONFIG_DEFAULTS.items():
            config.setdefault(name, value)
        self.app = app
        self.tool = tool = Tool(
            config, secret_key=lambda: app.secret_key, database=storage,
            default_database=f"sqlite:///{app.instance_path}/ltikit.sqlite3",
            role_groups=role_groups, clock=clock, tool_configuration=tool_configuration)
        self.settings = tool.settings
        self.store = tool.store
        self.clock = tool.clock
        self.storage = tool.storage
        self.consumers = tool.consumers
        self.role_groups = tool.role_groups
        self.cookies = tool.cookies
        self.default_error: Callable[..., Any] | None = None
        self.default_role: str = ANY
        self._urls: TTLCache[tuple[str | None, ...], str] = TTLCache(256)
        self.canvas: CanvasSupport | None = None
        if tool.canvas is not None:
            self.canvas = CanvasSupport(self, tool.canvas)

    @property
    def launches(self) -> LaunchManager:
        return self.tool.launches

    @property
    def lti13(self) -> LTI13Services:
        return self.tool.lti13

    @property
    def registration(self) -> RegistrationFlow:
        return self.tool.registration

    @property
    def flow(self) -> LaunchFlow:
        return self.tool.flow

    # -- request handling -----------------------------------------------------------------
    def bound(self, request: Request) -> None:
        """Refuse (413) a request too large to parse, before anything reads its form: a
        5 MB launch or 10,000 fields cost a worker hundreds of milliseconds and megabytes
        (Werkzeug bounds neither an urlencoded body nor its number of fields)."""
        settings = self.settings
        limit, fields = settings.max_request_bytes, settings.max_form_fields
        # Werkzeug's content_length reads two headers through its environ view (about
        # 1.5 µs of a later page); without a Content-Length it is None in any case.
        length = request.content_length if request.environ.get("CONTENT_LENGTH") else None
        if length is not None and length > limit:
            raise LTIRequestTooLarge(f"The request is larger than {limit} bytes.")
        if request.query_string.count(b"&") >= fields:
            raise LTIRequestTooLarge(f"The request has more than {fields} fields.")
        request.max_content_length = limit  # a chunked body stops being read there
        request.max_form_parts = fields
        if request.method in ("POST", "PUT", "PATCH") and \
                request.mimetype == "application/x-www-form-urlencoded":
            try:
                body = request.get_data(cache=True)  # form parsing reads it from here
            except RequestEntityTooLarge:
                raise LTIRequestTooLarge(f"The request is larger than {limit} bytes.") \
                    from None
            if body.count(b"&") >= fields:
                raise LTIRequestTooLarge(f"The request has more than {fields} fields.")

    def authenticate(self, request: Request, request_type: str, role: str,
                     message_types: Collection[str] | None) -> LTI | Response:
        """The ``lti`` object of an authenticated request, or the page an LTI 1.3 launch
        continues with (the platform-storage check); refusals raise.  The decisions are
        :class:`ltikit.flow.LaunchFlow`'s."""
        self.bound(request)
        decision = self.flow.authenticate(to_request(request, lambda: self.public_url(request)),
                                          request_type=request_type, role=role,
                                          message_types=message_types)
        if isinstance(decision, Reply):
            return to_response(decision)
        if decision.cookies:
            cookies = decision.cookies

            def set_cookies(response: Response) -> Response:
                for cookie in cookies:
                    response.headers.add("Set-Cookie", cookie)
                return response

            after_this_request(set_cookies)
        return LTI(self, decision.active)

    def public_url(self, request: Request) -> str:
        """The URL the platform signed: the request's, or the proxy's when trusted."""
        trusted = self.settings.trusted_proxies
        environ = request.environ
        if trusted <= 0:
            # Werkzeug rebuilds and re-quotes the URL on every access; a tool has few launch
            # URLs, so remember them per raw WSGI values (bounded: Host is client-chosen).
            key = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"),
                   environ.get("SERVER_NAME"), environ.get("SERVER_PORT"),
                   environ.get("SCRIPT_NAME"), environ.get("PATH_INFO"))
            url = self._urls.get(key)
            if url is None:
                url = self._urls.put(key, request.base_url)
            return url
        headers = request.headers
        scheme = forwarded(headers.get("X-Forwarded-Proto"), trusted) or request.scheme
        host = forwarded(headers.get("X-Forwarded-Host"), trusted) or request.host
        return get_current_url(scheme, host, request.root_path, request.path)

    # -- responses ------------------------------------------------------------------------
    def clear_cookie(self, response: Response, name: str | None = None) -> None:
        """Delete the launch cookie (or the ltikit cookie ``name``)."""
        response.headers.add("Set-Cookie",
                             self.cookies.deletion(name or self.settings.cookie_name))

    def log_refusal(self, request: Request, exc: LTIException) -> None:
        key = request.args.get("oauth_consumer_key") or (
            request.form.get("oauth_consumer_key")
            if request.mimetype == "application/x-www-form-urlencoded" and
            not isinstance(exc, LTIRequestTooLarge) else None)
        log.warning("LTI request refused: status=%s reason=%s path=%s key=%s: %s",
                    exc.status, exc.reason, request.path, key, exc.message)

    def refuse(self, request: Request, exc: LTIException, error: Callable[..., Any] | None,
               args: tuple[Any, ...], kwargs: dict[str, Any]) -> Response:
        self.log_refusal(request, exc)
        if error is None:
            return error_page(exc)
        response = make_response(error(exception={"exception": exc, "kwargs": kwargs,
                                                  "args": args}))
        if response.status_code == 200:
            # PyLTI error callbacks usually return a bare page; a refusal is never a 200.
            response.status_code = exc.status
        return _with_retry_after(response, exc)



class LTIKit:
    """The Flask extension: ``LTIKit(app)`` or ``ext = LTIKit(); ext.init_app(app)``.

    ``role_groups`` adds or replaces role groups for the apps this extension serves (see
    :mod:`ltikit.roles`); ``storage`` is where ltikit keeps everything: a
    :class:`ltikit.store.Store` (or an :class:`~ltikit.storage.SQLStorage`, or nothing:
    ``LTIKIT_DATABASE_URL``, by default SQLite in the instance folder), with the
    ``LTIKIT_ENCRYPTION_KEYS``.  ``error`` and ``role`` are the defaults of every ``@lti`` route
    that does not give its own: ``LTIKit(app, error=error, role="staff")``.  Without an
    ``error`` callback, a refusal goes to the app's ``@app.errorhandler(LTIException)``
    (or a handler of a subclass) when it has one, and otherwise gets ltikit's error page.
    ``clock`` (seconds, like ``time.time``; default: the store's) times launches, the
    platforms' key sets and Canvas tokens: a test passes :class:`ltikit.testing.Clock` and
    moves it on instead of sleeping.  ``tool_configuration(platform)`` answers what to
    register with a platform that installs the tool by LTI Dynamic Registration (a
    :class:`ltikit.lti13.ToolConfiguration`; see ``LTIKIT_LTI13_REGISTRATION``).

    The members below (``registrations``, ``tool_keys``, ``storage``, ``consumers``,
    ``settings``, ``public_url``) are those of the app given here, or of the current app
    for an extension set up with ``init_app``.
    """

    def __init__(self, app: Flask | None = None, *, role_groups: Mapping[str, Any] | None = None,
                 storage: Store | SQLStorage | None = None,
                 error: Callable[..., Any] | None = None,
                 role: str | None = None, clock: Callable[[], float] | None = None,
                 tool_configuration: Callable[[PlatformConfiguration], ToolConfiguration]
                 | None = None) -> None:
        self._role_groups = role_groups
        self._tool_configuration = tool_configuration
        self._clock = clock
        self._storage = storage
        self._error, self._role = error, role
        self._app = app
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        state = _AppState(app, self._role_groups, self._storage, self._clock,
                          self._tool_configuration)
        state.default_error, state.default_role = self._error, self._role or ANY
        app.extensions["ltikit"] = state
        app.add_url_rule(state.settings.lti13_login_path, endpoint="ltikit_lti13_login",
                         view_func=login_view, methods=["GET", "POST"])
        app.add_url_rule(state.settings.lti13_jwks_path, endpoint="ltikit_lti13_jwks",
                         view_func=jwks_view)
        # Served even when registrations are off: a platform that opens it gets a page
        # that says so, not a 404.
        path = state.settings.lti13_registration_path
        app.add_url_rule(path, endpoint="ltikit_lti13_register", view_func=registration_view,
                         methods=["GET", "POST"])
        app.add_url_rule(f"{path}/<link>", endpoint="ltikit_lti13_register_link",
                         view_func=registration_view, methods=["GET", "POST"])
        if state.canvas is not None:
            app.add_url_rule(state.settings.canvas_callback_path,
                             endpoint="ltikit_canvas_callback", view_func=canvas_callback)

    def lti(self, *args: Any, **kwargs: Any) -> Any:
        """The decorator, as a method (same arguments as :func:`ltikit.flask.lti`)."""
        from .decorator import lti

        return lti(*args, **kwargs)

    # -- the facade -----------------------------------------------------------------------
    def _current(self) -> _AppState:
        if self._app is not None:
            return _state(self._app)
        from flask import current_app

        return _state(current_app._get_current_object())  # type: ignore[attr-defined]

    @property
    def store(self) -> Store:
        """Everything ltikit keeps (:class:`ltikit.store.Store`: ``store.engine``,
        ``store.registrations``, ``store.tool_keys``, ...)."""
        return self._current().store

    @property
    def storage(self) -> SQLStorage:
        """Launches and LTI 1.1 consumers (``store.sql``; ``storage.engine`` is the engine
        of every ltikit table)."""
        return self._current().storage

    @property
    def settings(self) -> Settings:
        """The parsed ``LTIKIT_*`` settings."""
        return self._current().settings

    @property
    def consumers(self) -> ConsumerRegistry:
        """LTI 1.1 consumer keys and secrets (``add``, ``remove``, ``secret_for``)."""
        return self._current().consumers

    @property
    def registrations(self) -> Registrations:
        """The LTI 1.3 platforms registered with the tool (``add``, ``get``, ...)."""
        return self._current().store.registrations

    @property
    def tool_keys(self) -> ToolKeys:
        """The tool's LTI 1.3 signing keys (``generate``, ``rotate``, ``jwks``)."""
        return self._current().store.tool_keys

    @property
    def registration_links(self) -> RegistrationLinks:
        """Single-use Dynamic Registration links (``create``)."""
        return self._current().store.registration_links

    def registration_url(self, link: str | None = None) -> str:
        """The registration URL to paste into a platform (with a link's secret), from the
        current request's public URL."""
        from flask import request as current

        from ..lti13.dynamic_registration import registration_url

        req = current._get_current_object()  # type: ignore[attr-defined]
        base = self.public_url(req).removesuffix(req.path)
        return registration_url(base, self.settings.lti13_registration_path, link)

    def public_url(self, request: Request | None = None) -> str:
        """The URL the client used for ``request`` (default: the current request), trusted
        proxies considered: what a platform signed."""
        if request is None:
            from flask import request as current

            request = current._get_current_object()  # type: ignore[attr-defined]
        return self._current().public_url(request)

    @classmethod
    def of(cls, app: Flask) -> LTIKit:
        """The members above for ``app``, set up earlier (``LTIKit(app)`` in its factory):
        for scripts and tests that have the app but not its extension object, such as
        ``LTIKit.of(app).registrations.add(...)``."""
        kit = cls()
        kit._app = app
        return kit

    @staticmethod
    def state(app: Flask) -> _AppState:
        """ltikit's internal state for ``app`` (prefer the members above)."""
        return _state(app)


_init_lock = threading.Lock()


def _state(app: Flask) -> _AppState:
    state: _AppState | None = app.extensions.get("ltikit")
    if state is None:
        with _init_lock:  # PyLTI-style apps never call init_app: set up from app.config
            state = app.extensions.get("ltikit")
            if state is None:
                # Created during a request: routes (LTI 1.3 login, Canvas callback) can no
                # longer be added; apps that need them create LTIKit(app) at setup.
                state = app.extensions["ltikit"] = _AppState(app, None, None)
    return state
