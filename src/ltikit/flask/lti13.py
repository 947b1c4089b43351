"""LTI 1.3 in the Flask adapter: the OIDC login route and the id_token launch.

``LTIKit(app)`` registers the login URL (``LTIKIT_LTI13_LOGIN_PATH``, default
``/lti13/login``); the launch arrives at the ``target_link_uri``, a view protected by the
same ``@lti`` decorator as LTI 1.1 launches, which recognises the ``id_token``.

The browser is bound to its login by a short-lived ``SameSite=None; Secure; Partitioned``
cookie (one per login) holding the state's digest.  When the browser did not send it back
(cookies blocked inside the iframe), the launch is checked through the platform's storage
when the login offered it (:mod:`ltikit.lti13.platform_storage`).  Without storage, a
framed login first checks that the browser keeps the tool's cookies and otherwise offers
the same, still unused, login in a new window (:mod:`ltikit.lti13.cookie_check`); a launch
that still arrives without its cookie is refused with a page saying what to do (its
``lti_message_hint`` was used up at the platform, so no link could replay it).
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import current_app, request
from werkzeug.wrappers import Request, Response

from .. import _http
from ..errors import (
    LTIAuthenticationError,
    LTIConfigurationError,
    LTIException,
    LTIStateCookieMissing,
)
from ..lti13 import JWKSCache, Registrations, verify_id_token
from ..lti13.cookie_check import COOKIE as CHECK_COOKIE
from ..lti13.cookie_check import COOKIE_MAX_AGE as CHECK_COOKIE_MAX_AGE
from ..lti13.cookie_check import cookie_check_page, framed, relaunch_url
from ..lti13.id_token import RESOURCE_LINK_REQUEST
from ..lti13.jwks import DEFAULT_TIMEOUT as JWKS_TIMEOUT
from ..lti13.oidc import (
    OIDCStates,
    PendingLogin,
    auth_request_url,
    parse_login,
    registration_for,
    relaunch_params,
    state_cookie,
)
from ..lti13.platform_storage import (
    STORAGE_FIELD,
    check_page,
    login_page,
    platform_origin,
    posted_by_check_page,
)
from ..lti13.services import DEFAULT_TIMEOUT as SERVICE_TIMEOUT
from ..roles import Roles
from ..urls import same_origin
from . import StorageCheckRequired

if TYPE_CHECKING:
    from . import _AppState

log = logging.getLogger("ltikit")

STATE_COOKIE = "ltikit_lti13_state"


class LTI13Support:
    def __init__(self, state: _AppState) -> None:
        engine = state.storage.engine
        self.state = state
        self.registrations = Registrations(engine)
        config = state.app.config
        self.jwks = JWKSCache(engine, refetch_interval=int(
            config["LTIKIT_LTI13_JWKS_REFETCH_INTERVAL"]), timeout=_http.timeouts(
            config.get("LTIKIT_LTI13_JWKS_TIMEOUT"), JWKS_TIMEOUT))
        self.service_timeout = _http.timeouts(config.get("LTIKIT_LTI13_SERVICE_TIMEOUT"),
                                              SERVICE_TIMEOUT)
        if not state.app.secret_key:
            raise LTIConfigurationError("LTI 1.3 logins need a secret key (Flask: set "
                                        "SECRET_KEY).", reason="no_secret_key")
        self.states = OIDCStates(state.app.secret_key)
        self._tool_keys = None
        self._service_tokens = None

    def tool_keys(self):
        """The tool's signing keys (needs LTIKIT_ENCRYPTION_KEYS: private keys are encrypted)."""
        if self._tool_keys is None:
            from ..crypto import SecretBox
            from ..lti13.tool_keys import ToolKeys

            keys = self.state.app.config.get("LTIKIT_ENCRYPTION_KEYS")
            self._tool_keys = ToolKeys(self.state.storage.engine, SecretBox(keys or []))
        return self._tool_keys

    def registration_of(self, launch):
        """The registration a stored LTI 1.3 launch came through."""
        registration = self.registrations.get(str(launch.claims.get("iss")),
                                              launch.consumer_key or "")
        if registration is None:
            raise LTIException("The platform of this launch is no longer registered.",
                               reason="unknown_platform")
        return registration

    def service_client(self, launch):
        """An authenticated client for the services of ``launch``'s platform."""
        from ..lti13.services import ServiceClient, ServiceTokens

        registration = self.registration_of(launch)
        if self._service_tokens is None:
            keys = self.tool_keys()
            connect, total = self.service_timeout
            self._service_tokens = ServiceTokens(self.state.storage.engine, keys, keys.box,
                                                 timeout=(connect, min(total, 8.0)))
        return ServiceClient(self._service_tokens, registration, timeout=self.service_timeout)

    # -- the login ------------------------------------------------------------------------
    def login(self, req: Request) -> Response:
        login = parse_login(req.values)
        registration = registration_for(self.registrations, login)
        public = self.state.public_url(req)
        allowed = self.state.app.config["LTIKIT_LTI13_TARGET_LINK_URIS"]
        if not (same_origin(login.target_link_uri, public) or
                login.target_link_uri in allowed):
            raise LTIException("The login's target_link_uri is not one of this tool's.",
                               reason="foreign_target_link_uri")
        new = self.states.create(registration, login)
        url = auth_request_url(registration, login, state=new.state, nonce=new.nonce,
                               redirect_uri=login.target_link_uri)
        if new.storage_secret and login.storage_target:
            page = login_page(auth_url=url, origin=platform_origin(registration.auth_login_url),
                              target=login.storage_target, key=new.storage_key or "",
                              secret=new.storage_secret)
            response = Response(page.body, mimetype="text/html", headers=page.headers)
        elif framed(req.headers):
            page = cookie_check_page(auth_url=url, relaunch_url=relaunch_url(
                self._login_url(req), relaunch_params(registration, login)))
            response = Response(page.body, mimetype="text/html", headers=page.headers)
            response.headers.add("Set-Cookie", self.state.cookie_header(
                CHECK_COOKIE, "1", CHECK_COOKIE_MAX_AGE, http_only=False))
        else:
            response = Response(status=302, headers={"Location": url,
                                                     "Cache-Control": "no-store"})
        # The cookie stays the first choice where the browser keeps it: it is checked by
        # the server alone.  One cookie per login, so launches that start at once (two
        # tabs, two tools embedded in one page) do not overwrite each other's.
        response.headers.add("Set-Cookie", self.state.cookie_header(
            *state_cookie(new.state, STATE_COOKIE), self.states.max_age))
        log.info("LTI 1.3 login: issuer=%s client=%s storage=%s", registration.issuer,
                 registration.client_id, login.storage_target if new.storage_secret else "-")
        return response

    # -- the launch -----------------------------------------------------------------------
    def verify_launch(self, req: Request, message_types: frozenset[str]):
        """Verify the launch; return ``(verified id_token, roles, state cookie name)``.

        Raises :class:`StorageCheckRequired` when the browser did not send the state cookie
        back but the login left a secret in the platform's storage: the page it carries
        fetches the secret and posts the launch again.
        """
        state = req.form.get("state", "")
        pending = self.states.take(state)
        if pending is None:
            raise LTIAuthenticationError("This launch's login is unknown or expired; open the "
                                         "tool again from the course.", reason="unknown_state")
        cookie_name, expected = state_cookie(state, STATE_COOKIE)
        cookie = req.cookies.get(cookie_name)
        if cookie is not None:
            if not hmac.compare_digest(cookie.encode(), expected.encode()):
                raise LTIAuthenticationError("This launch does not belong to the login this "
                                             "browser started.", reason="state_mismatch")
        elif pending.storage_digest and pending.storage_target and pending.storage_key:
            secret = req.form.get(STORAGE_FIELD)
            if secret is None:
                raise StorageCheckRequired(self._check_page(req, pending))
            if not posted_by_check_page(req.headers, self.state.public_url(req)):
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
        verified = verify_id_token(req.form.get("id_token", ""), self.registrations,
                                   self.jwks, message_types=message_types,
                                   leeway=int(self.state.app.config["LTIKIT_LTI13_LEEWAY"]))
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
        return verified, roles, cookie_name

    def _check_page(self, req: Request, pending: PendingLogin) -> Response:
        registration = self.registrations.by_id(pending.platform_id)
        if registration is None:
            raise LTIAuthenticationError("This platform is no longer registered with the tool.",
                                         reason="unknown_platform")
        page = check_page(
            action=self.state.public_url(req),
            fields={"id_token": req.form.get("id_token", ""), "state": req.form["state"]},
            origin=platform_origin(registration.auth_login_url),
            target=pending.storage_target or "_parent", key=pending.storage_key or "")
        log.info("LTI 1.3 launch without its state cookie: asking the platform's storage "
                 "(issuer=%s)", registration.issuer)
        return Response(page.body, mimetype="text/html", headers=page.headers)

    def _login_url(self, req: Request) -> str:
        parts = urlsplit(self.state.public_url(req))
        path = req.script_root + self.state.app.config["LTIKIT_LTI13_LOGIN_PATH"]
        return f"{parts.scheme}://{parts.netloc}{path}"




def jwks_view() -> Response:
    """The tool's public keys (register this URL on the platform as the tool's JWKS URL)."""
    from flask import jsonify

    from . import LTIKit

    state = LTIKit.state(current_app)
    response = jsonify(state.lti13.tool_keys().jwks())
    response.headers["Cache-Control"] = "max-age=3600"
    return response


def login_view() -> Response:
    from . import LTIKit, error_page

    state = LTIKit.state(current_app)
    try:
        state.bound(request)
        return state.lti13.login(request)
    except LTIException as exc:
        log.warning("LTI 1.3 login refused: status=%s reason=%s: %s", exc.status, exc.reason,
                    exc.message)
        return error_page(exc)
