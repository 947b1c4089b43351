"""The LTI 1.3 login and launch as decisions on a plain request (no web framework).

:class:`LTI13Flow` makes every security decision of an LTI 1.3 launch; an adapter only
builds the :class:`~ltikit.http.Request` and sends back the :class:`~ltikit.http.Reply`:

* :meth:`LTI13Flow.login` — the OIDC login initiation: the platform is registered, the
  ``target_link_uri`` is on the tool's origin (read as browsers read URLs, or listed in
  ``target_link_uris``), a fresh signed state and nonce, and the browser bound to the login
  by a per-login state cookie.  Its reply is the redirect to the platform's auth URL, or a
  page: the platform-storage page when the platform offers storage
  (:mod:`.platform_storage`), or, for a framed login without it, the cookie check
  (:mod:`.cookie_check`).
* :meth:`LTI13Flow.launch` — the id_token POST: the state is ours and unexpired, the
  browser is the one that logged in (its state cookie, or the secret kept in the
  platform's storage, posted by the tool's own check page), the id_token verified
  (:func:`.verify_id_token`), the nonce and registration those of the login, and the target
  link URI the one the login asked for.  It answers :class:`Launched`, or a
  :class:`~ltikit.http.Reply` (the storage check page) when the launch continues in the
  browser; refusals raise :class:`~ltikit.errors.LTIException` subclasses.

One redirect URI: platforms such as Moodle, Canvas and D2L send the id_token only to a
redirect URI registered for the tool, while a deep-linked item may live at any page of it.
With ``redirect_uri`` set, every login names that URI; a launch arriving there whose
(signed) ``target_link_uri`` is another page of the tool is verified there and answered
:class:`Launched` with ``handoff_to`` set: :mod:`ltikit.flow` stores it and sends the
browser on to the target with a single-use hand-off.  A target on another origin, not
listed in ``target_link_uris``, is refused.

The nonce is claimed when the launch is stored (:mod:`ltikit.launches`), not here.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Collection
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

from .. import _http
from ..cookies import CookiePolicy
from ..errors import (
    LTIAuthenticationError,
    LTIException,
    LTIMalformedRequest,
    LTIStateCookieMissing,
)
from ..http import Reply, Request
from ..roles import Roles
from ..urls import same_origin
from .cookie_check import COOKIE as CHECK_COOKIE
from .cookie_check import COOKIE_MAX_AGE as CHECK_COOKIE_MAX_AGE
from .cookie_check import cookie_check_page, framed, relaunch_url
from .id_token import (
    MESSAGE_TYPES,
    RESOURCE_LINK_REQUEST,
    VerifiedIdToken,
    verify_id_token_steps,
)
from .jwks import JWKSCache
from .oidc import (
    OIDCStates,
    PendingLogin,
    auth_request_url,
    parse_login,
    registration_for,
    relaunch_params,
    state_cookie,
)
from .platform_storage import (
    STORAGE_FIELD,
    check_page,
    login_page,
    platform_origin,
    posted_by_check_page,
)
from .registrations import Registrations

__all__ = ["STATE_COOKIE", "LTI13Flow", "Launched"]

log = logging.getLogger("ltikit")

STATE_COOKIE = "ltikit_lti13_state"
"""The state cookies' name prefix (one cookie per login: ``ltikit_lti13_state_<digest>``)."""


class Launched(NamedTuple):
    """A verified LTI 1.3 launch, not yet stored: the id_token, the roles it gives, and
    the ``Set-Cookie`` value that deletes the login's state cookie.  (A named tuple, as
    :class:`~ltikit.http.Reply`: cheaper to make than a frozen dataclass.)"""

    verified: VerifiedIdToken
    roles: Roles
    clear_state_cookie: str
    handoff_to: str | None = None
    """The page to hand the launch off to (its ``target_link_uri``), when it arrived at
    the tool's one redirect URI and is meant for another page; else None."""


