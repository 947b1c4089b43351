"""Flask adapter: the :class:`LTIKit` extension, the PyLTI-compatible ``lti`` decorator,
and the ``current_lti`` proxy.

This is the only package of ltikit that imports Flask.  Migrating from PyLTI is a change
of import::

    from ltikit.flask import lti        # was: from pylti.flask import lti

    @app.route('/launch', methods=['POST'])
    @lti(error=error, request='initial', role='staff', app=app)
    def launch(lti):
        return render_template('index.html', name=lti.name)

Apps that want more than PyLTI offered create the extension explicitly
(``LTIKit(app)`` or ``init_app`` in an app factory); otherwise it is created on first use
from ``app.config``.  See ``CONFIG_DEFAULTS`` for the settings.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from flask import Flask, after_this_request, current_app, g, make_response, url_for
from flask import request as flask_request
from markupsafe import Markup
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.local import LocalProxy
from werkzeug.sansio.utils import get_current_url
from werkzeug.wrappers import Request, Response

from .. import _http
from ..canvas.instances import instances_from_config
from ..canvas.tokens import CanvasAuthorizationRequired
from ..cookies import CookiePolicy
from ..crypto import SecretBox
from ..errors import (
    LTIConfigurationError,
    LTIException,
    LTIMalformedRequest,
    LTINotInSessionException,
    LTIPostMessageException,
    LTIRequestTooLarge,
    LTIRoleException,
)
from ..launch import BASIC_LAUNCH, Launch
from ..launches import ActiveLaunch, LaunchManager
from ..lti11.consumers import ConsumerRegistry, consumers_from_config
from ..lti11.launch import verify_launch
from ..lti11.outcomes import DEFAULT_TIMEOUT as OUTCOMES_TIMEOUT
from ..lti11.outcomes import OutcomeResponse, OutcomeService
from ..lti11.signature import OAuthRequest
from ..roles import ANY, RoleGroups, Roles
from ..storage import SQLStorage
from ..storage.sql import current_revision, head_revision, upgrade

__all__ = [
    "LTI", "LTIException", "LTIKit", "LTINotInSessionException", "LTIPostMessageException",
    "LTIRoleException", "current_lti", "lti",
]

log = logging.getLogger("ltikit")

CONFIG_DEFAULTS: Mapping[str, Any] = {
    # {key: secret} or {key: {"secret": secret}}; PYLTI_CONFIG["consumers"] is read too.
    "LTIKIT_CONSUMERS": {},
    # SQLAlchemy URL; default: a SQLite file in the app's instance folder.
    "LTIKIT_DATABASE_URL": None,
    # Create/upgrade ltikit's tables at startup (run `ltikit db upgrade` and set False
    # when deploys should migrate explicitly).
    "LTIKIT_AUTO_UPGRADE": True,
    # Accepted clock difference, both ways, for oauth_timestamp (seconds).
    "LTIKIT_TIMESTAMP_WINDOW": 300,
    # How long a launch stays usable for later requests (seconds).
    "LTIKIT_LAUNCH_LIFETIME": 8 * 3600,
    # Number of proxies in front of the app whose X-Forwarded-Proto/Host are trusted
    # when reconstructing the URL the platform signed (0: trust none, as ProxyFix).
    "LTIKIT_TRUSTED_PROXIES": 0,
    # Extra or replaced role groups: {"reviewer": ["Mentor", "TeachingAssistant"]}.
    "LTIKIT_ROLE_GROUPS": {},
    # lti_message_type values a launch route accepts unless the decorator says otherwise.
    "LTIKIT_MESSAGE_TYPES": (BASIC_LAUNCH,),
    # The launch-id cookie: SameSite=None; Secure; Partitioned so it survives in the
    # platform's cross-site iframe.  Browsers treat http://localhost as secure, so this
    # also works in development; set False only for plain-http hosts other than localhost.
    "LTIKIT_COOKIE_NAME": "ltikit_launch",
    "LTIKIT_COOKIE_SECURE": True,
    "LTIKIT_COOKIE_PARTITIONED": True,
    # Query/form parameter and header that carry a launch id explicitly (per tab).
    "LTIKIT_LAUNCH_PARAM": "ltikit_launch",
    "LTIKIT_LAUNCH_HEADER": "X-LTIKit-Launch",
    # Canvas API as the launching user (see ltikit.flask.canvas):
    # {"canvas.example.edu": {"client_id": ..., "client_secret": ..., "scopes": [...]}}.
    "LTIKIT_CANVAS_INSTANCES": {},
    # Fernet keys for tokens at rest, newest first (`ltikit keys generate`); a list or a
    # space/comma separated string.  Required with LTIKIT_CANVAS_INSTANCES.
    "LTIKIT_ENCRYPTION_KEYS": None,
    # Where Canvas sends the user back (register it on the developer key).  The URI is
    # built from the request (and trusted proxies) unless LTIKIT_CANVAS_REDIRECT_URI is set.
    "LTIKIT_CANVAS_CALLBACK_PATH": "/ltikit/canvas/callback",
    "LTIKIT_CANVAS_REDIRECT_URI": None,
    # Refresh an access token this many seconds before it expires.
    "LTIKIT_CANVAS_REFRESH_MARGIN": 60,
    # LTI 1.3: the OIDC login URL (register it on the platform), target_link_uris on other
    # origins that logins may ask for, and the clock skew accepted on id_tokens (seconds).
    "LTIKIT_LTI13_LOGIN_PATH": "/lti13/login",
    # The tool's public keys (JWKS), for platforms to verify what the tool signs.
    "LTIKIT_LTI13_JWKS_PATH": "/lti13/jwks",
    "LTIKIT_LTI13_TARGET_LINK_URIS": (),
    "LTIKIT_LTI13_LEEWAY": 5,
    # Seconds between two re-fetches of a platform's JWKS for an unknown kid (all workers
    # together): short, so a launch right after a key rotation is refused only briefly.
    "LTIKIT_LTI13_JWKS_REFETCH_INTERVAL": 10,
    # id_token message types a launch route accepts unless the decorator says otherwise.
    "LTIKIT_LTI13_MESSAGE_TYPES": ("LtiResourceLinkRequest",),
    # Deadlines ("connect total" seconds, or a pair) for calls to Canvas's API and token
    # endpoint, to platforms' key sets and LTI Advantage services, and to 1.1 outcome
    # services: None for the defaults (3 15, 3 8, 3 5, 3 15, 3 15); a service token request
    # has at most 8 s of the service total.
    "LTIKIT_CANVAS_API_TIMEOUT": None,
    "LTIKIT_CANVAS_TOKEN_TIMEOUT": None,
    "LTIKIT_LTI13_JWKS_TIMEOUT": None,
    "LTIKIT_LTI13_SERVICE_TIMEOUT": None,
    "LTIKIT_OUTCOMES_TIMEOUT": None,
    # Seconds a request waits for another worker's refresh of the same Canvas token before
    # answering 503 with Retry-After (it never waits while the current token still works).
    "LTIKIT_CANVAS_REFRESH_WAIT": 3.0,
    # Requests to ltikit's routes (launches, the OIDC login, the Canvas callback) larger than
    # this, or with more form or query fields, are refused with 413 before they are parsed.
    # A Canvas 1.1 launch is about 4 kB and 80 fields; an LTI 1.3 launch 2-20 kB.
    "LTIKIT_MAX_REQUEST_BYTES": 256 * 1024,
    "LTIKIT_MAX_FORM_FIELDS": 1000,
}

_REQUEST_TYPES = ("any", "initial", "session")
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 6265 token


class LTI:
    """The ``lti`` object a decorated view receives (PyLTI's public members and more)."""

    def __init__(self, state: _AppState, active: ActiveLaunch) -> None:
        self._state = state
        self._active = active

    # -- the launch model -----------------------------------------------------------------
    @property
    def launch(self) -> Launch:
        return self._active.launch

    @property
    def launch_id(self) -> str:
        """The signed, opaque id of this launch (safe to put in URLs and forms)."""
        return self._active.token

    @property
    def version(self) -> str:
        return self.launch.version

    @property
    def user(self):
        return self.launch.user

    @property
    def roles(self) -> Roles:
        return self.launch.roles

    @property
    def context(self):
        return self.launch.context

    @property
    def resource_link(self):
        return self.launch.resource_link

    @property
    def custom(self) -> Mapping[str, str]:
        return self.launch.custom

    @property
    def canvas(self):
        return self.launch.canvas

    @property
    def params(self) -> Mapping[str, str]:
        """Every signed launch parameter (what PyLTI kept in the session)."""
        return self._active.params

    # -- PyLTI's members ------------------------------------------------------------------
    # PyLTI's members read LTI 1.1 parameters directly: views that only need these (most
    # PyLTI views) never pay for building the whole launch model.
    @property
    def user_id(self) -> str | None:
        params = self._active.lti11_params
        if params is not None:
            return params.get("user_id") or None
        return self.launch.user.id

    @property
    def key(self) -> str | None:
        """The consumer key the launch was signed with."""
        return self._active.consumer_key

    @property
    def name(self) -> str:
        """PyLTI's display id: SIS id, else email, else user id."""
        params = self._active.lti11_params
        if params is not None:
            return (params.get("lis_person_sourcedid") or
                    params.get("lis_person_contact_email_primary") or
                    params.get("user_id") or "")
        user = self.launch.user
        return user.sourcedid or user.email or user.id or ""

    @property
    def role(self) -> str:
        """The raw ``roles`` parameter, as PyLTI returned it (1.3: the role URIs, joined)."""
        if self._active.lti11_params is not None:
            return self.params.get("roles", "")
        return ",".join(role.raw for role in self.launch.roles)

    def is_role(self, role: str) -> bool:
        """True if the user is in role group ``role`` (``staff``, ``student``, ...)."""
        return self._state.role_groups.check(self.roles, role)

    @property
    def response_url(self) -> str | None:
        """The outcome service URL, rewritten by ``PYLTI_URL_FIX`` as PyLTI did."""
        url = self.launch.outcome.service_url if self.launch.outcome else \
            self.launch.params.get("lis_outcome_service_url")
        if url is None:
            return None
        for prefix, mapping in self._state.app.config.get("PYLTI_URL_FIX", {}).items():
            if url.startswith(prefix):
                for old, new in mapping.items():
                    url = url.replace(old, new)
        return url

    # -- LTI Advantage services (1.3) -----------------------------------------------------
    @functools.cached_property
    def ags(self):
        """The Assignment and Grade Services of this launch
        (:class:`ltikit.lti13.ags.AssignmentGradeService`); a 502 page if not offered."""
        from ..lti13.ags import AssignmentGradeService

        return AssignmentGradeService(*self._service("ags", "grade"))

    @functools.cached_property
    def nrps(self):
        """The Names and Role Provisioning Services of this launch
        (:class:`ltikit.lti13.nrps.NamesRoleService`); a 502 page if not offered.  One
        object per request, so what a read learnt (``differences_url``, ``context``) stays."""
        from ..lti13.nrps import NamesRoleService

        return NamesRoleService(*self._service("nrps", "roster"))

    def _service(self, name: str, what: str) -> tuple[Any, Any]:
        endpoint = getattr(self.launch, name)
        if endpoint is None:
            raise LTIPostMessageException(f"The platform offered no {what} service with this "
                                          "launch.", reason=f"no_{name}")
        return self._state.lti13.service_client(self.launch), endpoint

    def deep_link_response(self, items, *, message: str | None = None,
                           log: str | None = None, error_message: str | None = None,
                           error_log: str | None = None) -> Response:
        """Answer this deep linking request with ``items``
        (:mod:`ltikit.lti13.deep_linking` content items): a page that posts the signed
        ``LtiDeepLinkingResponse`` back to the platform.  An empty list means "nothing
        chosen"."""
        settings = self.launch.deep_linking
        if settings is None:
            raise LTIException("This launch is not a deep linking request.",
                               reason="not_deep_linking")
        from ..lti13.deep_linking import auto_post_page, response_jwt

        support = self._state.lti13
        registration = support.registration_of(self.launch)
        token = response_jwt(settings, registration, self.launch.deployment_id or "", items,
                             support.tool_keys(), message=message, log=log,
                             error_message=error_message, error_log=error_log)
        page = auto_post_page(settings.return_url, {"JWT": token})
        return Response(page.body, mimetype="text/html", headers=page.headers)

    def post_grade(self, score: float, *, result_text: str | None = None,
                   result_url: str | None = None) -> bool:
        """Send ``score`` (0.0 to 1.0): LTI 1.1 replaceResult, or on an LTI 1.3 launch an
        AGS score on the launch's line item (``comment`` from ``result_text``).

        As in PyLTI: ``False`` if the score is out of range, ``True`` once the platform
        confirms, :class:`LTIPostMessageException` if it does not.
        """
        try:
            value = float(score)
        except (TypeError, ValueError):
            return False
        if not 0.0 <= value <= 1.0:
            return False
        if self.version == "1.3":
            self._post_ags_score(value, comment=result_text)
            return True
        service, url, sourcedid = self._outcome_service()
        service.replace_result(url, sourcedid, value, result_text=result_text,
                               result_url=result_url)
        log.info("grade sent: key=%s user=%s", self.key, self.user_id)
        return True

    def _post_ags_score(self, value: float, *, comment: str | None) -> None:
        from ..lti13.ags import Score
        from ..lti13.services import ServiceError

        ags = self.ags
        if not ags.endpoint.lineitem:
            raise LTIPostMessageException(
                "This launch cannot take a grade: it is not tied to a gradebook column "
                "(no line item in the launch).", reason="no_lineitem")
        try:
            ags.post_score(Score(user_id=str(self.user_id), score_given=value,
                                 score_maximum=1.0, comment=comment))
        except ServiceError as exc:
            raise LTIPostMessageException(exc.message, reason=exc.reason) from None
        log.info("grade sent (AGS): client=%s user=%s", self.key, self.user_id)

    def read_grade(self) -> float | None:
        service, url, sourcedid = self._outcome_service()
        return service.read_result(url, sourcedid).score

    def delete_grade(self) -> OutcomeResponse:
        service, url, sourcedid = self._outcome_service()
        return service.delete_result(url, sourcedid)

    def _outcome_service(self) -> tuple[OutcomeService, str, str]:
        outcome = self.launch.outcome
        url = self.response_url
        if outcome is None or not url:
            raise LTIPostMessageException(
                "This launch cannot take a grade: the platform sent no outcome service URL "
                "or result sourcedid (not a graded placement, or the user is not a learner).",
                reason="no_outcome_service")
        secret = self._state.consumers.secret_for(self.key or "")
        if secret is None:
            raise LTIPostMessageException("The consumer of this launch is no longer known.",
                                          reason="unknown_consumer_key")
        timeout = _http.timeouts(self._state.app.config.get("LTIKIT_OUTCOMES_TIMEOUT"),
                                 OUTCOMES_TIMEOUT)
        return OutcomeService(self.key or "", secret, timeout=timeout), url, \
            outcome.result_sourcedid

    def close_session(self) -> None:
        """End this launch: later requests carrying its id are refused."""
        self._state.launches.end(self._active)
        cookie = self._state.app.config["LTIKIT_COOKIE_NAME"]
        if flask_request and flask_request.cookies.get(cookie) == self._active.token:
            after_this_request(lambda response: self._state.clear_cookie(response) or response)

    # -- Canvas API as this user -----------------------------------------------------------
    @property
    def canvas_api(self):
        """A ``canvasapi.Canvas`` acting as the launching user on the launching Canvas.

        Raises :class:`~ltikit.canvas.CanvasAuthorizationRequired` when the user has not
        authorized the tool yet (or revoked it); inside ``@lti`` views that becomes a
        redirect through Canvas's authorization and back to the current page.
        """
        return self._canvas_support().client(self)

    def canvas_logout(self) -> bool:
        """Revoke the user's Canvas token (``DELETE /login/oauth2/token``) and forget it."""
        return self._canvas_support().logout(self)

    def _canvas_support(self):
        support = self._state.canvas
        if support is None:
            raise LTIConfigurationError(
                "Canvas API access is not configured: set LTIKIT_CANVAS_INSTANCES and "
                "LTIKIT_ENCRYPTION_KEYS.", reason="canvas_not_configured")
        return support

    # -- carrying the launch to the next request ------------------------------------------
    def url_for(self, endpoint: str, **values: Any) -> str:
        """``flask.url_for`` plus this launch's id, so the link works in this tab even when
        cookies are blocked or another launch happened in another tab."""
        values[self._state.app.config["LTIKIT_LAUNCH_PARAM"]] = self.launch_id
        return url_for(endpoint, **values)

    def hidden_field(self) -> Markup:
        """An ``<input type=hidden>`` carrying this launch's id, for forms."""
        name = self._state.app.config["LTIKIT_LAUNCH_PARAM"]
        return Markup('<input type="hidden" name="{}" value="{}">').format(name, self.launch_id)

    def __repr__(self) -> str:
        return f"<LTI {self.version} user={self.user_id!r} key={self.key!r}>"


class _AppState:
    """What the extension keeps per Flask app (one extension may serve several apps)."""

    def __init__(self, app: Flask, role_groups: Mapping[str, Any] | None,
                 storage: SQLStorage | None) -> None:
        config = app.config
        for name, value in CONFIG_DEFAULTS.items():
            config.setdefault(name, value)
        self.app = app
        static = consumers_from_config((config.get("PYLTI_CONFIG") or {}).get("consumers"))
        static.update(consumers_from_config(config["LTIKIT_CONSUMERS"]))
        if storage is None:
            url = config["LTIKIT_DATABASE_URL"] or \
                f"sqlite:///{app.instance_path}/ltikit.sqlite3"
            keys = config.get("LTIKIT_ENCRYPTION_KEYS")
            storage = SQLStorage(url, secret_box=SecretBox(keys) if keys else None)
        self.storage = storage
        if config["LTIKIT_AUTO_UPGRADE"]:
            _upgrade_once(storage)
        self.consumers = ConsumerRegistry(static, storage)
        groups = dict(config["LTIKIT_ROLE_GROUPS"])
        groups.update(role_groups or {})
        self.role_groups = RoleGroups(groups)
        self._launches: LaunchManager | None = None
        self._lock = threading.Lock()
        self._urls: dict[tuple, str] = {}
        self._lti13 = None
        self.canvas = None
        instances = instances_from_config(config["LTIKIT_CANVAS_INSTANCES"])
        if instances:
            from .canvas import CanvasSupport

            self.canvas = CanvasSupport(self, instances, config["LTIKIT_ENCRYPTION_KEYS"])
        self.cookies = CookiePolicy(secure=bool(config["LTIKIT_COOKIE_SECURE"]),
                                    partitioned=bool(config["LTIKIT_COOKIE_PARTITIONED"]))
        self.max_request_bytes = int(config["LTIKIT_MAX_REQUEST_BYTES"])
        self.max_form_fields = int(config["LTIKIT_MAX_FORM_FIELDS"])
        if self.max_request_bytes <= 0 or self.max_form_fields <= 0:
            raise LTIConfigurationError("LTIKIT_MAX_REQUEST_BYTES and LTIKIT_MAX_FORM_FIELDS "
                                        "must be positive.", reason="bad_request_limits")
        name = config["LTIKIT_COOKIE_NAME"]
        if not name or not _COOKIE_NAME.fullmatch(name):
            raise LTIConfigurationError(f"LTIKIT_COOKIE_NAME {name!r} is not a valid cookie "
                                        "name.", reason="bad_cookie_name")

    @property
    def launches(self) -> LaunchManager:
        # Created on first use: PyLTI apps often set app.secret_key after creating the app.
        if self._launches is None:
            with self._lock:
                if self._launches is None:
                    self._launches = LaunchManager(
                        self.storage, self.app.secret_key or "",
                        lifetime=int(self.app.config["LTIKIT_LAUNCH_LIFETIME"]),
                        timestamp_window=int(self.app.config["LTIKIT_TIMESTAMP_WINDOW"]))
        return self._launches

    # -- request handling -----------------------------------------------------------------
    @property
    def lti13(self):
        if self._lti13 is None:
            from .lti13 import LTI13Support

            with self._lock:
                if self._lti13 is None:
                    self._lti13 = LTI13Support(self)
        return self._lti13

    def bound(self, request: Request) -> None:
        """Refuse (413) a request too large to parse, before anything reads its form: a
        5 MB launch or 10,000 fields cost a worker hundreds of milliseconds and megabytes
        (Werkzeug bounds neither an urlencoded body nor its number of fields)."""
        limit, fields = self.max_request_bytes, self.max_form_fields
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
        config = self.app.config
        verified = verify_launch(
            self.oauth_request(request), self.consumers,
            message_types=config["LTIKIT_MESSAGE_TYPES"] if message_types is None
            else message_types,
            timestamp_window=int(config["LTIKIT_TIMESTAMP_WINDOW"]))
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
        wanted = frozenset(self.app.config["LTIKIT_LTI13_MESSAGE_TYPES"]
                           if message_types is None else message_types)
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
        trusted = int(self.app.config["LTIKIT_TRUSTED_PROXIES"])
        environ = request.environ
        if trusted <= 0:
            # Werkzeug rebuilds and re-quotes the URL on every access; a tool has few launch
            # URLs, so remember them per raw WSGI values (bounded: Host is client-chosen).
            key = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"),
                   environ.get("SERVER_NAME"), environ.get("SERVER_PORT"),
                   environ.get("SCRIPT_NAME"), environ.get("PATH_INFO"))
            url = self._urls.get(key)
            if url is None:
                url = request.base_url
                if len(self._urls) >= 256:
                    self._urls.clear()
                self._urls[key] = url
            return url
        headers = request.headers
        scheme = _forwarded(headers.get("X-Forwarded-Proto"), trusted) or request.scheme
        host = _forwarded(headers.get("X-Forwarded-Host"), trusted) or request.host
        return get_current_url(scheme, host, request.root_path, request.path)

    def _launch_token(self, request: Request) -> str | None:
        config = self.app.config
        param = config["LTIKIT_LAUNCH_PARAM"]
        return (request.args.get(param) or
                (request.form.get(param) if request.method == "POST" else None) or
                request.headers.get(config["LTIKIT_LAUNCH_HEADER"]) or
                request.cookies.get(config["LTIKIT_COOKIE_NAME"]))

    # -- responses ------------------------------------------------------------------------
    def _cookie_header(self, token: str) -> str:
        config = self.app.config
        return self.cookie_header(config["LTIKIT_COOKIE_NAME"], token,
                                  int(config["LTIKIT_LAUNCH_LIFETIME"]))

    def cookie_header(self, name: str, value: str, max_age: int, *,
                      http_only: bool = True) -> str:
        """A ``Set-Cookie`` value for one of ltikit's cookies (:class:`CookiePolicy`)."""
        return self.cookies.header(name, value, max_age, http_only=http_only)

    def clear_cookie(self, response: Response, name: str | None = None) -> None:
        """Delete the launch cookie (or the ltikit cookie ``name``)."""
        response.headers.add("Set-Cookie", self.cookie_header(
            name or self.app.config["LTIKIT_COOKIE_NAME"], "", 0))

    def refuse(self, request: Request, exc: LTIException, error: Callable[..., Any] | None,
               args: tuple, kwargs: dict) -> Response:
        key = request.args.get("oauth_consumer_key") or (
            request.form.get("oauth_consumer_key")
            if request.mimetype == "application/x-www-form-urlencoded" and
            not isinstance(exc, LTIRequestTooLarge) else None)
        log.warning("LTI request refused: status=%s reason=%s path=%s key=%s: %s",
                    exc.status, exc.reason, request.path, key, exc.message)
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


