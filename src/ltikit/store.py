"""Everything ltikit keeps, behind one object per app: :class:`Store`.

One SQLAlchemy engine holds every ltikit table (SQLite by default, PostgreSQL in
production).  The store owns it and the repositories that read and write those tables, so
an adapter (Flask today, Starlette next) asks the store, not the engine:

* ``store.sql``: launches with their nonces, and LTI 1.1 consumers
  (:class:`~ltikit.storage.SQLStorage`, on the hot path's raw-cursor statements);
* ``store.registrations``: the LTI 1.3 platforms registered with the tool;
* ``store.tool_keys``: the tool's LTI 1.3 signing keys (private keys encrypted);
* ``store.registration_links``: single-use LTI Dynamic Registration links;
* ``store.oauth_states``: Canvas authorizations in progress;
* :meth:`Store.canvas_tokens`, :meth:`Store.jwks` and :meth:`Store.service_tokens`: the
  Canvas tokens, the platforms' key sets and the LTI Advantage service tokens, each with
  the deadlines and margins the tool is configured with.

Every repository shares the store's clock (tests pass :class:`ltikit.testing.Clock`),
its encryption keys (:class:`~ltikit.crypto.SecretBox`: tokens and keys are never written
in clear), the one lease protocol of :mod:`ltikit.storage.lease` for tokens renewed by one
worker at a time, and the bounded in-process cache of :mod:`ltikit.storage.cache`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests
from sqlalchemy import Engine

from .canvas.tokens import CanvasTokens, OAuthStates
from .crypto import SecretBox
from .lti13.dynamic_registration import RegistrationLinks
from .lti13.jwks import JWKSCache
from .lti13.registrations import Registrations
from .lti13.services import ServiceTokens
from .lti13.tool_keys import ToolKeys
from .storage.sql import SQLStorage

__all__ = ["Store"]


class Store:
    """The database of one tool (see the module docstring).

    ``database``: a URL, an engine, or an :class:`~ltikit.storage.SQLStorage`.
    ``encryption_keys``: the keys tokens and private keys are encrypted with (newest
    first; ``LTIKIT_ENCRYPTION_KEYS``), needed as soon as anything secret is kept.
    """

    def __init__(self, database: str | Engine | SQLStorage, *,
                 encryption_keys: Sequence[str] | str | SecretBox | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.box = encryption_keys if isinstance(encryption_keys, SecretBox) else \
            SecretBox(encryption_keys) if encryption_keys else None
        self.sql = database if isinstance(database, SQLStorage) else \
            SQLStorage(database, secret_box=self.box, clock=clock)
        if self.box is None:
            self.box = self.sql.secret_box
        self.engine: Engine = self.sql.engine
        self.clock = clock
        self.registrations = Registrations(self.engine)

    def secret_box(self) -> SecretBox:
        """The encryption keys, or a clear :class:`~ltikit.errors.LTIConfigurationError`."""
        if self.box is None:
            return SecretBox([])  # raises no_encryption_key, with how to make a key
        return self.box

    @functools.cached_property
    def tool_keys(self) -> ToolKeys:
        return ToolKeys(self.engine, self.secret_box(), clock=self.clock)

    @functools.cached_property
    def registration_links(self) -> RegistrationLinks:
        return RegistrationLinks(self.engine, clock=self.clock)

    @functools.cached_property
    def oauth_states(self) -> OAuthStates:
        return OAuthStates(self.engine, self.secret_box(), clock=self.clock)

    def canvas_tokens(self, **options: Any) -> CanvasTokens:
        """Canvas tokens (``refresh_margin``, ``wait_seconds``: see :class:`CanvasTokens`)."""
        return CanvasTokens(self.engine, self.secret_box(), clock=self.clock, **options)

    def jwks(self, *, session: requests.Session | None = None, **options: Any) -> JWKSCache:
        """The platforms' key sets (``timeout``, ``refetch_interval``: see
        :class:`JWKSCache`)."""
        return JWKSCache(self.engine, session=session, clock=self.clock, **options)

    def service_tokens(self, **options: Any) -> ServiceTokens:
        """LTI Advantage access tokens, signed with :attr:`tool_keys` (``timeout``: see
        :class:`ServiceTokens`)."""
        keys = self.tool_keys
        return ServiceTokens(self.engine, keys, keys.box, clock=self.clock, **options)

    def __repr__(self) -> str:
        return f"<Store {self.engine.url.render_as_string(hide_password=True)}>"
