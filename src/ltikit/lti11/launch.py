"""Verification of an LTI 1.1 launch (LTI 1.1.1 Implementation Guide, section 4).

:func:`verify_launch` has no side effects: it checks the message and its OAuth 1.0a
signature and returns a :class:`VerifiedLaunch`.  Remembering the nonce and storing the
launch happen afterwards, in one transaction (see :class:`ltikit.launches.LaunchManager`),
so that a refused launch changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from ..errors import LTIAuthenticationError, LTIException, LTIMalformedRequest
from ..launch import BASIC_LAUNCH, Launch
from ..roles import Roles
from .consumers import ConsumerRegistry
from .signature import OAuthRequest, verify_signature

LTI_VERSIONS = frozenset({"LTI-1p0"})
"""``lti_version`` values of LTI 1.0, 1.1 and 1.2 launches (all three send ``LTI-1p0``)."""

DEFAULT_TIMESTAMP_WINDOW = 300
MAX_NONCE_LENGTH = 255
_REQUIRED_OAUTH = ("oauth_consumer_key", "oauth_signature_method", "oauth_timestamp",
                   "oauth_nonce", "oauth_signature")


class VerifiedLaunch:
    """A launch whose signature, timestamp and message were checked; nonce not yet claimed.

    ``params`` are the signed parameters (``oauth_*`` removed); the
    :class:`~ltikit.launch.Launch` model is built from them on first use of ``launch``.
    """

    __slots__ = ("_launch", "consumer_key", "nonce", "params", "timestamp")

    def __init__(self, consumer_key: str, nonce: str, timestamp: int,
                 params: dict[str, str]) -> None:
        self.consumer_key = consumer_key
        self.nonce = nonce
        self.timestamp = timestamp
        self.params = params
        self._launch: Launch | None = None

    @property
    def launch(self) -> Launch:
        if self._launch is None:
            try:
                self._launch = Launch.from_lti11(self.params, self.consumer_key)
            except (TypeError, ValueError) as exc:  # the model must never 500 a launch
                raise LTIException(f"The launch parameters cannot be read: {exc}",
                                   reason="bad_parameters") from None
        return self._launch

    @property
    def built_launch(self) -> Launch | None:
        """The model if something already needed it (else ``None``)."""
        return self._launch

    @property
    def roles(self) -> Roles:
        return Roles.parse(self.params.get("roles"))


def verify_launch(request: OAuthRequest, consumers: ConsumerRegistry, *,
                  message_types: Collection[str] = (BASIC_LAUNCH,),
                  timestamp_window: int = DEFAULT_TIMESTAMP_WINDOW,
                  clock: Callable[[], float] = time.time) -> VerifiedLaunch:
    """Check an LTI 1.1 launch request and build its :class:`~ltikit.launch.Launch`.

    Raises an :class:`~ltikit.errors.LTIException` whose ``status`` is 400 for a malformed
    message and 401 for anything that fails authentication.
    """
    params = request.all_params()
    oauth: dict[str, str] = {}
    values: dict[str, str] = {}
    for name, value in params:
        if name[:6] == "oauth_":
            if name in oauth:
                # RFC 5849 section 3.2: protocol parameters must not repeat.
                raise LTIMalformedRequest(f"The OAuth parameter {name!r} was sent twice.",
                                          reason="duplicate_oauth_parameter")
            oauth[name] = value
        elif values.setdefault(name, value) != value:
            # The signature covers every copy, but the launch model has one value per
            # name: a second, different value would be ambiguous.
            raise LTIMalformedRequest(f"The parameter {name!r} was sent twice with "
                                      "different values.", reason="duplicate_parameter")
    if not oauth and "lti_message_type" not in values:
        raise LTIMalformedRequest("This page requires a valid oauth session or request",
                                  reason="not_a_launch")
    missing = [name for name in _REQUIRED_OAUTH if not oauth.get(name)]
    if missing:
        raise LTIMalformedRequest("The launch is not signed correctly: missing "
                                  + ", ".join(missing) + ".", reason="missing_oauth_parameter")
    if oauth.get("oauth_version", "1.0") != "1.0":
        raise LTIMalformedRequest("Only OAuth version 1.0 is supported.",
                                  reason="bad_oauth_version")

    raw_timestamp = oauth["oauth_timestamp"]
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit() and len(raw_timestamp) <= 12):
        raise LTIMalformedRequest("The launch timestamp is not a number.",
                                  reason="bad_timestamp")
    timestamp = int(raw_timestamp)
    skew = timestamp - clock()
    if abs(skew) > timestamp_window:
        raise LTIAuthenticationError(
            "The launch has expired or its clock is wrong; open the tool again from the course.",
            reason="stale_timestamp" if skew < 0 else "future_timestamp")
    nonce = oauth["oauth_nonce"]
    if len(nonce) > MAX_NONCE_LENGTH:
        raise LTIMalformedRequest("The launch nonce is too long.", reason="bad_nonce")

    key = oauth["oauth_consumer_key"]
    secret = consumers.secret_for(key)
    if secret is None:
        raise LTIAuthenticationError("The consumer key of this launch is not known to the tool.",
                                     reason="unknown_consumer_key")
    verify_signature(request, params, oauth["oauth_signature_method"],
                     oauth["oauth_signature"], secret)

    message_type = values.get("lti_message_type")
    if message_type not in message_types:
        raise LTIMalformedRequest(
            f"This page takes {' or '.join(sorted(message_types))} messages, not "
            f"{message_type or 'a message without lti_message_type'}.",
            reason="wrong_message_type")
    if values.get("lti_version") not in LTI_VERSIONS:
        raise LTIMalformedRequest("The launch does not say lti_version=LTI-1p0.",
                                  reason="bad_lti_version")
    if message_type == BASIC_LAUNCH and not values.get("resource_link_id"):
        raise LTIMalformedRequest("The launch has no resource_link_id.",
                                  reason="missing_resource_link_id")
    return VerifiedLaunch(consumer_key=key, nonce=nonce, timestamp=timestamp, params=values)
