"""A launch-path JWS reader: one parse of a compact JWS, then PyJWT's own checks, in order.

Why not ``jwt.decode`` alone: a launch needs the token's header and claims *before* it is
verified (the ``iss``/``aud`` say which registration and key to use), and PyJWT parses the
token again for each call; since PyJWT 2.15 each parse checks every base64url character
with a Python generator, about 70 µs per parse of a Canvas-sized (1.2 kB) id_token, three
parses per launch.  Here the token is parsed once, with the same rules (a regular expression
does the alphabet check), the signature is verified by PyJWT's algorithm object, and the
registered claims are validated in the same order and with the same exceptions as
``jwt.decode``.

PyJWT stays the reference: ``tests/test_lti13_jws.py`` has hypothesis generate tokens
(valid, tampered, re-padded, with odd claim values) and requires the same outcome from
:func:`verify` as from ``jwt.decode``.  One deliberate difference: tokens whose header has
``crit`` or ``b64`` (RFC 7797 unencoded payloads) are refused; no LTI platform sends them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

_ALPHABET = re.compile(rb"[A-Za-z0-9_-]*")
_ALGORITHMS = get_default_algorithms()


@dataclass(frozen=True)
class ParsedJWS:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _segment(segment: bytes, name: str) -> bytes:
    # PyJWT's rules: up to two '=' only where they complete a 4-character group, the
    # base64url alphabet only, no impossible length, and the canonical encoding only.
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4) or len(stripped) % 4 == 1 \
            or not _ALPHABET.fullmatch(stripped):
        raise jwt.DecodeError(f"Invalid {name} padding")
    try:
        decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
    except (TypeError, binascii.Error) as exc:
        raise jwt.DecodeError(f"Invalid {name} padding") from exc
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped:
        raise jwt.DecodeError(f"Invalid {name} padding")
    return decoded


def _object(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise jwt.DecodeError(f"Invalid {name} string: {exc}") from exc
    if not isinstance(value, dict):
        raise jwt.DecodeError(f"Invalid {name} string: must be a json object")
    return value


def parse(token: str | bytes) -> ParsedJWS:
    """Split and decode a compact JWS without verifying it (raises ``jwt.DecodeError``)."""
    raw = token.encode("utf-8") if isinstance(token, str) else token
    if not isinstance(raw, bytes):
        raise jwt.DecodeError("Invalid token type. Token must be a <class 'bytes'>")
    try:
        signing_input, crypto = raw.rsplit(b".", 1)
        header_segment, payload_segment = signing_input.split(b".", 1)
    except ValueError as exc:
        raise jwt.DecodeError("Not enough segments") from exc
    header = _object(_segment(header_segment, "header"), "header")
    if "crit" in header or "b64" in header:
        raise jwt.DecodeError("JWS extensions (crit, b64) are not accepted")
    payload = _segment(payload_segment, "payload")
    signature = _segment(crypto, "crypto")
    if "kid" in header and not isinstance(header["kid"], str):
        raise jwt.InvalidTokenError("Key ID header parameter must be a string")
    return ParsedJWS(header, _object(payload, "payload"), signing_input, signature)


def verify(parsed: ParsedJWS, key: Any, algorithm: str, *, audience: str, issuer: str,
           leeway: float = 0, require: Iterable[str] = (),
           now: float | None = None) -> dict[str, Any]:
    """Verify ``parsed`` with ``key`` (a ``cryptography`` public key) under ``algorithm``
    and validate its claims as ``jwt.decode(token, key, algorithms=[algorithm],
    audience=audience, issuer=issuer, leeway=leeway, options={"require": require})`` does;
    returns the claims or raises the same ``jwt`` exception."""
    alg = parsed.header.get("alg")
    if not alg or alg != algorithm:
        raise jwt.InvalidAlgorithmError("The specified alg value is not allowed")
    try:
        alg_obj = _ALGORITHMS[alg]
    except KeyError:
        raise jwt.InvalidAlgorithmError("Algorithm not supported") from None
    if not alg_obj.verify(parsed.signing_input, alg_obj.prepare_key(key), parsed.signature):
        raise jwt.InvalidSignatureError("Signature verification failed")
    payload = parsed.payload
    for claim in require:
        if payload.get(claim) is None:
            raise jwt.MissingRequiredClaimError(claim)
    now = time.time() if now is None else now
    if "iat" in payload:
        iat = _integer(payload["iat"], jwt.InvalidIssuedAtError,
                       "Issued At claim (iat) must be an integer.")
        if iat > now + leeway:
            raise jwt.ImmatureSignatureError("The token is not yet valid (iat)")
    if "nbf" in payload:
        nbf = _integer(payload["nbf"], jwt.DecodeError,
                       "Not Before claim (nbf) must be an integer.")
        if nbf > now + leeway:
            raise jwt.ImmatureSignatureError("The token is not yet valid (nbf)")
    if "exp" in payload:
        exp = _integer(payload["exp"], jwt.DecodeError,
                       "Expiration Time claim (exp) must be an integer.")
        if exp <= now - leeway:
            raise jwt.ExpiredSignatureError("Signature has expired")
    if "iss" not in payload:
        raise jwt.MissingRequiredClaimError("iss")
    if not isinstance(payload["iss"], str):
        raise jwt.InvalidIssuerError("Payload Issuer (iss) must be a string")
    if payload["iss"] != issuer:
        raise jwt.InvalidIssuerError("Invalid issuer")
    if "aud" not in payload or not payload["aud"]:
        raise jwt.MissingRequiredClaimError("aud")
    audiences = payload["aud"]
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or any(not isinstance(a, str) for a in audiences):
        raise jwt.InvalidAudienceError("Invalid claim format in token")
    if audience not in audiences:
        raise jwt.InvalidAudienceError("Audience doesn't match")
    if "sub" in payload and not isinstance(payload["sub"], str):
        raise InvalidSubjectError("Subject must be a string")
    if "jti" in payload and not isinstance(payload["jti"], str):
        raise InvalidJTIError("JWT ID must be a string")
    return payload


def _integer(value: Any, error: type[Exception], message: str) -> int:
    try:
        return int(value)
    except (ValueError, TypeError, OverflowError):
        raise error(message) from None
