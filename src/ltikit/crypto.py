"""Encryption of secrets at rest (OAuth2 tokens), with key rotation.

Built on ``cryptography``'s Fernet (AES-128-CBC with HMAC-SHA256, authenticated, with a
timestamp).  Keys come from configuration as a list: the first key encrypts, every key
decrypts, so rotating is "put a new key first, keep the old ones until
:meth:`SecretBox.rotate` (or ``ltikit keys rotate``) has re-encrypted the rows".

Generate a key with ``ltikit keys generate`` (or ``SecretBox.generate_key()``).
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import DecryptionError as DecryptionError
from .errors import LTIConfigurationError


class SecretBox:
    """Encrypts and decrypts short secrets with the configured keys (newest first)."""

    def __init__(self, keys: str | Iterable[str]) -> None:
        if isinstance(keys, str):
            keys = [k for k in keys.replace(",", " ").split() if k]
        keys = list(keys)
        if not keys:
            raise LTIConfigurationError(
                "No encryption key is configured for tokens at rest: set LTIKIT_ENCRYPTION_KEYS "
                "(generate one with `ltikit keys generate`).", reason="no_encryption_key")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError):
            raise LTIConfigurationError(
                "An encryption key is not a valid Fernet key (32 url-safe base64-encoded bytes; "
                "generate one with `ltikit keys generate`).", reason="bad_encryption_key") \
                from None

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise DecryptionError("a stored secret could not be decrypted with the configured "
                                  "keys") from None

    def rotate(self, ciphertext: str) -> str:
        """The same secret encrypted with the newest key."""
        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise DecryptionError("a stored secret could not be decrypted with the configured "
                                  "keys") from None
