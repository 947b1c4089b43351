"""What ``@lti`` decides about a request, on a plain request: :class:`LaunchFlow`.

A protected view may be reached by a new launch (LTI 1.1 signed POST or GET, LTI 1.3
id_token POST) or by a later request of an earlier launch (its signed id in the URL, a
form field, a header or the cookie).  :meth:`LaunchFlow.authenticate` decides which, as
PyLTI's ``request='initial'|'session'|'any'`` does, verifies it, checks the role before
anything is stored, stores a new launch with its nonce (one insert: a replay is refused by
the database), and answers :class:`Authenticated` (the launch and the ``Set-Cookie``
values to send with the view's response) or a :class:`~ltikit.http.Reply` the launch
continues with (LTI 1.3's platform-storage check, or the redirect that hands a launch
verified at the tool's one redirect URI to its target page).  Refusals raise
:class:`~ltikit.errors.LTIException` subclasses.

A launch handed off that way arrives as a GET with ``ltikit_handoff`` (:data:`HANDOFF_PARAM`):
single-use and valid a minute (:meth:`ltikit.launches.LaunchManager.take_handoff`), it is
that page's new launch whatever its ``request=``, checked against its role and message
types as a launch there would be.

An adapter builds the :class:`~ltikit.http.Request` (after refusing oversized requests
before their body is parsed) and sends the reply or calls the view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import _http
from .cookies import CookiePolicy
from .errors import LTIConfigurationError, LTIMalformedRequest, LTIRoleException
from .http import Reply, Request
from .launches import ActiveLaunch, LaunchManager
from .lti11.consumers import ConsumerRegistry
from .lti11.launch import verify_launch
from .lti11.signature import OAuthRequest
from .lti13.flow import Launched, LTI13Flow
from .roles import ANY, RoleGroups, Roles
from .settings import Settings

__all__ = ["HANDOFF_PARAM", "REQUEST_TYPES", "Authenticated", "LaunchFlow",
           "checked_request_type"]

log = logging.getLogger("ltikit")

HANDOFF_PARAM = "ltikit_handoff"
"""The query parameter of a launch handed from the one redirect URI to its target page."""

REQUEST_TYPES = ("any", "initial", "session")
"""PyLTI's ``request=``: a new launch, a later request of one, or either."""


def checked_request_type(request_type: str) -> str:
    """``request_type`` if it is one of :data:`REQUEST_TYPES`; a configuration error (at
    decoration time, in adapters) otherwise."""
    if request_type not in REQUEST_TYPES:
        raise LTIConfigurationError("Unknown request type", reason="unknown_request_type")
    return request_type


class Authenticated(NamedTuple):
    """The request's launch, and the ``Set-Cookie`` values the response carries (the
    launch cookie of a new launch, the deleted login state cookie of an LTI 1.3 one).
    (A named tuple: made on every request, and a frozen dataclass costs a microsecond.)"""

    active: ActiveLaunch
    cookies: tuple[str, ...] = ()


