"""Every exception ltikit raises, in one module, and the ``reason`` codes they carry.

The class names of PyLTI (``LTIException``, ``LTINotInSessionException``,
``LTIRoleException``, ``LTIPostMessageException``) are kept, so code written for PyLTI
keeps catching the same things.  Each refusal carries the HTTP ``status`` it deserves and
a short machine-readable ``reason`` (one of :class:`Reason`, listed with their meaning in
``docs/errors.md``) for logs, tests and error pages::

    LTIException                       400  every refusal (a generic one: malformed)
    ├── LTIMalformedRequest            400  not a well-formed LTI message
    │   └── LTIRequestTooLarge         413  too large to parse
    ├── LTIAuthenticationError         401  signature, key, replay, timestamp, state
    │   └── LTIStateCookieMissing      401  an LTI 1.3 launch without the login's cookie
    ├── LTINotInSessionException       401  no earlier launch (or it expired)
    ├── LTIRoleException               403  the user's roles are not the view's
    ├── LTIPostMessageException        502  a message to the platform (a grade) failed
    ├── LTIConfigurationError          500  the tool is misconfigured
    ├── JWKSUnavailable                503  the platform's keys could not be fetched
    ├── ServiceError                   502  an LTI Advantage service (AGS, NRPS) failed
    ├── DeepLinkingError               400  content items the platform did not ask for
    ├── CanvasNotConfigured            403  a launch from a Canvas the tool has no key for
    ├── CanvasAuthorizationRequired    401  no usable Canvas token: authorize (a redirect)
    ├── CanvasOAuthError               400  Canvas refused an OAuth2 request
    ├── RegistrationError              400  a Dynamic Registration refused (403, 401, 502)
    └── CanvasUnavailable              503  Canvas unreachable, slow (504) or throttled
        └── CanvasBusy                 503  the token is being renewed elsewhere: retry

    DecryptionError                         a stored secret no configured key decrypts

The ``message`` of every exception is safe to show to the user: it never contains a
secret, a signature or a token.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CanvasAuthorizationRequired", "CanvasBusy", "CanvasNotConfigured", "CanvasOAuthError",
    "CanvasUnavailable", "DecryptionError", "DeepLinkingError", "JWKSUnavailable",
    "LTIAuthenticationError", "LTIConfigurationError", "LTIException", "LTIMalformedRequest",
    "LTINotInSessionException", "LTIPostMessageException", "LTIRequestTooLarge",
    "LTIRoleException", "LTIStateCookieMissing", "Reason", "RegistrationError", "ServiceError",
]


class Reason(StrEnum):
    """The ``reason`` codes of ltikit's refusals (``docs/errors.md`` says what each means).

    A member equals its string, so ``exc.reason == Reason.REPLAYED_NONCE`` and
    ``exc.reason == "replayed_nonce"`` are the same test.
    """

    ALGORITHM_KEY_MISMATCH = "algorithm_key_mismatch"
    BAD_AUTHORIZATION_HEADER = "bad_authorization_header"
    BAD_AZP = "bad_azp"
    BAD_COOKIE_NAME = "bad_cookie_name"
    BAD_ENCODING = "bad_encoding"
    BAD_ENCRYPTION_KEY = "bad_encryption_key"
    BAD_HANDOFF = "bad_handoff"
    BAD_ID_TOKEN = "bad_id_token"
    BAD_ISS_OR_AUD = "bad_iss_or_aud"
    BAD_LAUNCH_ID = "bad_launch_id"
    BAD_LOGIN = "bad_login"
    BAD_LTI_VERSION = "bad_lti_version"
    BAD_NONCE = "bad_nonce"
    BAD_NUMERIC_DATE = "bad_numeric_date"
    BAD_OAUTH_VERSION = "bad_oauth_version"
    BAD_OPENID_CONFIGURATION = "bad_openid_configuration"
    BAD_OUTCOME_RESPONSE = "bad_outcome_response"
    BAD_PARAMETERS = "bad_parameters"
    BAD_REGISTRATION_REQUEST = "bad_registration_request"
    BAD_REQUEST_LIMITS = "bad_request_limits"
    BAD_RETURN_URL = "bad_return_url"
    BAD_SETTING = "bad_setting"
    BAD_SIGNATURE = "bad_signature"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_URL = "bad_url"
    BAD_VERSION = "bad_version"
    CANVAS_AUTHORIZATION = "canvas_authorization"
    CANVAS_AUTHORIZATION_REQUIRED = "canvas_authorization_required"
    CANVAS_BAD_ANSWER = "canvas_bad_answer"
    CANVAS_BUSY = "canvas_busy"
    CANVAS_INSTANCE_INCOMPLETE = "canvas_instance_incomplete"
    CANVAS_INSTANCE_INSECURE = "canvas_instance_insecure"
    CANVAS_NOT_CONFIGURED = "canvas_not_configured"
    CANVAS_OAUTH_ERROR = "canvas_oauth_error"
    CANVAS_REFRESH_MISCONFIGURED = "canvas_refresh_misconfigured"
    CANVAS_REFRESH_REFUSED = "canvas_refresh_refused"
    CANVAS_THROTTLED = "canvas_throttled"
    CANVAS_TIMEOUT = "canvas_timeout"
    CANVAS_TOKEN_DROPPED = "canvas_token_dropped"
    CANVAS_TOKEN_REFUSED = "canvas_token_refused"
    CANVAS_UNAVAILABLE = "canvas_unavailable"
    CONFIGURATION = "configuration"
    CONSUMER_WITHOUT_SECRET = "consumer_without_secret"
    DEEP_LINKING_REFUSED = "deep_linking_refused"
    DUPLICATE_OAUTH_PARAMETER = "duplicate_oauth_parameter"
    DUPLICATE_PARAMETER = "duplicate_parameter"
    EXPIRED_ID_TOKEN = "expired_id_token"
    FOREIGN_NEXT_LINK = "foreign_next_link"
    FOREIGN_OPENID_CONFIGURATION = "foreign_openid_configuration"
    FOREIGN_TARGET_LINK_URI = "foreign_target_link_uri"
    FUTURE_ID_TOKEN = "future_id_token"
    FUTURE_TIMESTAMP = "future_timestamp"
    HANDOFF_USED = "handoff_used"
    INSECURE_OPENID_CONFIGURATION = "insecure_openid_configuration"
    INVALID_ID_TOKEN = "invalid_id_token"
    JWKS_UNAVAILABLE = "jwks_unavailable"
    LAUNCH_EXPIRED = "launch_expired"
    LTI_ERROR = "lti_error"
    MALFORMED = "malformed"
    MISSING_CLAIM = "missing_claim"
    MISSING_OAUTH_PARAMETER = "missing_oauth_parameter"
    MISSING_RESOURCE_LINK_ID = "missing_resource_link_id"
    NONCE_MISMATCH = "nonce_mismatch"
    NOT_A_LAUNCH = "not_a_launch"
    NOT_DEEP_LINKING = "not_deep_linking"
    NO_AGS = "no_ags"
    NO_AGS_DELETE = "no_ags_delete"
    NO_CANVAS_DOMAIN = "no_canvas_domain"
    NO_CANVAS_TOKEN = "no_canvas_token"
    NO_CANVAS_USER_ID = "no_canvas_user_id"
    NO_CLIENT_ID = "no_client_id"
    NO_ENCRYPTION_KEY = "no_encryption_key"
    NO_ID_TOKEN = "no_id_token"
    NO_KID = "no_kid"
    NO_LAUNCH = "no_launch"
    NO_LAUNCH_IN_REQUEST = "no_launch_in_request"
    NO_LINEITEM = "no_lineitem"
    NO_LINEITEMS_URL = "no_lineitems_url"
    NO_NRPS = "no_nrps"
    NO_OUTCOME_SERVICE = "no_outcome_service"
    NO_PLATFORM_KEY = "no_platform_key"
    NO_REFRESH_TOKEN = "no_refresh_token"
    NO_SECRET_KEY = "no_secret_key"
    NO_TOOL_KEY = "no_tool_key"
    OPENID_CONFIGURATION_UNAVAILABLE = "openid_configuration_unavailable"
    OUTCOME_HTTP_ERROR = "outcome_http_error"
    OUTCOME_REFUSED = "outcome_refused"
    OUTCOME_TIMEOUT = "outcome_timeout"
    OUTCOME_UNREACHABLE = "outcome_unreachable"
    PAGING_LOOP = "paging_loop"
    PLATFORM_REFUSED = "platform_refused"
    REGISTRATION_DISABLED = "registration_disabled"
    REGISTRATION_FAILED = "registration_failed"
    REGISTRATION_LINK_EXPIRED = "registration_link_expired"
    REGISTRATION_LINK_INVALID = "registration_link_invalid"
    REGISTRATION_LINK_REQUIRED = "registration_link_required"
    REGISTRATION_LINK_USED = "registration_link_used"
    REGISTRATION_ORIGIN_CHANGED = "registration_origin_changed"
    REGISTRATION_TOKEN_REFUSED = "registration_token_refused"
    REPLAYED_NONCE = "replayed_nonce"
    ROLE = "role"
    SCOPE_NOT_GRANTED = "scope_not_granted"
    SERVICE_ERROR = "service_error"
    SERVICE_REFUSED = "service_refused"
    SERVICE_TIMEOUT = "service_timeout"
    SERVICE_TOKEN_TIMEOUT = "service_token_timeout"
    SERVICE_UNREACHABLE = "service_unreachable"
    SERVICE_URL_NOT_ALLOWED = "service_url_not_allowed"
    STALE_TIMESTAMP = "stale_timestamp"
    STATE_COOKIE_MISSING = "state_cookie_missing"
    STATE_MISMATCH = "state_mismatch"
    STORAGE_CROSS_SITE = "storage_cross_site"
    STORAGE_MISMATCH = "storage_mismatch"
    TARGET_LINK_URI_MISMATCH = "target_link_uri_mismatch"
    TOKEN_REFUSED = "token_refused"
    TOKEN_TIMEOUT = "token_timeout"
    TOKEN_UNREACHABLE = "token_unreachable"
    TOO_LARGE = "too_large"
    UNAUTHENTICATED = "unauthenticated"
    UNKNOWN_CANVAS_ENVIRONMENT = "unknown_canvas_environment"
    UNKNOWN_CONSUMER_KEY = "unknown_consumer_key"
    UNKNOWN_DEPLOYMENT = "unknown_deployment"
    UNKNOWN_KID = "unknown_kid"
    UNKNOWN_PLATFORM = "unknown_platform"
    UNKNOWN_REQUEST_TYPE = "unknown_request_type"
    UNKNOWN_ROLE_GROUP = "unknown_role_group"
    UNKNOWN_STATE = "unknown_state"
    UNREADABLE_NEXT_LINK = "unreadable_next_link"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    UNSUPPORTED_SIGNATURE_METHOD = "unsupported_signature_method"
    WRONG_MESSAGE_TYPE = "wrong_message_type"


class LTIException(Exception):
    """Base class of every refusal; a generic one is a malformed request (400)."""

    status: int = 400
    reason: str = "lti_error"

    def __init__(self, message: str = "There was an LTI communication error", *,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class LTIMalformedRequest(LTIException):
    """The request is not a well-formed LTI message (missing or broken parameters)."""

    status = 400
    reason = "malformed"


class LTIRequestTooLarge(LTIMalformedRequest):
    """The request is larger, or has more fields, than a launch can need (refused before
    it is parsed)."""

    status = 413
    reason = "too_large"


class LTIAuthenticationError(LTIException):
    """The request could not be authenticated: bad signature, unknown key, replay, stale."""

    status = 401
    reason = "unauthenticated"


class LTIStateCookieMissing(LTIAuthenticationError):
    """An LTI 1.3 launch came back without the login's cookie and without another way to
    tie it to this browser.  ``relaunch_url``, when set, is a link the refusal page offers
    (ltikit sets none: by then the platform has used up the login's ``lti_message_hint``,
    so it offers the new window at the login instead, see :mod:`ltikit.lti13.cookie_check`)."""

    reason = "state_cookie_missing"

    def __init__(self, message: str, *, relaunch_url: str | None = None) -> None:
        super().__init__(message)
        self.relaunch_url = relaunch_url


class LTINotInSessionException(LTIException):
    """A view that needs an earlier launch was reached without one (or it expired)."""

    status = 401
    reason = "no_launch"

    def __init__(self, message: str = "Session expired or unavailable", *,
                 reason: str | None = None) -> None:
        super().__init__(message, reason=reason)


class LTIRoleException(LTIException):
    """The launching user's roles are not in the group the view asks for."""

    status = 403
    reason = "role"

    def __init__(self, message: str = "Not authorized.", *, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)


