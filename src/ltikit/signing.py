"""itsdangerous, tuned for per-request use: signing keys derived once, short payloads left
uncompressed.

itsdangerous derives the HMAC key from the secret and salt on every ``sign`` and
``unsign`` (a few µs each, several times per request), and its URL-safe serializer tries
zlib on every payload; ltikit's tokens are short and signed on the launch path, where
both showed up in profiles (a login state cost 62 µs to sign, 20 µs with these changes).
The token formats are itsdangerous's own: these serializers read tokens made by the stock
classes and the other way round.

The HMAC itself is computed with the standard library's one-shot ``hmac.digest`` (OpenSSL
in C) rather than itsdangerous's ``hmac.new(...).digest()``: the same function of key and
message (RFC 2104), about 3 µs less on every launch and later page, where each launch id
is signed or verified (measured with ``bench/later_page.py``).  tests/test_signing.py
checks on random keys and values that tokens agree with itsdangerous's in both directions.
"""

from __future__ import annotations

import hmac
from typing import Any

from itsdangerous import Serializer, Signer, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode, want_bytes
from itsdangerous.signer import HMACAlgorithm


class _DerivedKeyCache:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[bytes, bytes] = {}
        algorithm = self.algorithm  # type: ignore[attr-defined]
        # The one-shot HMAC only stands in for itsdangerous's own HMAC, nothing else.
        self._hmac_digest: str | None = algorithm.digest_method().name \
            if type(algorithm) is HMACAlgorithm else None

    def get_signature(self, value: str | bytes) -> bytes:
        if self._hmac_digest is None:
            signature: bytes = super().get_signature(value)  # type: ignore[misc]
            return signature
        return base64_encode(hmac.digest(self.derive_key(), want_bytes(value),
                                         self._hmac_digest))

    def verify_signature(self, value: str | bytes, sig: str | bytes) -> bool:
        if self._hmac_digest is None:
            verified: bool = super().verify_signature(value, sig)  # type: ignore[misc]
            return verified
        try:
            given = base64_decode(sig)
        except Exception:  # as itsdangerous: any undecodable signature is a bad one
            return False
        value = want_bytes(value)
        for secret_key in reversed(self.secret_keys):  # type: ignore[attr-defined]
            expected = hmac.digest(self.derive_key(secret_key), value, self._hmac_digest)
            if hmac.compare_digest(given, expected):
                return True
        return False

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        raw = self.secret_keys[-1] if secret_key is None else secret_key  # type: ignore[attr-defined]
        raw = raw.encode() if isinstance(raw, str) else raw
        derived = self._derived.get(raw)
        if derived is None:
            derived = self._derived[raw] = super().derive_key(raw)  # type: ignore[misc]
        return derived


class CachedKeySigner(_DerivedKeyCache, Signer):
    """``itsdangerous.Signer`` deriving each secret key's signing key once."""


class CachedKeyTimestampSigner(_DerivedKeyCache, TimestampSigner):
    """``itsdangerous.TimestampSigner`` deriving each secret key's signing key once."""


class TimedTokenSerializer(URLSafeTimedSerializer):
    """``URLSafeTimedSerializer`` with cached keys and without the zlib attempt."""

    default_signer = CachedKeyTimestampSigner

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))
