"""The Flask extension: :class:`LTIKit`, and what it keeps per app (settings, storage,
consumers, launches, the LTI 1.3 and Canvas services) and how it authenticates a request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from flask import Flask, after_this_request, make_response
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.utils import get_current_url
from werkzeug.wrappers import Request, Response

from ..canvas.instances import instances_from_config
from ..cookies import CookiePolicy
from ..errors import LTIException, LTIRequestTooLarge, LTIRoleException
from ..launches import LaunchManager
from ..lti11.consumers import ConsumerRegistry, consumers_from_config
from ..lti11.launch import verify_launch
from ..lti11.signature import OAuthRequest
from ..lti13 import Registrations
from ..lti13.tool_keys import ToolKeys
from ..roles import ANY, RoleGroups, Roles
from ..settings import DEFAULTS, Settings
from ..storage import SQLStorage
from ..storage.cache import TTLCache
from ..storage.sql import current_revision, head_revision, upgrade
from ..store import Store
from .canvas import CanvasSupport, canvas_callback
from .lti13 import LTI13Support, jwks_view, login_view
from .pages import _with_retry_after, error_page
from .view import LTI

__all__ = ["CONFIG_DEFAULTS", "LTIKit"]

log = logging.getLogger("ltikit")

CONFIG_DEFAULTS = DEFAULTS
"""Every ``LTIKIT_*`` setting and its default (:data:`ltikit.settings.DEFAULTS`)."""


class _AppState:
    """What the extension keeps per Flask app (one extension may serve several apps)."""

    def __init__(self, app: Flask, role_groups: Mapping[str, Any] | None,
                 storage: Store | SQLStorage | None,
                 clock: Callable[[], float] | None = None) -> None:
        config = app.config
        for name, value in CONFIG_DEFAULTS.items():
            config.setdefault(name, value)
        self.app = app
        # Parsed and checked once: a bad setting fails here, at start-up.
        self.settings = settings = Settings.load(config)
        static = consumers_from_config((config.get("PYLTI_CONFIG") or {}).get("consumers"))
        static.update(consumers_from_config(config["LTIKIT_CONSUMERS"]))
        keys = config.get("LTIKIT_ENCRYPTION_KEYS") or None
        if isinstance(storage, Store):
            self.store = storage
        else:
            self.store = Store(storage or config["LTIKIT_DATABASE_URL"] or
                               f"sqlite:///{app.instance_path}/ltikit.sqlite3",
                               encryption_keys=keys, clock=clock or time.time)
        # One clock for everything the app times: the one given, else the store's.
        self.clock: Callable[[], float] = clock or self.store.clock
        self.storage = storage = self.store.sql
        if config["LTIKIT_AUTO_UPGRADE"]:
            _upgrade_once(storage)
        self.consumers = ConsumerRegistry(static, storage)
        groups = dict(config["LTIKIT_ROLE_GROUPS"])
        groups.update(role_groups or {})
        self.role_groups = RoleGroups(groups)
        self.default_error: Callable[..., Any] | None = None
        self.default_role: str = ANY
        self._launches: LaunchManager | None = None
        self._lock = threading.Lock()
        self._urls: TTLCache[tuple[str | None, ...], str] = TTLCache(256)
        self._lti13: LTI13Support | None = None
        self.canvas: CanvasSupport | None = None
        instances = instances_from_config(config["LTIKIT_CANVAS_INSTANCES"])
        if instances:
            self.canvas = CanvasSupport(self, instances)
        self.cookies = CookiePolicy(secure=settings.cookie_secure,
                                    partitioned=settings.cookie_partitioned)

    @property
    def launches(self) -> LaunchManager:
        # Created on first use: PyLTI apps often set app.secret_key after creating the app.
        if self._launches is None:
            with self._lock:
                if self._launches is None:
                    self._launches = LaunchManager(
                        self.storage, self.app.secret_key or "",
                        lifetime=self.settings.launch_lifetime,
                        timestamp_window=self.settings.timestamp_window, clock=self.clock)
        return self._launches

    # -- request handling -----------------------------------------------------------------
    @property
    def lti13(self) -> LTI13Support:
        if self._lti13 is None:
            with self._lock:
                if self._lti13 is None:
                    self._lti13 = LTI13Support(self)
        return self._lti13

    def bound(self, request: Request) -> None:
        """Refuse (413) a request too large to parse, before anything reads its form: a
        5 MB launch or 10,000 fields cost a worker hundreds of milliseconds and megabytes
        (Werkzeug bounds neither an urlencoded body nor its number of fields)."""
        limit, fields = self.settings.max_request_bytes, self.settings.max_form_fields
        length = request.content_length
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
        continues with (the platform-storage check); refusals raise."""
        self.bound(request)
        if request_type != "session" and _is_lti13_launch(request):
            return self._launch13(request, role, message_types)
        if request_type == "initial" or (request_type == "any" and _looks_like_launch(request)):
            return self._launch(request, role, message_types)
        active = self.launches.resume(self._launch_token(request))
        if role != ANY:
            self._check_role(active.launch.roles, role)
        return LTI(self, active)

    def _launch(self, request: Request, role: str,
                message_types: Collection[str] | None) -> LTI:
        verified = verify_launch(
            self.oauth_request(request), self.consumers,
            message_types=self.settings.message_types if message_types is None
            else message_types,
            timestamp_window=self.settings.timestamp_window)
        if role != ANY:
            self._check_role(verified.roles, role)  # before anything is stored
        active = self.launches.start(verified)
        cookie = self._cookie_header(active.token)
        after_this_request(lambda response: response.headers.add("Set-Cookie", cookie)
                           or response)
        params = verified.params
        log.info("LTI 1.1 launch accepted: key=%s user=%s context=%s",
                 verified.consumer_key, params.get("user_id"), params.get("context_id"))
        return LTI(self, active)

    def _launch13(self, request: Request, role: str,
                  message_types: Collection[str] | None) -> LTI | Response:
        # A route's declared types are exactly what it takes: a route declared for 1.1's
        # ContentItemSelectionRequest takes no 1.3 message, rather than 1.3's default list.
        wanted = self.settings.lti13_message_types if message_types is None \
            else frozenset(message_types)
        launched = self.lti13.verify_launch(request, wanted)
        if isinstance(launched, Response):
            return launched
        verified = launched.verified
        if role != ANY:
            self._check_role(launched.roles, role)  # before anything is stored
        active = self.launches.start_lti13(verified)
        cookie = self._cookie_header(active.token)

        def finish(response: Response) -> Response:
            response.headers.add("Set-Cookie", cookie)
            response.headers.add("Set-Cookie", launched.clear_state_cookie)
            return response

        after_this_request(finish)
        log.info("LTI 1.3 launch accepted: issuer=%s client=%s deployment=%s user=%s",
                 verified.registration.issuer, verified.registration.client_id,
                 verified.deployment_id, verified.claims.get("sub"))
        return LTI(self, active)

    def _check_role(self, roles: Roles, role: str) -> None:
        if not self.role_groups.check(roles, role):
            raise LTIRoleException()

    def oauth_request(self, request: Request) -> OAuthRequest:
        form = request.form.items(multi=True) \
            if request.mimetype == "application/x-www-form-urlencoded" else ()
        return OAuthRequest(method=request.method, url=self.public_url(request),
                            query=list(request.args.items(multi=True)), form=list(form),
                            authorization=request.headers.get("Authorization"))

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
        scheme = _forwarded(headers.get("X-Forwarded-Proto"), trusted) or request.scheme
        host = _forwarded(headers.get("X-Forwarded-Host"), trusted) or request.host
        return get_current_url(scheme, host, request.root_path, request.path)

    def _launch_token(self, request: Request) -> str | None:
        settings = self.settings
        param = settings.launch_param
        return (request.args.get(param) or
                (request.form.get(param) if request.method == "POST" else None) or
                request.headers.get(settings.launch_header) or
                request.cookies.get(settings.cookie_name))

    # -- responses ------------------------------------------------------------------------
    def _cookie_header(self, token: str) -> str:
        return self.cookie_header(self.settings.cookie_name, token,
                                  self.settings.launch_lifetime)

    def cookie_header(self, name: str, value: str, max_age: int, *,
                      http_only: bool = True) -> str:
        """A ``Set-Cookie`` value for one of ltikit's cookies (:class:`CookiePolicy`)."""
        return self.cookies.header(name, value, max_age, http_only=http_only)

    def clear_cookie(self, response: Response, name: str | None = None) -> None:
        """Delete the launch cookie (or the ltikit cookie ``name``)."""
        response.headers.add("Set-Cookie", self.cookie_header(
            name or self.settings.cookie_name, "", 0))

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


