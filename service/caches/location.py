"""Where a response cache is: a folder (its SQLite file) or a Redis URL; opening it."""

from __future__ import annotations

from pathlib import Path

from service.caches.sqlite_store import ResponseCache
from service.caches.store import AnswerStore, cache_namespace
from service.spec import Spec

CACHE_FILE = "responses.sqlite"


def is_redis_url(location: object) -> bool:
    """Whether a cache location names a Redis (``redis://``, ``rediss://``) rather than a folder."""
    return isinstance(location, str) and location.startswith(("redis://", "rediss://"))


def open_store(location: Path | str, namespace: str, *, ttl_s: float, negative_ttl_s: float) -> AnswerStore:
    """The cache at ``location``: a folder (its SQLite file), or a ``redis://`` URL."""
    if is_redis_url(location):
        from service.caches.redis_store import RedisResponseCache  # 0.1 s to import: only this path

        return RedisResponseCache(str(location), namespace, ttl_s=ttl_s, negative_ttl_s=negative_ttl_s)
    return ResponseCache(Path(location) / CACHE_FILE, namespace, ttl_s=ttl_s, negative_ttl_s=negative_ttl_s)


def open_cache(location: Path | str | None, spec: Spec) -> AnswerStore | None:
    """The response cache for ``spec`` at ``location`` (a folder or a ``redis://`` URL); None when
    caching is off (no location, or ``[cache] enabled = false``)."""
    if location is None or not spec.cache.enabled:
        return None
    return open_store(
        location, cache_namespace(spec), ttl_s=spec.cache.ttl, negative_ttl_s=spec.cache.negative_ttl
    )