_TITLES = {400: "This launch could not be read", 401: "This launch could not be verified",
           403: "You do not have access to this page", 413: "This request is too large",
           503: "Canvas is not available right now", 504: "Canvas is taking too long"}
_HINTS = {
    401: "Go back to your course and open the tool again from there. If this keeps "
         "happening, your browser may be blocking cookies for this tool inside the course "
         "page; opening the tool in a new window usually helps.",
    403: "This part of the tool is for a different role in the course.",
}


def error_page(exc: LTIException, *, title: str | None = None,
               retry: str | None = None) -> Response:
    """The default refusal page: escaped, plain, with the refusal's HTTP status (and a
    *Try again* link to ``retry`` when there is something to try again)."""
    status = exc.status
    title = title or _TITLES.get(status, "The tool could not complete this request")
    hint = _HINTS.get(status, "")
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
    response = Response(str(body), status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return _with_retry_after(response, exc)


def _with_retry_after(response: Response, exc: LTIException) -> Response:
    """``Retry-After`` on a 503 whose cause says when to try again (Canvas busy or
    throttled), whichever page (ours or the app's error callback) answers it."""
    wait = getattr(exc, "retry_after", None)
    if isinstance(wait, int | float) and response.status_code in (429, 503) and \
            "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


class LTIKit:
    """The Flask extension: ``LTIKit(app)`` or ``ext = LTIKit(); ext.init_app(app)``.

    ``role_groups`` adds or replaces role groups for the apps this extension serves (see
    :mod:`ltikit.roles`); ``storage`` replaces the default SQL storage.
    """

    def __init__(self, app: Flask | None = None, *, role_groups: Mapping[str, Any] | None = None,
                 storage: SQLStorage | None = None) -> None:
        self._role_groups = role_groups
        self._storage = storage
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        state = _AppState(app, self._role_groups, self._storage)
        app.extensions["ltikit"] = state
        from .lti13 import jwks_view, login_view

        app.add_url_rule(app.config["LTIKIT_LTI13_LOGIN_PATH"], endpoint="ltikit_lti13_login",
                         view_func=login_view, methods=["GET", "POST"])
        app.add_url_rule(app.config["LTIKIT_LTI13_JWKS_PATH"], endpoint="ltikit_lti13_jwks",
                         view_func=jwks_view)
        if state.canvas is not None:
            from .canvas import canvas_callback

            app.add_url_rule(app.config["LTIKIT_CANVAS_CALLBACK_PATH"],
                             endpoint="ltikit_canvas_callback", view_func=canvas_callback)

    def lti(self, *args: Any, **kwargs: Any):
        """The decorator, as a method (same arguments as :func:`lti`)."""
        return lti(*args, **kwargs)

    @staticmethod
    def state(app: Flask) -> _AppState:
        return _state(app)


_init_lock = threading.Lock()


def _state(app: Flask) -> _AppState:
    state = app.extensions.get("ltikit")
    if state is None:
        with _init_lock:  # PyLTI-style apps never call init_app: set up from app.config
            state = app.extensions.get("ltikit")
            if state is None:
                # Created during a request: routes (LTI 1.3 login, Canvas callback) can no
                # longer be added; apps that need them create LTIKit(app) at setup.
                app.extensions["ltikit"] = _AppState(app, None, None)
                state = app.extensions["ltikit"]
    return state


def default_error(exception: dict[str, Any] | None = None) -> Response:
    """An error callback with PyLTI's signature that renders ltikit's error page."""
    exc = (exception or {}).get("exception")
    return error_page(exc if isinstance(exc, LTIException) else LTIException())


def lti(app: Flask | Callable[..., Any] | None = None, request: str = "any",
        error: Callable[..., Any] | None = None, role: str = ANY, *,
        message_types: Collection[str] | None = None):
    """Protect a view with an LTI launch, PyLTI-style; the view receives ``lti=LTI``.

    ``request``: ``'initial'`` (the request must be a signed launch), ``'session'`` (an
    earlier launch of this browser or tab), ``'any'`` (either).  ``role``: a role group
    name, or ``'any'``.  ``error``: called as ``error(exception={'exception': exc,
    'kwargs': ..., 'args': ...})`` when the request is refused; its return value is the
    response (given the refusal's status when it has none); LTI errors raised by the view
    itself (such as a refused ``post_grade``) are handled the same way.  ``message_types``: the
    message types accepted as a launch, LTI 1.1 ``lti_message_type`` values and LTI 1.3
    ``message_type`` values alike (default: ``LTIKIT_MESSAGE_TYPES`` for 1.1, basic launches,
    and ``LTIKIT_LTI13_MESSAGE_TYPES`` for 1.3, resource link launches).  Declared types are
    never widened: ``("ContentItemSelectionRequest",)`` takes no LTI 1.3 launch; declare
    ``"LtiDeepLinkingRequest"`` too for that.
    """
    if callable(app) and not isinstance(app, Flask):  # bare @lti
        return lti()(app)
    if request not in _REQUEST_TYPES:
        raise LTIConfigurationError("Unknown request type", reason="unknown_request_type")
    bound_app = app

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            flask_app = bound_app if isinstance(bound_app, Flask) else \
                current_app._get_current_object()  # type: ignore[attr-defined]
            req = flask_request._get_current_object()  # type: ignore[attr-defined]
            try:
                state = _state(flask_app)
                the_lti = state.authenticate(req, request, role, message_types)
                if isinstance(the_lti, Response):  # the launch continues in the browser
                    return the_lti
                g.ltikit_lti = the_lti
                kwargs["lti"] = the_lti
                # As in PyLTI, an LTI error raised by the view itself (a refused grade,
                # say) goes to the same error callback instead of becoming a 500.
                return view(*args, **kwargs)
            except CanvasAuthorizationRequired as exc:
                the_lti = g.get("ltikit_lti")
                if the_lti is None or the_lti._state.canvas is None:
                    return _refuse(flask_app, req, exc, error, args, kwargs)
                try:
                    return the_lti._state.canvas.start_authorization(the_lti, exc.return_to)
                except LTIException as inner:
                    return _refuse(flask_app, req, inner, error, args, kwargs)
            except LTIException as exc:
                return _refuse(flask_app, req, exc, error, args, kwargs)

        return wrapper

    return decorator


def _refuse(app: Flask, req: Request, exc: LTIException, error, args, kwargs) -> Response:
    state = app.extensions.get("ltikit")
    if state is None:  # the extension itself could not start: still answer with a page
        log.error("ltikit is misconfigured: %s", exc.message)
        return error_page(exc)
    return state.refuse(req, exc, error, args, kwargs)


def _current() -> LTI:
    the_lti = g.get("ltikit_lti")
    if the_lti is None:
        raise LTINotInSessionException(reason="no_launch_in_request")
    return the_lti


current_lti: LTI = LocalProxy(_current)  # type: ignore[assignment]
"""The ``lti`` object of the current request (inside a decorated view)."""


__all__ += ["LTIMalformedRequest", "default_error", "error_page"]
