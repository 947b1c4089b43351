"""The tool's own signing keys: generated, stored encrypted, published, rotated.

The newest key signs; ``rotate`` makes a new one and keeps the previous keys published for
an overlap period (platforms cache JWKS), after which they are dropped from the JWKS.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, insert, or_, select, update

from ..crypto import SecretBox
from ..errors import LTIConfigurationError
from ..storage import tables

DEFAULT_OVERLAP = 7 * 24 * 3600


class ToolKeys:
    def __init__(self, engine: Engine, box: SecretBox, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.box = box
        self._clock = clock
        self._signing: tuple[str, Any] | None = None
        self._signing_checked = 0.0

    def generate(self) -> str:
        """A new RSA-2048 key that signs from now on; returns its kid."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = secrets.token_urlsafe(12)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
        jwk.update(kid=kid, alg="RS256", use="sig")
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        with self.engine.begin() as conn:
            conn.execute(insert(tables.tool_keys).values(
                kid=kid, private_key=self.box.encrypt(pem), public_jwk=json.dumps(jwk),
                created_at=int(self._clock())))
        self._signing = None
        return kid

    def rotate(self, overlap: int = DEFAULT_OVERLAP) -> str:
        """Generate a new signing key; current keys stay published for ``overlap`` s."""
        now = int(self._clock())
        t = tables.tool_keys
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.retire_at.is_(None))
                         .values(retire_at=now + overlap))
        return self.generate()

    def jwks(self) -> dict[str, Any]:
        """The published keys (current and not yet retired)."""
        t = tables.tool_keys
        now = int(self._clock())
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.public_jwk).where(
                or_(t.c.retire_at.is_(None), t.c.retire_at > now))
                .order_by(t.c.created_at.desc())).scalars().all()
        return {"keys": [json.loads(row) for row in rows]}

    def signing_key(self) -> tuple[str, Any]:
        """(kid, private key) of the newest key (re-read every minute, so a rotation made by
        another process is picked up; the overlap keeps earlier signatures valid)."""
        if self._signing is None or self._clock() - self._signing_checked > 60:
            self._signing_checked = self._clock()
            t = tables.tool_keys
            with self.engine.connect() as conn:
                row = conn.execute(select(t.c.kid, t.c.private_key)
                                   .where(t.c.retire_at.is_(None))
                                   .order_by(t.c.created_at.desc()).limit(1)).first()
            if row is None:
                raise LTIConfigurationError(
                    "The tool has no signing key: run `ltikit tool-keys generate`.",
                    reason="no_tool_key")
            private = serialization.load_pem_private_key(
                self.box.decrypt(row.private_key).encode(), password=None)
            self._signing = (row.kid, private)
        return self._signing

    def sign(self, claims: dict[str, Any]) -> str:
        kid, private = self.signing_key()
        return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})