def _forwarded(value: str | None, trusted: int) -> str | None:
    if not value:
        return None
    values = [v.strip() for v in value.split(",")]
    return values[-trusted] if len(values) >= trusted else None


def _is_lti13_launch(request: Request) -> bool:
    return request.method == "POST" and \
        request.mimetype == "application/x-www-form-urlencoded" and "id_token" in request.form


def _looks_like_launch(request: Request) -> bool:
    """Would PyLTI's ``request='any'`` treat this request as a new launch?"""
    if (request.headers.get("Authorization") or "")[:6].lower() == "oauth ":
        return True
    if "oauth_signature" in request.args or "lti_message_type" in request.args:
        return True
    return request.method == "POST" and request.mimetype == \
        "application/x-www-form-urlencoded" and (
            "oauth_signature" in request.form or "lti_message_type" in request.form)


_upgrade_lock = threading.Lock()


def _upgrade_once(storage: SQLStorage) -> None:
    with _upgrade_lock:
        try:
            if current_revision(storage.engine) == head_revision():
                return
            upgrade(storage.engine)
        except Exception:
            # Another worker may have run the same migration at the same moment.
            time.sleep(0.2)
            if current_revision(storage.engine) != head_revision():
                raise


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
    moves it on instead of sleeping.

    The members below (``registrations``, ``tool_keys``, ``storage``, ``consumers``,
    ``settings``, ``public_url``) are those of the app given here, or of the current app
    for an extension set up with ``init_app``.
    """

    def __init__(self, app: Flask | None = None, *, role_groups: Mapping[str, Any] | None = None,
                 storage: Store | SQLStorage | None = None,
                 error: Callable[..., Any] | None = None,
                 role: str | None = None, clock: Callable[[], float] | None = None) -> None:
        self._role_groups = role_groups
        self._clock = clock
        self._storage = storage
        self._error, self._role = error, role
        self._app = app
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        state = _AppState(app, self._role_groups, self._storage, self._clock)
        state.default_error, state.default_role = self._error, self._role or ANY
        app.extensions["ltikit"] = state
        app.add_url_rule(state.settings.lti13_login_path, endpoint="ltikit_lti13_login",
                         view_func=login_view, methods=["GET", "POST"])
        app.add_url_rule(state.settings.lti13_jwks_path, endpoint="ltikit_lti13_jwks",
                         view_func=jwks_view)
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

    def public_url(self, request: Request | None = None) -> str:
        """The URL the client used for ``request`` (default: the current request), trusted
        proxies considered: what a platform signed."""
        if request is None:
            from flask import request as current

            request = current._get_current_object()  # type: ignore[attr-defined]
        return self._current().public_url(request)

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
