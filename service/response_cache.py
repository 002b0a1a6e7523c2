"""A persistent key -> answer store shared by jobs with the same API spec (SQLite, one file).

Answers are kept for ``[cache].ttl``; final client errors (404, 400, 422...) for the shorter
``negative_ttl``; anything that might succeed later (5xx, timeouts, 401/403/429) is not kept.
Reads and writes go a frame at a time, in a worker thread, so the hot path never waits on disk.
The namespace is a digest of the spec's request section and key (secrets unresolved), so two
specs calling the same API the same way share answers, and a changed request does not.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from service.errors import ErrorClass
from service.outcome import Outcome
from service.request_builder import Key
from service.spec import Spec

# Client errors worth remembering: asking again gives the same answer. 401/403 (credentials),
# 408/425/429 (timing) and every 5xx may change, so they are never cached.
NEGATIVE_STATUSES = frozenset({400, 404, 405, 410, 414, 422})

_OK, _NEGATIVE = 0, 1
_CHUNK = 500  # SQLite's default limit on host parameters is 999


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """What the cache file holds."""

    path: str
    entries: int
    answers: int
    negative: int
    expired: int
    namespaces: int
    size_bytes: int


def cache_namespace(spec: Spec) -> str:
    """A digest of what decides an answer: the request section, the key columns, bulk matching."""
    source = spec.source
    identity = {
        "api": source.api.model_dump(mode="json", exclude={"timeout_s"}),
        "key": source.input.key,
        "bulk": None if source.bulk is None else source.bulk.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def is_redis_url(location: object) -> bool:
    """Whether a cache location names a Redis (``redis://``, ``rediss://``) rather than a folder."""
    return isinstance(location, str) and location.startswith(("redis://", "rediss://"))


def key_text(key: Key) -> str:
    """A key's stable text form, as stored."""
    return orjson.dumps(list(key), default=str).decode()


class AnswerStore(Protocol):
    """Where answers are cached: this file, or Redis (``service.redis_cache``). Blocking methods."""

    @property
    def where(self) -> str:
        """The store's location, fit to print."""
        ...

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Outcome]: ...

    def put_many(self, outcomes: Iterable[tuple[Key, Outcome]]) -> int: ...

    def statistics(self) -> CacheStatistics: ...

    def clear(self, *, expired_only: bool = False) -> int: ...

    def close(self) -> None: ...


class ResponseCache:
    """The cache file; methods are blocking (call them from a worker thread)."""

    def __init__(
        self,
        path: Path,
        namespace: str,
        *,
        ttl_s: float,
        negative_ttl_s: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._namespace = namespace
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._now = now
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers in other jobs do not block a writer
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (namespace TEXT, key TEXT, kind INTEGER, "
            "expires REAL, body BLOB, PRIMARY KEY (namespace, key)) WITHOUT ROWID"
        )

    @property
    def where(self) -> str:
        """The file's path."""
        return str(self.path)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Outcome]:
        """Unexpired outcomes for those of ``keys`` that are cached."""
        by_text = {key_text(k): k for k in keys}
        texts = list(by_text)
        found: dict[Key, Outcome] = {}
        now = self._now()
        with self._lock:
            for start in range(0, len(texts), _CHUNK):
                chunk = texts[start : start + _CHUNK]
                rows = self._db.execute(
                    f"SELECT key, kind, body FROM answers WHERE namespace = ? AND expires > ? "
                    f"AND key IN ({','.join('?' * len(chunk))})",
                    [self._namespace, now, *chunk],
                ).fetchall()
                for text, kind, body in rows:
                    if kind == _OK:
                        found[by_text[text]] = Outcome(orjson.loads(body), 0)
                    else:
                        message = body.decode()
                        found[by_text[text]] = Outcome(None, 0, ErrorClass.HTTP_4XX, f"{message} (cached)")
        return found

    def put_many(self, outcomes: Iterable[tuple[Key, Outcome]]) -> int:
        """Store the cacheable ones among ``outcomes``; returns how many were stored."""
        now = self._now()
        rows: list[tuple[Any, ...]] = []
        for key, outcome in outcomes:
            if outcome.error is None:
                rows.append(
                    (self._namespace, key_text(key), _OK, now + self._ttl, orjson.dumps(outcome.answer))
                )
            elif outcome.error is ErrorClass.HTTP_4XX and outcome.status in NEGATIVE_STATUSES:
                body = (outcome.message or "").encode()
                rows.append((self._namespace, key_text(key), _NEGATIVE, now + self._negative_ttl, body))
        if rows:
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
        return len(rows)

    def statistics(self) -> CacheStatistics:
        """Counts over the whole file (every namespace)."""
        now = self._now()
        with self._lock:
            entries, answers, negative, expired, namespaces = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(kind = 0), 0), COALESCE(SUM(kind = 1), 0), "
                "COALESCE(SUM(expires <= ?), 0), COUNT(DISTINCT namespace) FROM answers",
                [now],
            ).fetchone()
        return CacheStatistics(
            str(self.path), entries, answers, negative, expired, namespaces, self.path.stat().st_size
        )

    def clear(self, *, expired_only: bool = False) -> int:
        """Delete every entry (or only expired ones); returns how many."""
        with self._lock:
            if expired_only:
                cursor = self._db.execute("DELETE FROM answers WHERE expires <= ?", [self._now()])
            else:
                cursor = self._db.execute("DELETE FROM answers")
            self._db.execute("VACUUM")
            return cursor.rowcount
