"""The answer log's SQLite file: rows appended unsorted, merged into a table indexed by key in bulk.

An index of keys updated as each row arrives costs a page write per row when keys come in random
order (a user's table's order), and more as the log grows: 5 us of CPU a row at 120,000 keys,
14-16 at 1M, 20 at 3M (1,000-row commits). Rows appended to a table without an index cost about
1.5 us, and merging them into the indexed table sorted by key, 100,000 at a time, about 2: 3.3,
3.8 and 4.1 us a row in all (docs/architecture.md, "Measured costs").

Rows not merged yet are found through where this process appended them (kept in memory, at most
``MERGE_EVERY``); once another connection has written the file (Dask workers on one machine share
it), by reading every unmerged row as well, until this process merges them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from service.caches.sqlite_rows import (
    append_rows,
    create_keyed_table,
    create_table,
    open_shared,
    rows_in,
    transaction,
)

MERGE_EVERY = 100_000
COLUMNS = "key TEXT, attempts INTEGER, error TEXT, status INTEGER, message TEXT, body BLOB"
_NAMES = "key, attempts, error, status, message, body"

LogRow = tuple[Any, ...]  # as COLUMNS


class AnswerLogFile:
    """``outcomes`` (indexed by key) and ``unmerged`` (appended); every method blocks and may be
    called from any thread."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        # Batches on other processes write it too (Dask workers on one machine).
        self._db = open_shared(path, timeout_s=60, prepare=_create_tables)
        self._appended: dict[int, int] = {}  # the hash of a key's text: its row in ``unmerged``
        self._others_unmerged = False  # rows another connection appended may be unmerged
        self._seen_version = 0
        self.merge()  # a killed run's rows: found through the index from now on

    def append(self, rows: Sequence[LogRow]) -> None:
        """Commit ``rows``; then, once this process has appended ``MERGE_EVERY`` keys since it last
        merged, merge."""
        with self._lock:
            with transaction(self._db):
                rowids = append_rows(self._db, "unmerged", rows)
            appended = self._appended
            for row, rowid in zip(rows, rowids, strict=True):
                appended[hash(row[0])] = rowid
        if len(appended) >= MERGE_EVERY:
            self.merge()

    def merge(self) -> None:
        """Move every unmerged row (any process's) into ``outcomes``, in key order."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM unmerged LIMIT 1").fetchone() is not None:
                with transaction(self._db, "BEGIN IMMEDIATE"):
                    self._db.execute(
                        f"INSERT OR REPLACE INTO outcomes SELECT {_NAMES} FROM unmerged ORDER BY key, rowid"
                    )
                    self._db.execute("DELETE FROM unmerged")
            self._appended.clear()
            self._others_unmerged = False
            self._seen_version = self._data_version()

    def find(self, texts: Sequence[str]) -> list[LogRow]:
        """The rows the file holds for ``texts`` (keys' texts); a key found twice (asked by two
        processes at once), its newer row last."""
        with self._lock:
            if self._data_version() != self._seen_version:
                self._others_unmerged = True  # until this process merges them
            found = list(self._indexed(texts))
            appended = self._appended
            rowids = [rowid for text in texts if (rowid := appended.get(hash(text))) is not None]
            if rowids:
                wanted = set(texts)  # a row another process merged away may hold another key now
                found.extend(row for row in self._unmerged_at(rowids) if row[0] in wanted)
            if self._others_unmerged:
                found.extend(
                    self._db.execute(
                        f"SELECT {_NAMES} FROM unmerged WHERE key IN (SELECT value FROM json_each(?))",
                        [json.dumps(texts)],
                    )
                )
            return found

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _indexed(self, texts: Sequence[str]) -> Iterator[LogRow]:
        return rows_in(self._db, f"SELECT {_NAMES} FROM outcomes WHERE key IN", texts)

    def _unmerged_at(self, rowids: list[int]) -> Iterator[LogRow]:
        return rows_in(self._db, f"SELECT {_NAMES} FROM unmerged WHERE rowid IN", rowids)

    def _data_version(self) -> int:
        """Changes when another connection commits to the file (not when this one does)."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])


def _create_tables(db: sqlite3.Connection) -> None:
    create_keyed_table(db, "outcomes", COLUMNS, "key")
    create_table(db, "unmerged", COLUMNS)


def count_keys(db: sqlite3.Connection) -> int:
    """Distinct keys the answer log open as ``db`` holds, merged or not."""
    merged = int(db.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0])
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'unmerged'").fetchone() is None:
        return merged  # a log from a release that merged nothing
    unmerged = db.execute(
        "SELECT COUNT(DISTINCT key) FROM unmerged WHERE key NOT IN (SELECT key FROM outcomes)"
    ).fetchone()[0]
    return merged + int(unmerged)