class LTIPostMessageException(LTIException):
    """Sending a message to the platform (a grade, say) failed."""

    status = 502
    reason = "platform_refused"

    def __init__(self, message: str = "Post Message Failed", *,
                 reason: str | None = None) -> None:
        super().__init__(message, reason=reason)


class LTIConfigurationError(LTIException):
    """The tool itself is misconfigured (a deployment problem, not the user's)."""

    status = 500
    reason = "configuration"



class JWKSUnavailable(LTIException):
    """The platform's public keys could not be fetched (and none are cached)."""

    status = 503
    reason = "jwks_unavailable"


class ServiceError(LTIException):
    """A platform service refused a call or could not be reached (a 502 page if unhandled).

    ``http_status`` is the platform's answer, when there was one; ``http_reason`` the
    reason phrase of its status line (where Moodle says why: "Refusing score with an
    earlier timestamp…") and ``body_excerpt`` the start of its body (where Canvas says
    why), both also in the message."""

    status = 502
    reason = "service_error"

    def __init__(self, message: str, *, http_status: int | None = None,
                 reason: str | None = None, status: int | None = None,
                 http_reason: str | None = None, body_excerpt: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.http_status = http_status
        self.http_reason = http_reason
        self.body_excerpt = body_excerpt
        if status is not None:
            self.status = status


class DeepLinkingError(LTIException):
    """The content items do not fit what the platform asked for (a tool bug: 400)."""

    status = 400
    reason = "deep_linking_refused"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)


