"""The response cache on Redis: one store for processes on several machines (serve, Dask workers).

What is kept, and for how long, is ``service.caches.entries``'s rule, as for the SQLite file.
Each entry is one Redis string, ``enrich:<namespace>:<key>``, expiring by itself (Redis drops it
at its TTL); the value's first byte says whether it is an answer or a remembered client error.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from service.caches.entries import Entry, EntryKind, key_text, outcome_of
from service.caches.store import CacheStatistics
from service.calling.outcome import Outcome
from service.calling.requests import Key
from service.errors import CacheUnavailableError

PREFIX = "enrich:"
# The first byte of a value says what it holds (a Redis string has no second field for it).
_KIND_BYTE = {EntryKind.ANSWER: b"A", EntryKind.CLIENT_ERROR: b"N"}
_KIND_OF_BYTE = {byte: kind for kind, byte in _KIND_BYTE.items()}
_CHUNK = 1000  # keys per MGET / pipeline round trip
_log = logging.getLogger("enrich.cache")


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
        try:
            self._client.ping()
        except redis.RedisError as exc:
            self._client.close()
            raise CacheUnavailableError(
                f"the response cache at {self.url} cannot be reached ({type(exc).__name__}: "
                f"{without_password(str(exc))}); check --cache-dir, or run with --no-cache"
            ) from None
        self._lost = False
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

    @contextlib.contextmanager
    def _unless_lost(self) -> Iterator[None]:
        """Redis lost mid-job: say so once and go on without the cache (the job's answer log still
        keeps it from asking a key twice)."""
        try:
            yield
        except redis.RedisError as exc:
            self._lost = True
            _log.warning(
                "enrich: warning: the response cache at %s failed (%s: %s); going on without it",
                self.url,
                type(exc).__name__,
                without_password(str(exc)),
            )

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Outcome]:
        """Unexpired outcomes for those of ``keys`` that are cached (none once Redis was lost)."""
        found: dict[Key, Outcome] = {}
        if not self._lost:
            with self._unless_lost():
                self._get_into(found, keys)
        return found

    def _get_into(self, found: dict[Key, Outcome], keys: Sequence[Key]) -> None:
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            for key, value in zip(chunk, self._client.mget([self._name(k) for k in chunk]), strict=True):
                if value is None:
                    continue
                kind = _KIND_OF_BYTE.get(value[:1])
                outcome = None if kind is None else outcome_of(kind, value[1:])
                if outcome is not None:
                    found[key] = outcome

    def put_entries(self, entries: Sequence[Entry]) -> None:
        """Store ``entries``, each expiring by itself after its kind's time to live (nothing once
        Redis was lost)."""
        if not self._lost:
            with self._unless_lost():
                self._put(entries)

    def _put(self, entries: Sequence[Entry]) -> None:
        pipeline = self._client.pipeline(transaction=False)
        for stored, (text, kind, body) in enumerate(entries, start=1):
            ttl_ms = self._ttl_ms if kind == EntryKind.ANSWER else self._negative_ttl_ms
            pipeline.set(f"{PREFIX}{self._namespace}:{text}", _KIND_BYTE[kind] + body, px=ttl_ms)
            if stored % _CHUNK == 0:
                pipeline.execute()
        pipeline.execute()

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
                answers += value[:1] == _KIND_BYTE[EntryKind.ANSWER]
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
