"""Validation of an LTI 1.3 launch's ``id_token`` (LTI Core 1.3 section 5, 1EdTech Security
Framework 1.0 section 5.1.3), with PyJWT doing the JOSE work (parsed once per launch by
:mod:`.jws`, which follows ``jwt.decode`` exactly).

The order matters: nothing the token says is trusted before its signature is checked with
a key that belongs to the registration its (issuer, client id) names, using an algorithm
pinned by that key.  Only asymmetric algorithms are accepted: never ``none``, never HMAC
(an HS256 token "signed" with a platform's public key must not verify).  Claiming the
nonce (single use) and checking the OIDC ``state`` belong to the login flow that calls
:func:`verify_id_token`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from .. import _http
from ..errors import LTIAuthenticationError, LTIMalformedRequest
from ..storage.cache import TTLCache
from . import jws
from .jwks import JWKSCache, PlatformKey
from .registrations import Registration, Registrations

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
SUBMISSION_REVIEW_REQUEST = "LtiSubmissionReviewRequest"
MESSAGE_TYPES = frozenset({RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST,
                           SUBMISSION_REVIEW_REQUEST})

_FAMILIES = {  # the algorithms each key type may be used with
    "RSA": {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
    "EC": {"ES256", "ES384", "ES512"},
    "OKP": {"EdDSA"},
}
ALLOWED_ALGORITHMS = frozenset().union(*_FAMILIES.values())
DEFAULT_LEEWAY = 5


@dataclass(frozen=True)
class VerifiedIdToken:
    """A launch whose id_token was verified; its nonce is not yet claimed."""

    registration: Registration
    claims: Mapping[str, Any]

    @property
    def nonce(self) -> str:
        return str(self.claims["nonce"])

    @property
    def message_type(self) -> str:
        return str(self.claims[CLAIM + "message_type"])

    @property
    def deployment_id(self) -> str:
        return str(self.claims[CLAIM + "deployment_id"])


def _refuse(message: str, reason: str) -> LTIAuthenticationError:
    return LTIAuthenticationError(message, reason=reason)


def verify_id_token(id_token: str, registrations: Registrations, jwks: JWKSCache, *,
                    leeway: int = DEFAULT_LEEWAY, message_types: frozenset[str] = MESSAGE_TYPES,
                    clock: Callable[[], float] = time.time) -> VerifiedIdToken:
    """The verified id_token of a launch (Security Framework 5.1.3), or the refusal."""
    return _http.run(verify_id_token_steps(id_token, registrations, jwks, leeway=leeway,
                                           message_types=message_types, clock=clock))


def verify_id_token_steps(id_token: str, registrations: Registrations, jwks: JWKSCache, *,
                          leeway: int = DEFAULT_LEEWAY,
                          message_types: frozenset[str] = MESSAGE_TYPES,
                          clock: Callable[[], float] = time.time
                          ) -> _http.Steps[VerifiedIdToken]:
    """:func:`verify_id_token` as steps (:mod:`ltikit._http`): the platform's keys, when
    they must be fetched, are the one call."""
    if not id_token or len(id_token) > 64_000:
        raise LTIMalformedRequest("The launch has no usable id_token.", reason="no_id_token")
    try:
        parsed = jws.parse(id_token)  # once: the same rules as PyJWT, see ltikit.lti13.jws
    except jwt.PyJWTError:
        raise LTIMalformedRequest("The id_token is not a JWT.", reason="bad_id_token") \
            from None
    header, unverified = parsed.header, parsed.payload
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise _refuse(f"The id_token algorithm {algorithm!r} is not accepted.",
                      "unsupported_algorithm")
    issuer, audience = unverified.get("iss"), unverified.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(issuer, str) or not isinstance(audiences, list) or not audiences or \
            not all(isinstance(a, str) for a in audiences):
        raise _refuse("The id_token has no valid iss or aud.", "bad_iss_or_aud")
    if len(audiences) > 1:
        # Several audiences: the authorized party names the client (Security Framework
        # 5.1.3 step 4); comparing only aud[0] is a known mistake.
        client_id = unverified.get("azp")
        if not isinstance(client_id, str) or client_id not in audiences:
            raise _refuse("The id_token has several audiences and no matching azp.", "bad_azp")
    else:
        client_id = audiences[0]
    registration = registrations.get(issuer, client_id)
    if registration is None:
        raise _refuse("This platform (issuer and client id) is not registered with the tool.",
                      "unknown_platform")

    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        # Security Framework 6.3: a platform names its key in every message (and the
        # certification suite refuses a token without one), also when it has one key.
        raise _refuse("The id_token does not say which key signed it (no kid).", "no_kid")
    _check_numeric_dates(unverified, clock())
    if registration.public_jwk is not None:
        key = _inline_key(registration)
        pinned_kid = registration.public_jwk.get("kid")
        if pinned_kid is not None and pinned_kid != kid:
            raise _refuse("The launch was signed with a key the platform is not registered "
                          "with.", "unknown_kid")
    elif registration.jwks_url:
        key = yield from jwks.key_steps(registration.jwks_url, kid)
    else:  # pragma: no cover - registrations always have one of the two
        raise _refuse("The platform has no key configured.", "no_platform_key")
    kty = key.key_type
    pinned = key.pinned_algorithm
    if algorithm not in _FAMILIES.get(kty or "", set()) or (pinned and pinned != algorithm):
        raise _refuse("The id_token algorithm does not match the platform's key.",
                      "algorithm_key_mismatch")
    try:
        claims = jws.verify(parsed, key.key, algorithm, audience=client_id, issuer=issuer,
                            leeway=leeway, require=("exp", "iat", "iss", "aud", "nonce"),
                            now=clock())
    except jwt.ExpiredSignatureError:
        raise _refuse("The launch has expired; open the tool again from the course.",
                      "expired_id_token") from None
    except jwt.ImmatureSignatureError:
        raise _refuse("The launch was issued in the future (check the clocks).",
                      "future_id_token") from None
    except jwt.InvalidSignatureError:
        raise _refuse("The id_token signature is not valid.", "bad_signature") from None
    except jwt.PyJWTError as exc:
        raise _refuse(f"The id_token is not valid: {exc}", "invalid_id_token") from None
    if "azp" in claims and claims["azp"] != client_id:
        raise _refuse("The id_token's azp is not this tool.", "bad_azp")
    if claims.get("iat", 0) > clock() + leeway:
        raise _refuse("The launch was issued in the future (check the clocks).",
                      "future_id_token")
    _check_lti_claims(claims, message_types)
    if not registrations.accept_deployment(registration, claims[CLAIM + "deployment_id"]):
        raise _refuse("This deployment of the tool is not registered.", "unknown_deployment")
    return VerifiedIdToken(registration=registration, claims=claims)


# How far from now a launch's NumericDate claims may be: platforms issue id_tokens valid for
# a minute (Moodle) to an hour (Canvas); a day either way leaves room for odd clocks, and
# keeps values that cannot be stored (10**20, 1e300) out.
MAX_CLAIM_DISTANCE = 86_400


def _check_numeric_dates(claims: Mapping[str, Any], now: float) -> None:
    """``exp``, ``iat`` and ``nbf`` are JSON numbers (RFC 7519 section 2: NumericDate; not
    strings, which PyJWT would read with ``int()``), finite, and within a day of now."""
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if value is None and name == "nbf":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value):
            raise _refuse(f"The id_token's {name} is not a number of seconds.",
                          "bad_numeric_date")
        if abs(value - now) > MAX_CLAIM_DISTANCE:
            raise _refuse(f"The id_token's {name} is too far from the current time (check "
                          "the clocks).", "bad_numeric_date")


_inline_keys: TTLCache[int, tuple[object, str, PlatformKey]] = TTLCache(1000)


def _inline_key(registration: Registration) -> PlatformKey:
    """A registration's inline JWK, parsed once (keys are not re-parsed per launch).

    Kept per registration with the JWK it was parsed from: while the registration's cached
    row is the same object, the key is reused as it is; a new row (another worker changed
    the key, or the row cache expired) is compared by its JSON, so a changed key is parsed
    again and an unchanged one is not (serialising a 2048-bit JWK costs about 3 µs)."""
    jwk = registration.public_jwk
    cached = _inline_keys.get(registration.id)
    if cached is not None and cached[0] is jwk:
        return cached[2]
    fingerprint = json.dumps(jwk, sort_keys=True)
    if cached is not None and cached[1] == fingerprint:
        key = cached[2]
    else:
        key = PlatformKey(dict(jwk or {}))
    _inline_keys.put(registration.id, (jwk, fingerprint, key))
    return key


def _check_lti_claims(claims: Mapping[str, Any], message_types: frozenset[str]) -> None:
    def missing(what: str) -> LTIMalformedRequest:
        return LTIMalformedRequest(f"The launch has no valid {what} claim.",
                                   reason="missing_claim")

    if claims.get(CLAIM + "version") != "1.3.0":
        raise LTIMalformedRequest("The launch is not LTI version 1.3.0.", reason="bad_version")
    message_type = claims.get(CLAIM + "message_type")
    if message_type not in message_types or message_type not in MESSAGE_TYPES:
        raise LTIMalformedRequest(f"This page does not take {message_type!r} messages.",
                                  reason="wrong_message_type")
    deployment = claims.get(CLAIM + "deployment_id")
    if not isinstance(deployment, str) or not deployment or len(deployment) > 255:
        raise missing("deployment_id")
    if not isinstance(claims.get(CLAIM + "target_link_uri"), str) and \
            message_type == RESOURCE_LINK_REQUEST:
        raise missing("target_link_uri")
    roles = claims.get(CLAIM + "roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise missing("roles")
    if message_type == RESOURCE_LINK_REQUEST:
        link = claims.get(CLAIM + "resource_link")
        if not isinstance(link, dict) or not isinstance(link.get("id"), str) or not link["id"]:
            raise missing("resource_link")
    for name in ("context", "custom", "launch_presentation", "tool_platform", "lis"):
        value = claims.get(CLAIM + name)
        if value is not None and not isinstance(value, dict):
            raise missing(name)
    sub = claims.get("sub")
    if sub is not None and (not isinstance(sub, str) or not sub or len(sub) > 255):
        raise missing("sub")
