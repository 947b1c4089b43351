"""Where LTI 1.1 consumer keys and their shared secrets come from.

Two sources, checked in this order: a static mapping (usually Flask config, where PyLTI's
``PYLTI_CONFIG = {'consumers': {KEY: {'secret': SECRET}}}`` is accepted unchanged) and a
storage with a ``consumer_secret(key)`` method (the database, managed with
``ltikit consumers``).  Database answers are cached for a few seconds per process so the
launch path does not pay a query for every launch; removing a consumer therefore takes
effect within ``cache_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..errors import LTIConfigurationError
from ..storage.cache import MISSING, TTLCache


class ConsumerSecretSource(Protocol):
    def consumer_secret(self, key: str) -> str | None: ...


def consumers_from_config(config: Mapping[str, Any] | None) -> dict[str, str]:
    """Read ``{key: secret}`` or ``{key: {'secret': secret, ...}}`` (PyLTI's shape)."""
    result: dict[str, str] = {}
    for key, value in (config or {}).items():
        secret = value.get("secret") if isinstance(value, Mapping) else value
        if not isinstance(secret, str) or not secret:
            raise LTIConfigurationError(f"LTI consumer {key!r} has no secret configured.",
                                        reason="consumer_without_secret")
        result[str(key)] = secret
    return result


class ConsumerRegistry:
    """Looks up the shared secret of a consumer key."""

    def __init__(self, static: Mapping[str, str] | None = None,
                 source: ConsumerSecretSource | None = None, *, cache_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._static = dict(static or {})
        self._source = source
        # Unknown keys are cached too (as None): they are attacker-chosen, so bounded.
        self._cache: TTLCache[str, str | None] = TTLCache(1000, cache_seconds, clock=clock)

    def secret_for(self, key: str) -> str | None:
        secret = self._static.get(key)
        if secret is not None or self._source is None:
            return secret
        cached = self._cache.get(key, MISSING)
        if cached is not MISSING:
            return cached
        return self._cache.put(key, self._source.consumer_secret(key))

    def forget(self, key: str | None = None) -> None:
        """Drop cached answers (all, or one key's) after changing the database."""
        if key is None:
            self._cache.clear()
        else:
            self._cache.pop(key)