class LaunchFlow:
    """The launch decisions of one tool (see the module docstring)."""

    def __init__(self, settings: Settings, consumers: ConsumerRegistry,
                 role_groups: RoleGroups, cookies: CookiePolicy,
                 launches: Callable[[], LaunchManager],
                 lti13: Callable[[], LTI13Flow]) -> None:
        self.settings = settings
        self.consumers = consumers
        self.role_groups = role_groups
        self.cookies = cookies
        # Callables: the launch manager needs the app's secret key, which PyLTI-style apps
        # set after creating the extension, and LTI 1.3 needs it for its states.
        self._launches = launches
        self._lti13 = lti13

    def authenticate(self, request: Request, *, request_type: str = "any", role: str = ANY,
                     message_types: Collection[str] | None = None) -> Authenticated | Reply:
        """The launch of ``request`` (see the module docstring).  ``message_types``: those
        the view takes (default: the settings' for each LTI version; a view's declared
        types are never widened)."""
        return _http.run(self.authenticate_steps(request, request_type=request_type,
                                                 role=role, message_types=message_types))

    def authenticate_steps(self, request: Request, *, request_type: str = "any",
                           role: str = ANY, message_types: Collection[str] | None = None
                           ) -> _http.Steps[Authenticated | Reply]:
        """:meth:`authenticate` as steps (:mod:`ltikit._http`): an LTI 1.3 launch may
        fetch the platform's keys, which an async adapter awaits."""
        if request.query and request.method == "GET":
            handoff = request.arg(HANDOFF_PARAM)
            if handoff is not None:
                return self._take_handoff(handoff, role, message_types)
        if request_type != "session" and is_lti13_launch(request):
            return (yield from self._launch13(request, role, message_types))
        if request_type == "initial" or (request_type == "any" and looks_like_launch(request)):
            return self._launch11(request, role, message_types)
        active = self._launches().resume(self.launch_token(request))
        if role != ANY:  # roles are parsed only when a view asks for a group
            self._check_role(active.launch.roles, role)
        return Authenticated(active)

    def launch_token(self, request: Request) -> str | None:
        """The signed id of the launch a later request belongs to: in the URL, a form
        field, a header (scripts) or the cookie."""
        settings = self.settings
        return (request.arg(settings.launch_param) or
                (request.field(settings.launch_param) if request.method == "POST" else None)
                or request.header(settings.launch_header) or
                request.cookies.get(settings.cookie_name))

    def launch_cookie(self, active: ActiveLaunch) -> str:
        settings = self.settings
        return self.cookies.header(settings.cookie_name, active.token,
                                   settings.launch_lifetime)

    # -- new launches -----------------------------------------------------------------------
    def _launch11(self, request: Request, role: str,
                  message_types: Collection[str] | None) -> Authenticated:
        verified = verify_launch(
            OAuthRequest(method=request.method, url=request.url, query=request.query,
                         form=request.form, authorization=request.header("Authorization")),
            self.consumers,
            message_types=self.settings.message_types if message_types is None
            else message_types,
            timestamp_window=self.settings.timestamp_window)
        if role != ANY:
            self._check_role(verified.roles, role)  # before anything is stored
        active = self._launches().start(verified)
        params = verified.params
        log.info("LTI 1.1 launch accepted: key=%s user=%s context=%s",
                 verified.consumer_key, params.get("user_id"), params.get("context_id"))
        return Authenticated(active, (self.launch_cookie(active),))

    def _launch13(self, request: Request, role: str, message_types: Collection[str] | None
                  ) -> _http.Steps[Authenticated | Reply]:
        # A route's declared types are exactly what it takes: a route declared for 1.1's
        # ContentItemSelectionRequest takes no 1.3 message, rather than 1.3's default list.
        wanted = self.settings.lti13_message_types if message_types is None \
            else frozenset(message_types)
        launched = yield from self._lti13().launch_steps(request, wanted)
        if not isinstance(launched, Launched):
            return launched
        verified = launched.verified
        if launched.handoff_to is not None:
            return self._hand_off(launched, launched.handoff_to)
        if role != ANY:
            self._check_role(launched.roles, role)  # before anything is stored
        active = self._launches().start_lti13(verified)
        log.info("LTI 1.3 launch accepted: issuer=%s client=%s deployment=%s user=%s",
                 verified.registration.issuer, verified.registration.client_id,
                 verified.deployment_id, verified.claims.get("sub"))
        return Authenticated(active, (self.launch_cookie(active), launched.clear_state_cookie))

    # -- one redirect URI: the launch verified there, handed to its target page -----------
    def _hand_off(self, launched: Launched, target: str) -> Reply:
        """Store the launch verified at the redirect URI (its nonce claimed now) and send
        the browser to its target page, which takes it as its new launch: the role and
        message types are that page's to check."""
        launches = self._launches()
        active = launches.start_lti13(launched.verified)
        parts = urlsplit(target)
        query = urlencode([*parse_qsl(parts.query, keep_blank_values=True),
                           (HANDOFF_PARAM, launches.handoff(active))])
        log.info("LTI 1.3 launch accepted at the redirect URI, handed to %s: issuer=%s "
                 "client=%s user=%s", parts.path, launched.verified.registration.issuer,
                 launched.verified.registration.client_id, launched.verified.claims.get("sub"))
        return Reply.redirect(urlunsplit(parts._replace(query=query)), cookies=(
            self.launch_cookie(active), launched.clear_state_cookie))

    def _take_handoff(self, handoff: str, role: str,
                      message_types: Collection[str] | None) -> Authenticated:
        active = self._launches().take_handoff(handoff)
        launch = active.launch
        wanted = self.settings.lti13_message_types if message_types is None \
            else frozenset(message_types)
        if launch.message_type not in wanted:
            raise LTIMalformedRequest(f"This page does not take {launch.message_type!r} "
                                      "messages.", reason="wrong_message_type")
        if role != ANY:
            self._check_role(launch.roles, role)
        return Authenticated(active, (self.launch_cookie(active),))

    def _check_role(self, roles: Roles, role: str) -> None:
        if not self.role_groups.check(roles, role):
            raise LTIRoleException()


def is_lti13_launch(request: Request) -> bool:
    return request.method == "POST" and request.field("id_token") is not None


def looks_like_launch(request: Request) -> bool:
    """Would PyLTI's ``request='any'`` treat this request as a new launch?"""
    if (request.header("Authorization") or "")[:6].lower() == "oauth ":
        return True
    if request.arg("oauth_signature") is not None or \
            request.arg("lti_message_type") is not None:
        return True
    return request.method == "POST" and (request.field("oauth_signature") is not None or
                                         request.field("lti_message_type") is not None)
