"""The response cache on Redis: one store for processes on several machines (serve, Dask workers).

Same contract as the SQLite file (``service.response_cache``): answers kept for ``ttl``, final
client errors for ``negative_ttl``, per spec namespace. Each entry is one Redis string,
``enrich:<namespace>:<key>``, expiring by itself (Redis drops it at its TTL); the value's first
byte says whether it is an answer or a remembered client error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis

from service.errors import ErrorClass
from service.outcome import Outcome
from service.request_builder import Key
from service.response_cache import NEGATIVE_STATUSES, CacheStatistics, is_redis_url, key_text

__all__ = ["RedisResponseCache", "is_redis_url", "without_password"]

PREFIX = "enrich:"
_ANSWER, _NEGATIVE = b"A", b"N"
_CHUNK = 1000  # keys per MGET / pipeline round trip


def without_password(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    split = urlsplit(url)
    if split.password is None:
        return url
    user = split.username or ""
    host = split.hostname or ""
    port = f":{split.port}" if split.port else ""
    return urlunsplit(split._replace(netloc=f"{user}:***@{host}{port}"))


class RedisResponseCache:
    """The cache in the Redis at ``url`` (``redis://host:port/db``); methods are blocking."""

    def __init__(self, url: str, namespace: str, *, ttl_s: float, negative_ttl_s: float) -> None:
        self.url = without_password(url)  # for display: the password stays in the client only
        self._client: Any = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
        self._namespace = namespace
        self._ttl_ms = max(1, math.ceil(ttl_s * 1000))
        self._negative_ttl_ms = max(1, math.ceil(negative_ttl_s * 1000))

    @property
    def where(self) -> str:
        """The Redis URL, without its password."""
        return self.url

    def _name(self, key: Key) -> str:
        return f"{PREFIX}{self._namespace}:{key_text(key)}"

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Outcome]:
        """Unexpired outcomes for those of ``keys`` that are cached."""
        found: dict[Key, Outcome] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            for key, value in zip(chunk, self._client.mget([self._name(k) for k in chunk]), strict=True):
                if value is None:
                    continue
                kind, body = value[:1], value[1:]
                if kind == _ANSWER:
                    found[key] = Outcome(orjson.loads(body), 0)
                else:
                    found[key] = Outcome(None, 0, ErrorClass.HTTP_4XX, f"{body.decode()} (cached)")
        return found

    def put_many(self, outcomes: Iterable[tuple[Key, Outcome]]) -> int:
        """Store the cacheable ones among ``outcomes``; returns how many were stored."""
        stored = 0
        pipeline = self._client.pipeline(transaction=False)
        for key, outcome in outcomes:
            if outcome.error is None:
                pipeline.set(self._name(key), _ANSWER + orjson.dumps(outcome.answer), px=self._ttl_ms)
            elif outcome.error is ErrorClass.HTTP_4XX and outcome.status in NEGATIVE_STATUSES:
                body = _NEGATIVE + (outcome.message or "").encode()
                pipeline.set(self._name(key), body, px=self._negative_ttl_ms)
            else:
                continue
            stored += 1
            if stored % _CHUNK == 0:
                pipeline.execute()
        pipeline.execute()
        return stored

    def _names(self) -> Iterable[bytes]:
        return self._client.scan_iter(match=f"{PREFIX}*", count=_CHUNK)  # type: ignore[no-any-return]

    def statistics(self) -> CacheStatistics:
        """Counts over every namespace (expired entries are already gone from Redis)."""
        entries = answers = 0
        namespaces: set[bytes] = set()
        names = list(self._names())
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            for name, value in zip(chunk, self._client.mget(chunk), strict=True):
                if value is None:
                    continue
                entries += 1
                answers += value[:1] == _ANSWER
                namespaces.add(name.split(b":", 2)[1])
        return CacheStatistics(self.url, entries, answers, entries - answers, 0, len(namespaces), 0)

    def clear(self, *, expired_only: bool = False) -> int:
        """Delete every entry (expired ones are gone already); returns how many."""
        if expired_only:
            return 0
        names = list(self._names())
        for start in range(0, len(names), _CHUNK):
            self._client.delete(*names[start : start + _CHUNK])
        return len(names)