class LTI13Flow:
    """The LTI 1.3 login and launch of one tool (see the module docstring)."""

    def __init__(self, registrations: Registrations, jwks: JWKSCache, states: OIDCStates,
                 cookies: CookiePolicy, *, target_link_uris: Collection[str] = (),
                 leeway: int = 5, redirect_uri: str | None = None) -> None:
        self.registrations, self.jwks, self.states = registrations, jwks, states
        self.cookies = cookies
        self.target_link_uris = frozenset(target_link_uris)
        self.leeway = leeway
        self.redirect_uri = redirect_uri
        """The tool's one redirect URI: a path of the tool (``/launch``) or a full URL;
        None: each login's ``target_link_uri``."""

    def redirect_uri_for(self, url: str) -> str | None:
        """The full redirect URI, for a request to ``url`` (a page of the tool)."""
        configured = self.redirect_uri
        if configured is None or not configured.startswith("/"):
            return configured
        # The scheme and host as this request's public URL spells them (what the
        # platform will post to, and what a launch arriving there is compared with).
        tool = urlsplit(url)
        return f"{tool.scheme}://{tool.netloc}{configured}"

    def _is_tool_page(self, url: object, tool_url: str) -> bool:
        return same_origin(url, tool_url) or url in self.target_link_uris

    # -- the login ------------------------------------------------------------------------
    def login(self, request: Request) -> Reply:
        """Answer a login initiation (``request.url`` is the login URL)."""
        login = parse_login(request.values())
        registration = registration_for(self.registrations, login)
        if not self._is_tool_page(login.target_link_uri, request.url):
            raise LTIException("The login's target_link_uri is not one of this tool's.",
                               reason="foreign_target_link_uri")
        new = self.states.create(registration, login)
        url = auth_request_url(registration, login, state=new.state, nonce=new.nonce,
                               redirect_uri=self.redirect_uri_for(request.url)
                               or login.target_link_uri)
        # The cookie stays the first choice where the browser keeps it: it is checked by
        # the server alone.  One cookie per login, so launches that start at once (two
        # tabs, two tools embedded in one page) do not overwrite each other's.
        cookies = [self.cookies.header(*state_cookie(new.state, STATE_COOKIE),
                                       self.states.max_age)]
        if new.storage_secret and login.storage_target:
            page = login_page(auth_url=url, origin=platform_origin(registration.auth_login_url),
                              target=login.storage_target, key=new.storage_key or "",
                              secret=new.storage_secret)
            reply = Reply.page(page.body, headers=page.headers, cookies=cookies)
        elif framed(request.headers):
            page = cookie_check_page(auth_url=url, relaunch_url=relaunch_url(
                request.url, relaunch_params(registration, login)))
            cookies.append(self.cookies.header(CHECK_COOKIE, "1", CHECK_COOKIE_MAX_AGE,
                                               http_only=False))
            reply = Reply.page(page.body, headers=page.headers, cookies=cookies)
        else:
            reply = Reply.redirect(url, cookies=cookies)
        log.info("LTI 1.3 login: issuer=%s client=%s storage=%s", registration.issuer,
                 registration.client_id, login.storage_target if new.storage_secret else "-")
        return reply

    # -- the launch -----------------------------------------------------------------------
    def launch(self, request: Request, message_types: Collection[str]) -> Launched | Reply:
        """Verify an id_token POST (``request.url``: the target link URI it came to)."""
        return _http.run(self.launch_steps(request, message_types))

    def launch_steps(self, request: Request, message_types: Collection[str]
                     ) -> _http.Steps[Launched | Reply]:
        """:meth:`launch` as steps (:mod:`ltikit._http`)."""
        state = request.field("state") or ""
        pending = self.states.read(state)
        if pending is None:
            raise LTIAuthenticationError("This launch's login is unknown or expired; open the "
                                         "tool again from the course.", reason="unknown_state")
        cookie_name, expected = state_cookie(state, STATE_COOKIE)
        cookie = request.cookies.get(cookie_name)
        if cookie is not None:
            if not hmac.compare_digest(cookie.encode(), expected.encode()):
                raise LTIAuthenticationError("This launch does not belong to the login this "
                                             "browser started.", reason="state_mismatch")
        elif pending.storage_digest and pending.storage_target and pending.storage_key:
            secret = request.field(STORAGE_FIELD)
            if secret is None:
                return self._check_page(request, pending)
            if not posted_by_check_page(request.headers, request.url):
                raise LTIAuthenticationError("This launch was sent from another site, not from "
                                             "the tool's own page.", reason="storage_cross_site")
            if not pending.storage_secret_matches(secret):
                raise LTIAuthenticationError("The course page did not confirm that this "
                                             "launch started in it.", reason="storage_mismatch")
        else:
            # No relaunch link: the platform has used up this login's lti_message_hint.
            raise LTIStateCookieMissing(
                "Your browser did not keep the login cookie of this launch (cookies from "
                "the tool are blocked inside the course page). Open the activity from the "
                "course again in a new window (or ask for the tool to be set to open in a "
                "new window).")
        # At the one redirect URI, the launch may be for another page, which decides which
        # message types it takes once the launch is handed to it.
        at_redirect_uri = self.redirect_uri is not None and \
            request.url == self.redirect_uri_for(request.url)
        wanted = frozenset(message_types)
        verified = yield from verify_id_token_steps(
            request.field("id_token") or "", self.registrations, self.jwks,
            message_types=MESSAGE_TYPES if at_redirect_uri else wanted, leeway=self.leeway)
        if verified.registration.id != pending.platform_id or not hmac.compare_digest(
                str(verified.nonce).encode(), pending.nonce.encode()):
            raise LTIAuthenticationError("The id_token was not issued for this login.",
                                         reason="nonce_mismatch")
        claims = verified.claims
        target = claims.get("https://purl.imsglobal.org/spec/lti/claim/target_link_uri")
        if verified.message_type == RESOURCE_LINK_REQUEST and target != pending.target_link_uri:
            raise LTIAuthenticationError("The launch's target_link_uri is not the one the login "
                                         "asked for.", reason="target_link_uri_mismatch")
        roles = Roles.parse(claims.get("https://purl.imsglobal.org/spec/lti/claim/roles") or [])
        handoff_to = None
        if at_redirect_uri:
            here = request.url + (f"?{urlencode(request.query)}" if request.query else "")
            if target != here:
                if not isinstance(target, str) or not self._is_tool_page(target, request.url):
                    raise LTIAuthenticationError(
                        "The launch's target_link_uri is not a page of this tool.",
                        reason="foreign_target_link_uri")
                handoff_to = target
            elif verified.message_type not in wanted:
                raise LTIMalformedRequest(f"This page does not take "
                                          f"{verified.message_type!r} messages.",
                                          reason="wrong_message_type")
        return Launched(verified, roles, self.cookies.deletion(cookie_name), handoff_to)

    def _check_page(self, request: Request, pending: PendingLogin) -> Reply:
        registration = self.registrations.by_id(pending.platform_id)
        if registration is None:
            raise LTIAuthenticationError("This platform is no longer registered with the tool.",
                                         reason="unknown_platform")
        page = check_page(
            action=request.url,
            fields={"id_token": request.field("id_token") or "",
                    "state": request.field("state") or ""},
            origin=platform_origin(registration.auth_login_url),
            target=pending.storage_target or "_parent", key=pending.storage_key or "")
        log.info("LTI 1.3 launch without its state cookie: asking the platform's storage "
                 "(issuer=%s)", registration.issuer)
        return Reply.page(page.body, headers=page.headers)
