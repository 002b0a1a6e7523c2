"""The response cache in one SQLite file (WAL): safe for several processes on one machine.

What is kept, and for how long, is ``service.caches.entries``'s rule; this module only stores it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from service.caches.appended_rows import AppendedRows, create_appended_tables, unmerged_table
from service.caches.entries import Entry, EntryKind, key_text, outcome_of
from service.caches.sqlite_rows import open_shared, rows_in
from service.caches.store import CacheStatistics
from service.calling.outcome import Outcome
from service.calling.requests import Key
from service.files import private_folder

# SQLite's primary result codes for a damaged file, and for a file that is not a database at all.
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_log = logging.getLogger("enrich.cache")
MERGE_EVERY = 100_000  # entries appended before they go into the indexed table (appended_rows)
# ... or a store this long after the last merge: a long-lived process (enrich api, serve) storing
# slowly shares its entries with the other processes within a minute of its next store.
MERGE_AFTER_S = 60.0
COLUMNS = "namespace TEXT, key TEXT, kind INTEGER, expires REAL, body BLOB"
_UNMERGED = unmerged_table("answers")


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Whether ``exc`` says the file is damaged (not busy, locked or read-only)."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _CORRUPT_CODES


def _unusable(path: Path, exc: sqlite3.Error) -> OSError:
    return OSError(f"{path}: cannot use the response cache ({exc})")


def _connect(path: Path) -> sqlite3.Connection:
    return open_shared(path, timeout_s=30, prepare=_create_answers)


def _create_answers(db: sqlite3.Connection) -> None:
    create_appended_tables(db, "answers", COLUMNS, "namespace, key")


def _start_afresh(path: Path, exc: sqlite3.DatabaseError) -> sqlite3.Connection:
    """Move the corrupt file (and its -wal, -shm) aside, say so once, open an empty cache."""
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    _log.warning(
        "enrich: warning: the response cache %s is corrupt (%s); moved to %s, continuing with an empty cache",
        path,
        exc,
        aside,
    )
    return _connect(path)


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
        self.path = path
        self._namespace = namespace
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._now = now
        self._lock = threading.Lock()
        try:
            self._use(_connect(path))
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise _unusable(path, exc) from None
            self._use(_start_afresh(self.path, exc))
        try:
            with self._lock, self._recovering():
                self._rows.merge()  # a killed job's entries: found through the index from now on
        except OSError:
            self._db.close()
            raise

    def _use(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._rows = AppendedRows(
            db,
            "answers",
            COLUMNS,
            "namespace, key",
            MERGE_EVERY,
            merge_after_s=MERGE_AFTER_S,
            clock=self._now,
        )

    @contextlib.contextmanager
    def _recovering(self) -> Iterator[None]:
        """A read or write that finds the file corrupt: the cache starts afresh, the job goes on
        (what the failed call was to read is asked for, what it was to write is lost). Any other
        failure (a full disk, a lock held past the timeout) is the machine's: an ``OSError``."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise _unusable(self.path, exc) from None
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._use(_start_afresh(self.path, exc))

    @property
    def where(self) -> str:
        """The file's path."""
        return str(self.path)

    def close(self) -> None:
        """Merge this job's entries (so that jobs running now find them too), close the file."""
        with self._lock:
            try:
                with contextlib.suppress(sqlite3.Error):  # left unmerged: the next open merges them
                    self._rows.merge()
            finally:
                self._db.close()

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Outcome]:
        """Unexpired outcomes for those of ``keys`` that are cached."""
        by_text = {key_text(k): k for k in keys}
        texts = list(by_text)
        found: dict[Key, Outcome] = {}
        now = self._now()
        unexpired = [self._namespace, now]
        with self._lock, self._recovering():
            indexed = "SELECT key, kind, body FROM answers WHERE namespace = ? AND expires > ? AND key IN"
            rows = list(rows_in(self._db, indexed, texts, unexpired))
            unmerged = (
                f"SELECT key, kind, body FROM {_UNMERGED} WHERE namespace = ? AND expires > ? AND rowid IN"
            )
            # Newer than an indexed row of the same key; a rowid another process's merge gave to
            # another key's entry holds an entry not asked for, or the right one.
            rows.extend(row for row in self._rows.appended(texts, unmerged, unexpired) if row[0] in by_text)
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
        with self._lock, self._recovering():
            self._rows.append(rows, [row[1] for row in rows])

    def statistics(self) -> CacheStatistics:
        """Counts over the whole file (every namespace)."""
        now = self._now()
        counts: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)  # a corrupt file, moved aside, leaves
        with self._lock, self._recovering():
            self._rows.merge()
            counts = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(kind = ?), 0), COALESCE(SUM(kind = ?), 0), "
                "COALESCE(SUM(expires <= ?), 0), COUNT(DISTINCT namespace) FROM answers",
                [int(EntryKind.ANSWER), int(EntryKind.CLIENT_ERROR), now],
            ).fetchone()
        entries, answers, negative, expired, namespaces = counts
        return CacheStatistics(
            str(self.path), entries, answers, negative, expired, namespaces, self.path.stat().st_size
        )

    def clear(self, *, expired_only: bool = False) -> int:
        """Delete every entry (or only expired ones); returns how many."""
        removed = 0  # a corrupt file is moved aside whole: nothing to delete in the new one
        with self._lock, self._recovering():
            self._rows.merge()
            if expired_only:
                cursor = self._db.execute("DELETE FROM answers WHERE expires <= ?", [self._now()])
            else:
                cursor = self._db.execute("DELETE FROM answers")
            removed = cursor.rowcount
            self._db.execute("VACUUM")
        return removed
