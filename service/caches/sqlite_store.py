"""The response cache in one SQLite file (WAL): safe for several processes on one machine.

What is kept, and for how long, is ``service.caches.entries``'s rule; this module only stores it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from service.caches.entries import Entry, EntryKind, key_text, outcome_of
from service.caches.store import CacheStatistics
from service.calling.outcome import Outcome
from service.calling.requests import Key
from service.files import private_folder, touch_private

_CHUNK = 500  # SQLite's default limit on host parameters is 999


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
        private_folder(path.parent)
        touch_private(path)  # SQLite gives its -wal and -shm files the database file's mode
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
                    outcome = outcome_of(kind, body)
                    if outcome is not None:
                        found[by_text[text]] = outcome
        return found

    def put_entries(self, entries: Sequence[Entry]) -> None:
        """Store ``entries``, each expiring after its kind's time to live."""
        now = self._now()
        rows: list[tuple[Any, ...]] = [
            (
                self._namespace,
                text,
                int(kind),
                now + (self._ttl if kind == EntryKind.ANSWER else self._negative_ttl),
                body,
            )
            for text, kind, body in entries
        ]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def statistics(self) -> CacheStatistics:
        """Counts over the whole file (every namespace)."""
        now = self._now()
        with self._lock:
            entries, answers, negative, expired, namespaces = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(kind = ?), 0), COALESCE(SUM(kind = ?), 0), "
                "COALESCE(SUM(expires <= ?), 0), COUNT(DISTINCT namespace) FROM answers",
                [int(EntryKind.ANSWER), int(EntryKind.CLIENT_ERROR), now],
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
