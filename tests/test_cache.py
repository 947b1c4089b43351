"""ltikit.storage.cache.TTLCache: what the hot path keeps in memory is bounded and expires."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ltikit.storage.cache import MISSING, TTLCache
from ltikit.testing import Clock


def test_entries_expire_after_their_ttl_or_their_own_expiry():
    clock = Clock(1000)
    cache: TTLCache[str, str | None] = TTLCache(10, 5, clock=clock)
    cache.put("a", "secret")
    cache.put("unknown", None)  # an unknown key is worth remembering too
    cache.put("token", "t", expires_at=1002)
    assert cache.get("a") == "secret" and cache.get("unknown", MISSING) is None
    assert cache.get("never", MISSING) is MISSING
    clock.advance(2)
    assert cache.get("token") is None and cache.get("a") == "secret"
    clock.advance(3)
    assert cache.get("a") is None and cache.get("unknown", MISSING) is MISSING


def test_attacker_chosen_keys_cannot_grow_it_and_the_recently_used_stay():
    cache: TTLCache[str, int] = TTLCache(100)
    cache.put("registered", 1)
    for i in range(10_000):
        cache.put(f"made-up-{i}", i)
        cache.get("registered")  # looked up on every launch
    assert len(cache) == 100 and cache.get("registered") == 1


def test_threads_share_it_safely():
    cache: TTLCache[int, int] = TTLCache(50)

    def work(n):
        for i in range(2000):
            cache.put((n * i) % 120, i)
            cache.get(i % 120)
            if i % 500 == 0:
                cache.pop(i % 120)
        return True

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(8)))
    assert len(cache) <= 50
