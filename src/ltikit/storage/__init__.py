"""Server-side state: launches (with their nonces) and consumers.

The protocol code never touches storage directly; it needs the small interface below.
:class:`~ltikit.storage.sql.SQLStorage` implements it on any SQLAlchemy database (SQLite
by default, PostgreSQL in production).  Every operation is safe with several worker
processes sharing the database: uniqueness is enforced by the database, not by a check
followed by a write.
"""

from __future__ import annotations

from typing import Protocol


class LaunchStorage(Protocol):
    def begin_launch(self, *, issuer: str, nonce: str, secret: str, data: str,
                     expires_at: int) -> int | None:
        """Claim the nonce and store the launch in one step: the launch's row id, or
        ``None`` if the nonce was already claimed."""

    def load_launch(self, row_id: int, secret: str, now: int) -> str | None: ...

    def delete_launch(self, row_id: int) -> None: ...

    def consumer_secret(self, key: str) -> str | None: ...


from .sql import SQLStorage, upgrade  # noqa: E402

__all__ = ["LaunchStorage", "SQLStorage", "upgrade"]