class RegistrationError(LTIException):
    """An LTI Dynamic Registration was refused: registrations off or the link not valid
    (403), the platform's configuration unusable (400), the registration token refused by
    the platform (401), or the platform unreachable or failing (502, 504).

    ``http_status`` and ``body_excerpt`` are the platform's answer, when there was one."""

    status = 400
    reason = "bad_registration_request"

    def __init__(self, message: str, *, reason: str | None = None, status: int | None = None,
                 http_status: int | None = None, body_excerpt: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.http_status = http_status
        self.body_excerpt = body_excerpt
        if status is not None:
            self.status = status


class CanvasNotConfigured(LTIException):
    """The launch came from a Canvas instance this tool has no developer key for."""

    status = 403
    reason = "canvas_not_configured"


class CanvasAuthorizationRequired(LTIException):
    """There is no usable token for this user: send them through authorization."""

    status = 401
    reason = "canvas_authorization_required"

    def __init__(self, message: str = "Canvas access must be authorized.", *,
                 return_to: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.return_to = return_to


class CanvasOAuthError(LTIException):
    """Canvas refused an OAuth2 request: ``error`` and ``description`` as Canvas sent them
    (``invalid_grant``, ``invalid_request``, ``invalid_client``, ...)."""

    reason = "canvas_oauth_error"

    def __init__(self, error: str, description: str | None = None, *, status: int = 400,
                 http_status: int | None = None) -> None:
        self.error = error
        self.description = description or ""
        self.http_status = http_status
        super().__init__(f"Canvas refused the authorization ({error}"
                         + (f": {description}" if description else "") + ").")
        self.status = status

    @property
    def ends_grant(self) -> bool:
        """Is this Canvas's answer for a grant that is gone (revoked, expired, another
        key's)?  Only then is the user's token dropped and authorization asked again."""
        return self.error == "invalid_grant" or (
            self.error == "invalid_request" and "refresh_token not found" in self.description)


class CanvasUnavailable(LTIException):
    """Canvas could not be reached, was too slow, or answered with something other than a
    refusal (429, 5xx): nothing is dropped; try again after ``retry_after`` seconds."""

    status = 503
    reason = "canvas_unavailable"

    def __init__(self, message: str = "Canvas could not be reached; try again in a moment.",
                 *, reason: str | None = None, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after
        if status is not None:
            self.status = status


class CanvasBusy(CanvasUnavailable):
    """The user's token is being renewed elsewhere, or Canvas asked to wait: retry after
    ``retry_after`` seconds (a 503 with ``Retry-After``); the grant is kept."""

    reason = "canvas_busy"


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with any configured key (key removed too soon?).

    Not a refusal: callers treat the secret as absent (a token to ask for again)."""
