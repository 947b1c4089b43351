"""Single flight across workers and machines: one request at a time renews a shared token.

A Canvas token (``canvas/tokens.py``) and an LTI Advantage service token
(``lti13/services.py``) are each kept in one database row that every worker reads.  When
it must be renewed, many requests notice at once, in several processes on several
machines; only one may ask the platform (Canvas rotates refresh tokens, and a burst of
token requests is throttled).  The row's lease column says until when a worker holds it:

* :meth:`Lease.claim` sets it with one ``UPDATE`` whose ``WHERE`` says the lease is free
  (NULL or past) and, when given, that the row is still the version the caller read.  Of
  concurrent claims exactly one matches a row, on SQLite and PostgreSQL alike, and no
  transaction stays open during the slow call to the platform.
* A holder that dies (``kill -9``, a worker timeout) blocks nobody for longer than the
  lease, which outlives the renewal's own deadline by two seconds
  (:func:`ltikit._http.lease_seconds`).
* The others wait a little (:meth:`pause`, jittered, so they do not come back in step)
  and read the row again, until their own deadline.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, ColumnElement, Engine, or_, update

from .._http import Pause

__all__ = ["Lease"]


class Lease:
    """The lease held in ``column`` of its table's rows (see the module docstring);
    ``free`` is the value that means nobody holds it (NULL, or 0 in a NOT NULL column)."""

    def __init__(self, engine: Engine, column: Column[Any], *, free: int | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.engine = engine
        self.column = column
        self.free = free
        self.table = column.table
        self._clock, self._sleep = clock, sleep

    def claim(self, where: ColumnElement[bool], seconds: float) -> bool:
        """Take the lease of the row ``where`` selects (with its version condition, if
        any) for ``seconds``; False when someone holds it or the row changed."""
        now = int(self._clock())
        free = or_(self.column.is_(None), self.column < now)
        with self.engine.begin() as conn:
            claimed = conn.execute(update(self.table).where(where, free)
                                   .values({self.column.name: now + int(seconds)})).rowcount
        return bool(claimed)

    def release(self, where: ColumnElement[bool]) -> None:
        """Give the lease back (the renewal failed: let the next request try)."""
        with self.engine.begin() as conn:
            conn.execute(update(self.table).where(where).values({self.column.name: self.free}))

    def pause(self, deadline: float) -> Pause | None:
        """A wait of 50-100 ms for the holder, as a step (:mod:`ltikit._http`) for steps to
        yield: the sync driver sleeps it, an async one awaits it without holding a thread.
        ``None``: ``deadline`` (on the clock) has passed."""
        if self._clock() >= deadline:
            return None
        return Pause(0.05 + secrets.randbelow(50) / 1000, self._sleep)
