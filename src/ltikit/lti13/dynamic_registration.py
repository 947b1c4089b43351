"""LTI Dynamic Registration 1.0, the tool's side: a platform installs the tool from one URL.

The flow (1EdTech LTI Dynamic Registration 1.0, https://www.imsglobal.org/spec/lti-dr/v1p0;
Canvas's guide "Registering an LTI Tool", doc/api/registration.md; Moodle's
``mod/lti/openid-configuration.php`` and ``openid-registration.php``):

1. An administrator pastes the tool's registration URL into the platform, which opens it
   (Canvas: in an iframe; Moodle: in a panel) with ``openid_configuration`` (a URL) and
   ``registration_token``.
2. :meth:`RegistrationFlow.start` checks that the tool takes registrations (off by
   default; ``open``, or ``links``: only through a single-use link from
   :class:`RegistrationLinks`), fetches the platform's configuration and checks it (see
   :func:`read_platform_configuration`), and answers a page that shows the administrator
   what will be registered, with one button.
3. :meth:`RegistrationFlow.confirm` POSTs the client registration to the platform's
   ``registration_endpoint`` (Bearer registration token), stores the returned client id
   (and deployment id, when the platform gives one) as a registration, and answers the
   page that posts ``{subject: "org.imsglobal.lti.close"}`` to the platform's window.

Every outbound call has a total deadline, a size limit, follows no redirect and, for a
tool open to anyone, reaches no internal address (a registration URL must not let a
stranger make the tool call its own network).  Refusals raise
:class:`~ltikit.errors.RegistrationError` with a status and a reason; no message or log
line holds the registration token.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine, insert, select, update

from .. import _http
from ..errors import LTIException, RegistrationError
from ..http import Reply, Request
from ..pages import refusal_page
from ..storage import tables
from ..urls import is_loopback, origin, secure_origin
from .html_pages import json_for_html, scripted_page
from .registrations import ALLOW_LIST, CANVAS_ENVIRONMENTS, RECORD_NEW, Registrations

__all__ = [
    "CLOSE_MESSAGE", "LINKS", "OFF", "OPEN", "Message", "PlatformConfiguration",
    "Registered", "RegistrationFlow", "RegistrationLinks", "ToolConfiguration",
    "read_platform_configuration", "registration_url",
]

log = logging.getLogger("ltikit")

OFF, OPEN, LINKS = "off", "open", "links"
POLICIES = (OFF, OPEN, LINKS)
CLOSE_MESSAGE = "org.imsglobal.lti.close"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
CANVAS = "https://canvas.instructure.com/lti/"
DEFAULT_TIMEOUT = (3.0, 10.0)
MAX_BYTES = 1024 * 1024  # Canvas's configuration lists every variable: about 20 kB
CONFIRM_SECONDS = 30 * 60  # the administrator reads the page, then confirms
_SALT = "ltikit.lti13.registration"


# -- what the tool registers ----------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    """An LTI message the tool takes (``messages`` of the LTI tool configuration).

    URLs may be paths of the tool (``/deep-link``), made absolute with the tool's public
    URL.  ``placements`` are the platform's names (Canvas: ``course_navigation``,
    ``link_selection``...); those a platform does not list for the message type are left
    out.  ``extensions`` are added as they are (Canvas's
    ``https://canvas.instructure.com/lti/visibility``, say)."""

    type: str
    target_link_uri: str | None = None
    label: str | None = None
    placements: tuple[str, ...] = ()
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    roles: tuple[str, ...] = ()
    icon_uri: str | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolConfiguration:
    """What the tool asks a platform to register (the app's answer to a platform's
    configuration, see :class:`RegistrationFlow`).

    The OIDC login URL, the JWKS URL and the redirect URI are ltikit's own
    (``LTIKIT_LTI13_LOGIN_PATH``, ``LTIKIT_LTI13_JWKS_PATH``,
    ``LTIKIT_LTI13_REDIRECT_URI``); ``redirect_uris`` adds others.  ``scopes`` asked for
    are limited to those the platform supports; ``canvas_privacy_level`` (``public``,
    ``name_only``, ``email_only``, ``anonymous``) is sent to Canvas, which otherwise
    registers the tool anonymous."""

    name: str
    target_link_uri: str = "/"
    messages: tuple[Message, ...] = ()
    scopes: tuple[str, ...] = ()
    claims: tuple[str, ...] = ("iss", "sub", "name", "given_name", "family_name", "email")
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    logo_uri: str | None = None
    redirect_uris: tuple[str, ...] = ()
    canvas_privacy_level: str | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlatformConfiguration:
    """A platform's OpenID configuration, checked (:func:`read_platform_configuration`).

    ``messages_supported`` maps each message type to the placements the platform lists
    for it (none: it named no placements).  ``name`` is what to call the platform: Canvas's
    account name, else its product and host."""

    url: str
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    scopes_supported: tuple[str, ...] | None
    claims_supported: tuple[str, ...] | None
    product_family_code: str
    version: str
    messages_supported: Mapping[str, tuple[str, ...]]
    name: str

    @property
    def is_canvas(self) -> bool:
        return self.product_family_code == "canvas"

    @property
    def is_moodle(self) -> bool:
        return self.product_family_code == "moodle"

    @property
    def origin(self) -> str:
        """The origin the configuration came from: the platform's web pages (where the
        administrator is) and its registration endpoint."""
        return str(origin(self.url))

    def supports(self, message_type: str) -> bool:
        return not self.messages_supported or message_type in self.messages_supported

    def to_json(self) -> dict[str, Any]:
        values = dict(vars(self))
        values["messages_supported"] = {k: list(v) for k, v in self.messages_supported.items()}
        return values

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlatformConfiguration:
        values = dict(data)
        for name in ("scopes_supported", "claims_supported"):
            if values[name] is not None:
                values[name] = tuple(values[name])
        values["messages_supported"] = {k: tuple(v)
                                        for k, v in values["messages_supported"].items()}
        return cls(**values)


def _refuse(message: str, reason: str, status: int = 400, **extra: Any) -> RegistrationError:
    return RegistrationError(message, reason=reason, status=status, **extra)


def _string(data: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = data.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if required:
        raise _refuse(f"The platform's OpenID configuration has no {name}.",
                      "bad_openid_configuration")
    return ""


def _strings(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(v for v in value if isinstance(v, str))


def _under_issuer(url: str, issuer: str) -> bool:
    """Is ``url`` the issuer's own (same origin, path under the issuer's path)?  The
    specification's check: the configuration is published by the issuer."""
    found, expected = origin(url), origin(issuer)
    if found is None or found != expected:
        return False
    base = urlsplit(issuer).path.rstrip("/")
    path = urlsplit(url).path
    return not base or path == base or path.startswith(base + "/")


def read_platform_configuration(data: Any, url: str, *,
                                development: bool = False) -> PlatformConfiguration:
    """Check a platform's OpenID configuration fetched from ``url``.

    * The issuer publishes it: ``url`` is on the issuer's origin, under the issuer's path
      (Moodle's issuer is its wwwroot, which may have a path).  Canvas hosted by
      Instructure is the one exception the platforms force: its issuer is
      ``https://canvas.instructure.com`` (or ``.beta``, ``.test``) while the configuration
      is on the school's domain.  There the keys that sign launches are what must be
      Instructure's: the authorization and JWKS endpoints must be on Instructure's SSO
      host (``sso.canvaslms.com``), so a configuration elsewhere cannot bring its own
      keys for Canvas's issuer.  In ``development`` (a tool on this machine) they may be
      on the configuration's own loopback origin instead (``ltikit platform``).
    * Every endpoint is https (http only to this machine in development), and the
      registration endpoint is on the configuration's origin: the registration token goes
      nowhere else.
    """
    if not isinstance(data, Mapping):
        raise _refuse("The platform's OpenID configuration is not a JSON object.",
                      "bad_openid_configuration")
    issuer = _string(data, "issuer")
    endpoints = {name: _string(data, name) for name in (
        "authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint")}
    for name, value in (("issuer", issuer), *endpoints.items()):
        found = secure_origin(value) if development else origin(value)
        if found is None or (not development and found.scheme != "https"):
            raise _refuse(f"The platform's {name} ({value[:200]}) is not an https URL.",
                          "insecure_openid_configuration")
    here = origin(url)
    canvas_sso = next((sso for canvas_issuer, sso in CANVAS_ENVIRONMENTS.values()
                       if canvas_issuer == issuer.rstrip("/")), None)
    if canvas_sso is not None:
        allowed = {origin(canvas_sso)}
        if development and here is not None and is_loopback(here.host):
            allowed.add(here)
        for name in ("authorization_endpoint", "jwks_uri"):
            if origin(endpoints[name]) not in allowed:
                raise _refuse(
                    f"The configuration at {url[:200]} names Canvas's issuer {issuer} but its "
                    f"{name} is not on Instructure's {canvas_sso}.",
                    "foreign_openid_configuration")
    elif not _under_issuer(url, issuer):
        raise _refuse(f"The configuration at {url[:200]} is not published by its issuer "
                      f"{issuer[:200]} (it must be on the issuer's origin, under its path).",
                      "foreign_openid_configuration")
    if origin(endpoints["registration_endpoint"]) != here:
        raise _refuse("The platform's registration endpoint is not on the origin of its "
                      "configuration; ltikit sends the registration token nowhere else.",
                      "foreign_openid_configuration")
    lti = data.get(PLATFORM_CONFIGURATION)
    if not isinstance(lti, Mapping):
        raise _refuse("The OpenID configuration has no LTI platform configuration "
                      f"({PLATFORM_CONFIGURATION}): is this an LTI platform?",
                      "bad_openid_configuration")
    family = str(lti.get("product_family_code") or "").strip()
    messages: dict[str, tuple[str, ...]] = {}
    for entry in lti.get("messages_supported") or []:
        # Canvas and the specification: objects {type, placements}; Moodle: bare types
        # (and its placements, "AddContentMenu", beside them).
        if isinstance(entry, str):
            messages.setdefault(entry, ())
        elif isinstance(entry, Mapping) and isinstance(entry.get("type"), str):
            messages[entry["type"]] = _strings(entry.get("placements")) or ()
    host = urlsplit(url).hostname or ""
    account = lti.get(CANVAS + "account_name")
    name = (f"Canvas ({account}, {host})" if family == "canvas" and isinstance(account, str)
            and account.strip() else f"{family.capitalize() or 'LTI platform'} ({host})")
    return PlatformConfiguration(
        url=url, issuer=issuer, **endpoints,
        scopes_supported=_strings(data.get("scopes_supported")),
        claims_supported=_strings(data.get("claims_supported")),
        product_family_code=family, version=str(lti.get("version") or ""),
        messages_supported=messages, name=name[:200])


# -- single-use registration links ----------------------------------------------------------

def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class RegistrationLinks:
    """Single-use, expiring registration links (``LTIKIT_LTI13_REGISTRATION = "links"``).

    A link is the registration URL followed by ``/<secret>``: a path segment, which every
    platform keeps when it adds its own query parameters.  Only the secret's SHA-256 is
    stored.  A link is *claimed* when a registration through it starts talking to the
    platform (so two tabs cannot both use it), *used* when the registration succeeded, and
    given back when it failed."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def create(self, *, lifetime: float = 7 * 24 * 3600, note: str | None = None) -> str:
        """A new link secret (shown once: only its hash is kept)."""
        if lifetime <= 0:
            raise ValueError("a registration link needs a positive lifetime")
        secret = secrets.token_urlsafe(32)
        now = int(self.clock())
        with self.engine.begin() as conn:
            conn.execute(insert(tables.registration_links).values(
                secret_hash=_hash(secret), note=(note or None) and note[:255], created_at=now,
                expires_at=now + int(lifetime)))
        return secret

    def check(self, secret: str) -> None:
        """Raise :class:`~ltikit.errors.RegistrationError` (403) unless the link is
        unused and unexpired."""
        t = tables.registration_links
        row = None
        if 16 <= len(secret) <= 128:
            with self.engine.connect() as conn:
                row = conn.execute(select(t.c.expires_at, t.c.used_at).where(
                    t.c.secret_hash == _hash(secret))).first()
        if row is None:
            raise _refuse("This registration link is not valid: ask the tool's "
                          "administrator for a new one.", "registration_link_invalid", 403)
        if row.used_at is not None:
            raise _refuse("This registration link was already used: each link registers "
                          "one platform. Ask the tool's administrator for a new one.",
                          "registration_link_used", 403)
        if row.expires_at <= self.clock():
            raise _refuse("This registration link has expired: ask the tool's "
                          "administrator for a new one.", "registration_link_expired", 403)

    def claim(self, secret: str) -> None:
        """Take the link for one registration (atomic across workers), or raise."""
        t = tables.registration_links
        now = int(self.clock())
        with self.engine.begin() as conn:
            taken = conn.execute(update(t).where(
                t.c.secret_hash == _hash(secret), t.c.used_at.is_(None),
                t.c.expires_at > now).values(used_at=now)).rowcount
        if taken != 1:
            self.check(secret)  # says why
            raise _refuse("This registration link was already used.",
                          "registration_link_used", 403)

    def finish(self, secret: str, platform_id: int) -> None:
        t = tables.registration_links
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.secret_hash == _hash(secret))
                         .values(platform_id=platform_id))

    def give_back(self, secret: str) -> None:
        """A registration through the link failed: it may be tried again."""
        t = tables.registration_links
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.secret_hash == _hash(secret),
                                         t.c.platform_id.is_(None)).values(used_at=None))


# -- the flow -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Registered:
    """A registration made: the stored registration's row id, whether it is new (else an
    earlier registration of this client id was updated), what the platform returned."""

    platform_id: int
    created: bool
    client_id: str
    deployment_id: str | None
    platform: PlatformConfiguration


def _address_policy(policy: str, development: bool) -> Callable[[Any], bool]:
    """Which addresses the registration calls may reach.  Never link-local (cloud metadata
    services live there), multicast or unspecified ones; loopback only for a tool on
    this machine (development, where a platform in a container on a private network is
    fine too); private networks otherwise only through a link (a tool open to anyone
    must not let a stranger probe its network; a university's platform on its intranet
    is registered with a link)."""

    def allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if address.is_link_local or address.is_multicast or address.is_unspecified:
            return False
        if address.is_loopback:
            return development
        if address.is_global:
            return True
        return (development or policy == LINKS) and address.is_private

    return allowed


class RegistrationFlow:
    """Dynamic Registration as decisions on a plain request (see the module docstring).

    ``tool_configuration(platform)`` is the app's: what to register with that platform.
    ``registration_path`` is where the registration URL is served (the confirmation form
    posts back to it); ``login_path``, ``jwks_path`` and ``redirect_uri`` are the tool's
    LTI 1.3 URLs (paths, made absolute with the request's public URL).  ``prepare()`` runs
    before the registration is sent (the Flask adapter makes the tool's first signing
    key there, so the JWKS URL the platform is given serves a key)."""

    def __init__(self, registrations: Registrations, links: RegistrationLinks, *,
                 policy: str, secret_key: str | bytes,
                 tool_configuration: Callable[[PlatformConfiguration], ToolConfiguration] | None,
                 login_path: str, jwks_path: str, redirect_uri: str | None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 session_factory: Callable[[], requests.Session] | None = None,
                 prepare: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if policy not in POLICIES:
            raise ValueError(f"registration policy must be one of {', '.join(POLICIES)}")
        self.registrations = registrations
        self.links = links
        self.policy = policy
        self.tool_configuration = tool_configuration
        self.login_path, self.jwks_path, self.redirect_uri = login_path, jwks_path, redirect_uri
        self.timeout = timeout
        self.clock = clock
        self._prepare = prepare
        self._new_session = session_factory or (lambda: _http.new_session())
        self._serializer = URLSafeTimedSerializer(secret_key, salt=_SALT)

    # -- step 1: the platform opens the registration URL ---------------------------------
    def start(self, request: Request, link: str | None = None) -> Reply:
        """The confirmation page for the registration ``request`` opens."""
        self._allowed(link)
        config_url, token = self._parameters(request)
        development = self._development(request)
        platform = self._fetch_configuration(config_url, token, development)
        tool = self._registration(request, platform)
        signed = self._serializer.dumps({"platform": platform.to_json(),
                                         "token": _hash(token)[:32], "link": link or ""})
        return self._confirmation_page(request, platform, tool, signed, token, config_url)

    # -- step 2: the administrator confirms ----------------------------------------------
    def confirm(self, request: Request, link: str | None = None) -> tuple[Reply, Registered]:
        """Register with the platform; the page that closes the platform's dialog."""
        self._allowed(link)
        token = request.field("registration_token") or ""
        try:
            data = self._serializer.loads(request.field("ltikit_registration") or "",
                                          max_age=CONFIRM_SECONDS)
        except SignatureExpired:
            raise _refuse("This registration page has expired: start the registration again "
                          "from the platform.", "bad_registration_request") from None
        except BadSignature:
            raise _refuse("This registration form was not made by this tool.",
                          "bad_registration_request") from None
        if not isinstance(data, dict) or not hmac.compare_digest(
                str(data.get("token", "")), _hash(token)[:32]) or \
                data.get("link", "") != (link or ""):
            raise _refuse("This registration form does not match its registration.",
                          "bad_registration_request")
        platform = PlatformConfiguration.from_json(data["platform"])
        development = self._development(request)
        body = self._registration(request, platform)
        if self._prepare is not None:
            self._prepare()
        if link:
            self.links.claim(link)
        try:
            answer = self._post_registration(platform, token, body, development)
            registered = self._store(platform, answer)
        except Exception:
            if link:
                self.links.give_back(link)
            raise
        if link:
            self.links.finish(link, registered.platform_id)
        log.info("LTI registration %s: %s, client id %s, deployment %s (platform id %s)",
                 "made" if registered.created else "updated", platform.issuer,
                 registered.client_id, registered.deployment_id, registered.platform_id)
        return self._closing_page(registered, body), registered

    # -- checks ---------------------------------------------------------------------------
    def _allowed(self, link: str | None) -> None:
        if self.policy == OFF:
            raise _refuse("This tool does not accept registrations. Its administrator can "
                          "turn them on (LTIKIT_LTI13_REGISTRATION: open or links), or "
                          "register this platform by hand.", "registration_disabled", 403)
        if self.policy == LINKS:
            if not link:
                raise _refuse("This tool registers platforms only through a single-use "
                              "registration link from its administrator.",
                              "registration_link_required", 403)
            self.links.check(link)
        if self.tool_configuration is None:
            raise RegistrationError("Dynamic Registration is on, but the app gave no tool "
                                    "configuration (LTIKit(app, tool_configuration=...)).",
                                    reason="configuration", status=500)

    @staticmethod
    def _parameters(request: Request) -> tuple[str, str]:
        config_url = (request.value("openid_configuration") or "").strip()
        token = request.value("registration_token") or ""
        if not config_url:
            raise _refuse("This is the tool's registration URL: paste it into the platform "
                          "(Canvas: Developer Keys > + LTI Registration; Moodle: Manage "
                          "tools > Tool URL > Add LTI Advantage), which opens it with its "
                          "openid_configuration.", "bad_registration_request")
        if len(token) > 8192 or len(config_url) > 2048:
            raise _refuse("The registration parameters are too long.",
                          "bad_registration_request")
        return config_url, token

    @staticmethod
    def _development(request: Request) -> bool:
        """A tool served on this machine (loopback) is in development: it may register a
        platform on this machine over http."""
        found = origin(request.url)
        return found is not None and is_loopback(found.host)

    def _fetch_configuration(self, url: str, token: str,
                             development: bool) -> PlatformConfiguration:
        found = origin(url)
        if found is None:
            raise _refuse("openid_configuration is not an http(s) URL.",
                          "bad_registration_request")
        if found.scheme != "https" and not (development and is_loopback(found.host)):
            raise _refuse(f"The platform's configuration URL ({url[:200]}) is not https; "
                          "ltikit fetches configurations over https only (http only on this "
                          "machine, in development).", "insecure_openid_configuration")
        headers = {"Accept": "application/json"}
        if token:  # Canvas requires it; the specification allows it
            headers["Authorization"] = f"Bearer {token}"
        response, body = self._call("GET", url, development, headers=headers,
                                    what="configuration")
        if 300 <= response.status_code < 400:
            raise _refuse(f"The configuration URL answered with a redirect "
                          f"({response.status_code}) to "
                          f"{str(response.headers.get('Location', ''))[:200]}; ltikit follows "
                          "no redirects: the platform must give the configuration's own URL.",
                          "bad_openid_configuration")
        if response.status_code in (401, 403):
            raise _refuse(f"The platform refused to show its configuration "
                          f"({response.status_code}): the registration token was not "
                          "accepted. Start the registration again from the platform.",
                          "registration_token_refused", 401, http_status=response.status_code)
        if response.status_code != 200:
            raise _refuse(f"The platform's configuration URL answered "
                          f"{response.status_code}.", "openid_configuration_unavailable", 502,
                          http_status=response.status_code)
        try:
            data = json.loads(body)
        except ValueError:
            raise _refuse("The platform's configuration is not JSON.",
                          "bad_openid_configuration") from None
        return read_platform_configuration(data, url, development=development)

    def _call(self, method: str, url: str, development: bool, *, what: str,
              **kwargs: Any) -> tuple[requests.Response, bytes]:
        connect, total = self.timeout
        session = self._new_session()
        try:
            return _http.send(session, method, url, connect_timeout=connect,
                              total_timeout=total, max_bytes=MAX_BYTES,
                              allow_address=_address_policy(self.policy, development),
                              **kwargs)
        except _http.AddressRefused as exc:
            raise _refuse(f"The platform's {what} URL is on an address this tool does not "
                          f"call ({exc}).", "insecure_openid_configuration", 403) from None
        except _http.DeadlineExceeded:
            raise _refuse(f"The platform's {what} URL did not answer within {total:g} s.",
                          "openid_configuration_unavailable", 504) from None
        except _http.BodyTooLarge:
            raise _refuse(f"The platform's {what} answer is larger than {MAX_BYTES} bytes.",
                          "bad_openid_configuration", 502) from None
        except requests.RequestException as exc:
            raise _refuse(f"The platform's {what} URL could not be reached "
                          f"({type(exc).__name__}).", "openid_configuration_unavailable",
                          502) from None
        finally:
            session.close()

    # -- the registration -----------------------------------------------------------------
    def _base(self, request: Request) -> str:
        """The tool's public URL: the request's, without the path under the app (a tool
        mounted under a prefix keeps it)."""
        url = request.url
        if origin(url) is None:
            raise _refuse("The tool's own URL cannot be read.", "bad_registration_request")
        if request.path and request.path != "/" and url.endswith(request.path):
            return url[: -len(request.path)]
        return str(origin(url))

    def _registration(self, request: Request, platform: PlatformConfiguration
                      ) -> dict[str, Any]:
        """The client registration (OpenID Connect Dynamic Client Registration with the
        LTI tool configuration) the tool sends ``platform``."""
        assert self.tool_configuration is not None
        tool = self.tool_configuration(platform)
        base = self._base(request)

        def url(value: str) -> str:
            return base + value if value.startswith("/") else value

        target = url(tool.target_link_uri)
        redirect_uris = list(dict.fromkeys(
            [url(self.redirect_uri)] if self.redirect_uri else
            [target, *(url(m.target_link_uri) for m in tool.messages if m.target_link_uri)]))
        redirect_uris += [url(u) for u in tool.redirect_uris if url(u) not in redirect_uris]
        scopes = [s for s in tool.scopes if platform.scopes_supported is None or
                  s in platform.scopes_supported]
        claims = [c for c in tool.claims if platform.claims_supported is None or
                  c in platform.claims_supported or c in ("iss", "sub")]
        messages = []
        for message in tool.messages:
            if not platform.supports(message.type):
                continue
            entry: dict[str, Any] = {"type": message.type}
            if message.target_link_uri:
                entry["target_link_uri"] = url(message.target_link_uri)
            if message.label:
                entry["label"] = message.label
            known = platform.messages_supported.get(message.type) or ()
            placements = [p for p in message.placements if not known or p in known]
            if placements:
                entry["placements"] = placements
            if message.custom_parameters:
                entry["custom_parameters"] = dict(message.custom_parameters)
            if message.roles:
                entry["roles"] = list(message.roles)
            if message.icon_uri:
                entry["icon_uri"] = url(message.icon_uri)
            entry.update(message.extensions)
            messages.append(entry)
        configuration: dict[str, Any] = {
            "domain": urlsplit(base).netloc, "target_link_uri": target,
            "claims": claims, "messages": messages}
        if tool.custom_parameters:
            configuration["custom_parameters"] = dict(tool.custom_parameters)
        if tool.description:
            configuration["description"] = tool.description
        if platform.is_canvas and tool.canvas_privacy_level:
            configuration[CANVAS + "privacy_level"] = tool.canvas_privacy_level
        configuration.update(tool.extensions)
        body: dict[str, Any] = {
            "application_type": "web", "response_types": ["id_token"],
            "grant_types": ["implicit", "client_credentials"],
            "initiate_login_uri": url(self.login_path), "redirect_uris": redirect_uris,
            "client_name": tool.name, "jwks_uri": url(self.jwks_path),
            "token_endpoint_auth_method": "private_key_jwt", "scope": " ".join(scopes),
            TOOL_CONFIGURATION: configuration}
        if tool.logo_uri:
            body["logo_uri"] = url(tool.logo_uri)
        return body

    def _post_registration(self, platform: PlatformConfiguration, token: str,
                           body: Mapping[str, Any], development: bool) -> Mapping[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response, raw = self._call("POST", platform.registration_endpoint, development,
                                   what="registration", data=json.dumps(body).encode(),
                                   headers=headers)
        status = response.status_code
        excerpt = _excerpt(raw, token)
        if status in (401, 403):
            raise _refuse(f"{platform.name} refused the registration token ({status}"
                          f"{': ' + excerpt if excerpt else ''}). Registration tokens are "
                          "single-use and short-lived: start again from the platform.",
                          "registration_token_refused", 401, http_status=status,
                          body_excerpt=excerpt)
        if status not in (200, 201):
            raise _refuse(f"{platform.name} refused the registration ({status}"
                          f"{': ' + excerpt if excerpt else ''}).", "registration_failed",
                          502, http_status=status, body_excerpt=excerpt)
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        client_id = answer.get("client_id") if isinstance(answer, Mapping) else None
        if isinstance(client_id, int) and not isinstance(client_id, bool):
            client_id = str(client_id)
        if not isinstance(client_id, str) or not client_id.strip() or len(client_id) > 255:
            raise _refuse(f"{platform.name} accepted the registration but returned no "
                          "client_id.", "registration_failed", 502, http_status=status)
        assert isinstance(answer, Mapping)
        return answer

    def _store(self, platform: PlatformConfiguration, answer: Mapping[str, Any]) -> Registered:
        client_id = str(answer["client_id"]).strip()
        configuration = answer.get(TOOL_CONFIGURATION)
        deployment = configuration.get("deployment_id") \
            if isinstance(configuration, Mapping) else None
        if isinstance(deployment, int) and not isinstance(deployment, bool):
            deployment = str(deployment)
        deployment_id = deployment.strip()[:255] if isinstance(deployment, str) and \
            deployment.strip() else None
        existing = self.registrations.get(platform.issuer, client_id, cached=False)
        # Canvas's issuer is shared by every school: only the Canvas the registration came
        # from (an origin it already trusts) may change it.
        if existing is not None and not existing.service_url_allowed(platform.url):
            raise _refuse(f"{platform.issuer} client {client_id} is registered here from "
                          f"another site; {platform.origin} may not change it.",
                          "registration_origin_changed", 403)
        platform_id, created = self.registrations.save(
            name=platform.name, issuer=platform.issuer, client_id=client_id,
            auth_login_url=platform.authorization_endpoint,
            token_url=platform.token_endpoint, jwks_url=platform.jwks_uri,
            # Canvas creates deployments later, as the tool is installed in accounts and
            # courses: it returns none, and each one its launches name is recorded.
            deployment_policy=ALLOW_LIST if deployment_id else RECORD_NEW,
            deployments=(deployment_id,) if deployment_id else (),
            platform_storage=platform.is_canvas, service_origins=(platform.origin,))
        return Registered(platform_id, created, client_id, deployment_id, platform)

    # -- pages ----------------------------------------------------------------------------
    @staticmethod
    def refusal(exc: RegistrationError | LTIException) -> Reply:
        """The page a refused registration answers with, and its log line (an adapter's
        path may hold a link's secret, the query the registration token: neither is
        logged)."""
        log.warning("LTI registration refused: status=%s reason=%s: %s", exc.status,
                    exc.reason, exc.message)
        page = refusal_page(exc, title="The tool could not be registered", hint=(
            "Nothing was registered. Start again from the platform once the cause is "
            "fixed; the tool's administrator finds this refusal in its log."))
        return page._replace(headers=(*page.headers, ("Referrer-Policy", "no-referrer")))

    def _confirmation_page(self, request: Request, platform: PlatformConfiguration,
                           body: Mapping[str, Any], signed: str, token: str,
                           config_url: str) -> Reply:
        configuration = body[TOOL_CONFIGURATION]
        esc = html.escape
        rows = [("Platform", f"{esc(platform.name)}"),
                ("Issuer", f"<code>{esc(platform.issuer)}</code>"),
                ("Tool", esc(body["client_name"])),
                ("Launch URL", f"<code>{esc(configuration['target_link_uri'])}</code>"),
                ("Redirect URIs", "<br>".join(f"<code>{esc(u)}</code>"
                                              for u in body["redirect_uris"])),
                ("Login URL", f"<code>{esc(body['initiate_login_uri'])}</code>"),
                ("Keys (JWKS)", f"<code>{esc(body['jwks_uri'])}</code>")]
        messages = []
        for message in configuration["messages"]:
            text = esc(message["type"])
            if message.get("placements"):
                text += " in " + ", ".join(esc(p) for p in message["placements"])
            if message.get("target_link_uri"):
                text += f" at <code>{esc(message['target_link_uri'])}</code>"
            messages.append(text)
        rows.append(("Messages", "<br>".join(messages) or "resource links"))
        rows.append(("Services (scopes)", "<br>".join(
            f"<code>{esc(s)}</code>" for s in body["scope"].split()) or "none"))
        if CANVAS + "privacy_level" in configuration:
            rows.append(("Privacy level", esc(configuration[CANVAS + "privacy_level"])))
        table = "".join(f"<tr><th style='text-align:left;vertical-align:top;padding:.2rem "
                        f".8rem .2rem 0'>{k}</th><td>{v}</td></tr>" for k, v in rows)
        fields = {"openid_configuration": config_url, "registration_token": token,
                  "ltikit_registration": signed}
        inputs = "".join(f"<input type=hidden name='{esc(k)}' value='{esc(v)}'>"
                         for k, v in fields.items())
        action = esc(urlsplit(request.url).path)
        pending = ("<p>Moodle adds the tool as <em>pending</em>: activate it afterwards in "
                   "Site administration &gt; Plugins &gt; Manage tools.</p>"
                   if platform.is_moodle else "")
        content = (f"<h1 style='font-size:1.4rem'>Register {esc(body['client_name'])} with "
                   f"{esc(platform.name)}?</h1><table>{table}</table>{pending}"
                   f"<form method=post action='{action}'>{inputs}"
                   "<p><button type=submit id=ltikit-register>Register</button></p></form>")
        page = scripted_page("Register this tool", content, "", styled=True,
                             referrer_policy="same-origin")
        return Reply.page(page.body, headers=page.headers)

    def _closing_page(self, registered: Registered, body: Mapping[str, Any]) -> Reply:
        platform = registered.platform
        esc = html.escape
        done = "registered" if registered.created else "updated"
        deployment = (f", deployment <code>{esc(registered.deployment_id)}</code>"
                      if registered.deployment_id else "")
        pending = (" Moodle adds it as pending: activate it in Site administration &gt; "
                   "Plugins &gt; Manage tools." if platform.is_moodle else "")
        content = (f"<h1 style='font-size:1.4rem'>{esc(body['client_name'])} is {done}</h1>"
                   f"<p>{esc(platform.name)}: client id "
                   f"<code>{esc(registered.client_id)}</code>{deployment}.{pending}</p>"
                   "<p>You can close this window.</p>"
                   f"<script type=application/json id=ltikit-close>"
                   f"{json_for_html({'origin': platform.origin})}</script>")
        # The message carries nothing secret, but it goes to the platform's window only:
        # the origin of its configuration, where Canvas's and Moodle's pages are.
        script = ("var o=JSON.parse(document.getElementById('ltikit-close').textContent)"
                  ".origin;var w=window.opener||(window.parent!==window?window.parent:null);"
                  f"if(w){{w.postMessage({{subject:{json.dumps(CLOSE_MESSAGE)}}},o);}}")
        page = scripted_page("Registered", content, script, styled=True)
        return Reply.page(page.body, headers=page.headers)


def _excerpt(raw: bytes, token: str) -> str | None:
    text = raw[:300].decode("utf-8", "replace").strip()
    if token:
        text = text.replace(token, "[registration token]")
    return " ".join(text.split()) or None


def registration_url(base_url: str, path: str, link: str | None = None) -> str:
    """The URL an administrator pastes into the platform (with a link's secret)."""
    url = base_url.rstrip("/") + path
    return f"{url}/{quote(link, safe='')}" if link else url
