"""Exceptions raised when a launch or a later LTI request is refused.

The class names are PyLTI's (``LTIException``, ``LTINotInSessionException``,
``LTIRoleException``, ``LTIPostMessageException``) so that code written for PyLTI
keeps catching the same things.  ltikit adds subclasses that carry the HTTP status a
refusal deserves and a short machine-readable ``reason`` for logs and tests.

The ``message`` of every exception is safe to show to the user: it never contains a
secret, a signature or a token.
"""

from __future__ import annotations


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
