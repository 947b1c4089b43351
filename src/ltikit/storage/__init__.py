"""Server-side state: nonces, launches and consumers.

The protocol code never touches storage directly; it needs the small interface below.
:class:`~ltikit.storage.sql.SQLStorage` implements it on any SQLAlchemy database (SQLite
by default, PostgreSQL in production).  Every operation is safe with several worker
processes sharing the database: uniqueness is enforced by the database, not by a check
followed by a write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class LaunchStorage(Protocol):
    def begin_launch(self, *, consumer_key: str, nonce: str, nonce_expires_at: int,
                     launch_id: str, data: Mapping[str, Any], expires_at: int) -> bool:
        """Claim the nonce and store the launch atomically; False if the nonce was used."""

    def load_launch(self, launch_id: str, now: int) -> dict[str, Any] | None: ...

    def delete_launch(self, launch_id: str) -> None: ...

    def consumer_secret(self, key: str) -> str | None: ...


from .sql import SQLStorage, upgrade  # noqa: E402

__all__ = ["LaunchStorage", "SQLStorage", "upgrade"]
