"""ltikit's settings: read once from a mapping (Flask's ``app.config``), checked, frozen.

Every ``LTIKIT_*`` key and its default is in :data:`DEFAULTS`.  :meth:`Settings.load`
parses and validates them when the extension starts, so a misconfiguration fails at
start-up with :class:`~ltikit.errors.LTIConfigurationError`, not on the first launch, and
no request converts a setting again.  Adapters other than Flask read the same keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import _http
from .errors import LTIConfigurationError
from .launch import BASIC_LAUNCH
from .urls import origin

__all__ = ["DEFAULTS", "Settings"]

DEFAULTS: Mapping[str, Any] = {
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
    # The one redirect URI registered on the platform (a path of the tool, such as
    # "/launch", or a full URL).  Moodle, Canvas and D2L accept only registered redirect
    # URIs: with this set, every login names it, and a launch whose target_link_uri is
    # another page of the tool (a deep-linked item) is verified there, then handed off to
    # that page (ltikit.flow).  None: the redirect URI is each launch's target_link_uri.
    "LTIKIT_LTI13_REDIRECT_URI": None,
    "LTIKIT_LTI13_LEEWAY": 5,
    # LTI Dynamic Registration (a platform installs the tool from one URL): "off", "open"
    # (any platform that opens the URL), or "links" (only through single-use links made
    # with `ltikit registration-link`).  The URL is LTIKIT_LTI13_REGISTRATION_PATH; the
    # app says what to register (LTIKit(app, tool_configuration=...)).
    "LTIKIT_LTI13_REGISTRATION": "off",
    "LTIKIT_LTI13_REGISTRATION_PATH": "/lti13/register",
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
    # Deadline of each call a registration makes (the configuration, the registration):
    # None for 3 10.
    "LTIKIT_LTI13_REGISTRATION_TIMEOUT": None,
    # Seconds a request waits for another worker's refresh of the same Canvas token before
    # answering 503 with Retry-After (it never waits while the current token still works).
    "LTIKIT_CANVAS_REFRESH_WAIT": 3.0,
    # Requests to ltikit's routes (launches, the OIDC login, the Canvas callback) larger than
    # this, or with more form or query fields, are refused with 413 before they are parsed.
    # A Canvas 1.1 launch is about 4 kB and 80 fields; an LTI 1.3 launch 2-20 kB.
    "LTIKIT_MAX_REQUEST_BYTES": 256 * 1024,
    "LTIKIT_MAX_FORM_FIELDS": 1000,
}

_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 6265 token

Timeout = tuple[float, float]


@dataclass(frozen=True)
class Settings:
    """The parsed settings (the raw mapping stays available as ``raw``)."""

    raw: Mapping[str, Any]
    timestamp_window: int
    launch_lifetime: int
    trusted_proxies: int
    message_types: tuple[str, ...]
    lti13_message_types: frozenset[str]
    cookie_name: str
    cookie_secure: bool
    cookie_partitioned: bool
    launch_param: str
    launch_header: str
    canvas_callback_path: str
    canvas_redirect_uri: str | None
    canvas_refresh_margin: int
    canvas_refresh_wait: float
    canvas_api_timeout: Timeout
    canvas_token_timeout: Timeout
    lti13_login_path: str
    lti13_jwks_path: str
    lti13_target_link_uris: tuple[str, ...]
    lti13_redirect_uri: str | None
    lti13_leeway: int
    lti13_jwks_refetch_interval: int
    lti13_jwks_timeout: Timeout
    lti13_service_timeout: Timeout
    outcomes_timeout: Timeout
    lti13_registration: str
    lti13_registration_path: str
    lti13_registration_timeout: Timeout
    max_request_bytes: int
    max_form_fields: int

    @classmethod
    def load(cls, config: Mapping[str, Any]) -> Settings:
        """Parse ``config`` (missing keys take :data:`DEFAULTS`); raises
        :class:`~ltikit.errors.LTIConfigurationError` naming the bad key."""
        from .canvas.client import DEFAULT_API_TIMEOUT
        from .canvas.oauth import DEFAULT_TIMEOUT as TOKEN_TIMEOUT
        from .lti11.outcomes import DEFAULT_TIMEOUT as OUTCOMES_TIMEOUT
        from .lti13.dynamic_registration import DEFAULT_TIMEOUT as REGISTRATION_TIMEOUT
        from .lti13.dynamic_registration import POLICIES
        from .lti13.jwks import DEFAULT_TIMEOUT as JWKS_TIMEOUT
        from .lti13.services import DEFAULT_TIMEOUT as SERVICE_TIMEOUT

        def get(name: str) -> Any:
            return config.get(name, DEFAULTS[name])

        def number(name: str, kind: type = int, *, minimum: float = 0) -> Any:
            try:
                value = kind(get(name))
            except (TypeError, ValueError):
                raise LTIConfigurationError(f"{name} must be a number.",
                                            reason="bad_setting") from None
            if value < minimum:
                raise LTIConfigurationError(f"{name} must be at least {minimum}.",
                                            reason="bad_setting")
            return value

        def timeout(name: str, default: Timeout) -> Timeout:
            try:
                return _http.timeouts(get(name), default)
            except (TypeError, ValueError) as exc:
                raise LTIConfigurationError(f"{name}: {exc}", reason="bad_setting") from None

        def strings(name: str) -> tuple[str, ...]:
            value = get(name)
            if isinstance(value, str):
                value = value.replace(",", " ").split()
            return tuple(str(v) for v in value or ())

        name = str(get("LTIKIT_COOKIE_NAME") or "")
        if not _COOKIE_NAME.fullmatch(name):
            raise LTIConfigurationError(f"LTIKIT_COOKIE_NAME {name!r} is not a valid cookie "
                                        "name.", reason="bad_cookie_name")
        limits = (number("LTIKIT_MAX_REQUEST_BYTES", minimum=-2**62),
                  number("LTIKIT_MAX_FORM_FIELDS", minimum=-2**62))
        if min(limits) <= 0:
            raise LTIConfigurationError("LTIKIT_MAX_REQUEST_BYTES and LTIKIT_MAX_FORM_FIELDS "
                                        "must be positive.", reason="bad_request_limits")
        redirect_uri = get("LTIKIT_LTI13_REDIRECT_URI") or None
        if redirect_uri is not None and not _redirect_uri_ok(str(redirect_uri)):
            raise LTIConfigurationError(
                f"LTIKIT_LTI13_REDIRECT_URI {redirect_uri!r} must be a path of the tool "
                "(/launch) or an http(s) URL without a fragment.", reason="bad_setting")
        registration = str(get("LTIKIT_LTI13_REGISTRATION") or "off").strip().lower()
        if registration not in POLICIES:
            raise LTIConfigurationError(
                f"LTIKIT_LTI13_REGISTRATION must be one of {', '.join(POLICIES)}, not "
                f"{registration!r}.", reason="bad_setting")
        registration_path = str(get("LTIKIT_LTI13_REGISTRATION_PATH"))
        if not registration_path.startswith("/") or registration_path.startswith("//") or \
                registration_path.endswith("/") or "<" in registration_path:
            raise LTIConfigurationError(
                f"LTIKIT_LTI13_REGISTRATION_PATH {registration_path!r} must be a path of the "
                "tool such as /lti13/register.", reason="bad_setting")
        return cls(
            raw=config,
            lti13_registration=registration, lti13_registration_path=registration_path,
            lti13_registration_timeout=timeout("LTIKIT_LTI13_REGISTRATION_TIMEOUT",
                                               REGISTRATION_TIMEOUT),
            timestamp_window=number("LTIKIT_TIMESTAMP_WINDOW"),
            launch_lifetime=number("LTIKIT_LAUNCH_LIFETIME", minimum=1),
            trusted_proxies=number("LTIKIT_TRUSTED_PROXIES"),
            message_types=strings("LTIKIT_MESSAGE_TYPES"),
            lti13_message_types=frozenset(strings("LTIKIT_LTI13_MESSAGE_TYPES")),
            cookie_name=name, cookie_secure=bool(get("LTIKIT_COOKIE_SECURE")),
            cookie_partitioned=bool(get("LTIKIT_COOKIE_PARTITIONED")),
            launch_param=str(get("LTIKIT_LAUNCH_PARAM")),
            launch_header=str(get("LTIKIT_LAUNCH_HEADER")),
            canvas_callback_path=str(get("LTIKIT_CANVAS_CALLBACK_PATH")),
            canvas_redirect_uri=get("LTIKIT_CANVAS_REDIRECT_URI") or None,
            canvas_refresh_margin=number("LTIKIT_CANVAS_REFRESH_MARGIN"),
            canvas_refresh_wait=number("LTIKIT_CANVAS_REFRESH_WAIT", float),
            canvas_api_timeout=timeout("LTIKIT_CANVAS_API_TIMEOUT", DEFAULT_API_TIMEOUT),
            canvas_token_timeout=timeout("LTIKIT_CANVAS_TOKEN_TIMEOUT", TOKEN_TIMEOUT),
            lti13_login_path=str(get("LTIKIT_LTI13_LOGIN_PATH")),
            lti13_jwks_path=str(get("LTIKIT_LTI13_JWKS_PATH")),
            lti13_target_link_uris=strings("LTIKIT_LTI13_TARGET_LINK_URIS"),
            lti13_redirect_uri=None if redirect_uri is None else str(redirect_uri),
            lti13_leeway=number("LTIKIT_LTI13_LEEWAY"),
            lti13_jwks_refetch_interval=number("LTIKIT_LTI13_JWKS_REFETCH_INTERVAL"),
            lti13_jwks_timeout=timeout("LTIKIT_LTI13_JWKS_TIMEOUT", JWKS_TIMEOUT),
            lti13_service_timeout=timeout("LTIKIT_LTI13_SERVICE_TIMEOUT", SERVICE_TIMEOUT),
            outcomes_timeout=timeout("LTIKIT_OUTCOMES_TIMEOUT", OUTCOMES_TIMEOUT),
            max_request_bytes=limits[0], max_form_fields=limits[1])


def _redirect_uri_ok(value: str) -> bool:
    if "#" in value or any(c.isspace() for c in value):
        return False
    if value.startswith("/"):
        return not value.startswith("//") and "\\" not in value
    return origin(value) is not None  # an http(s) URL that every reader reads alike
