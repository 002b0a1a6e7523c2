"""The answer log's SQLite file: ``outcomes``, indexed by key, written through rows appended and
merged into it in bulk (``service.caches.appended_rows``: what that saves).

Rows not merged yet are found through where this process appended them; once another connection
has written the file (Dask workers on one machine share it), also by reading every unmerged row,
until this process merges them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.caches.appended_rows import AppendedRows, column_names, create_appended_tables, unmerged_table
from service.caches.sqlite_rows import open_shared, rows_in

MERGE_EVERY = 100_000
COLUMNS = "key TEXT, attempts INTEGER, error TEXT, status INTEGER, message TEXT, body BLOB"
_NAMES = column_names(COLUMNS)
_UNMERGED = unmerged_table("outcomes")

LogRow = tuple[Any, ...]  # as COLUMNS


class AnswerLogFile:
    """The file; every method blocks and may be called from any thread."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        # Batches on other processes write it too (Dask workers on one machine).
        self._db = open_shared(path, timeout_s=60, prepare=_create_tables)
        self._rows = AppendedRows(self._db, "outcomes", COLUMNS, "key", MERGE_EVERY)
        self._others_unmerged = False  # rows another connection appended may be unmerged
        self._seen_version = 0
        try:
            self.merge()  # a killed run's rows: found through the index from now on
        except BaseException:
            self._db.close()
            raise

    def append(self, rows: Sequence[LogRow]) -> None:
        """Commit ``rows`` (merging every unmerged row now and then)."""
        with self._lock:
            version = self._data_version()
            if self._rows.append(rows, [row[0] for row in rows]):
                self._merged(version)

    def merge(self) -> None:
        """Move every unmerged row (any process's) into ``outcomes``."""
        with self._lock:
            version = self._data_version()
            self._rows.merge()
            self._merged(version)

    def _merged(self, version: int) -> None:
        """Every row appended before ``version`` (read before the merge began) is merged: rows
        another connection appends later change the version, and are read in full till the next."""
        self._others_unmerged = False
        self._seen_version = version

    def find(self, texts: Sequence[str]) -> list[LogRow]:
        """The rows the file holds for ``texts`` (keys' texts); a key found twice (asked by two
        processes at once), its newer row last."""
        with self._lock:
            if self._data_version() != self._seen_version:
                self._others_unmerged = True  # until this process merges them
            found = list(rows_in(self._db, f"SELECT {_NAMES} FROM outcomes WHERE key IN", texts))
            query = f"SELECT {_NAMES} FROM {_UNMERGED} WHERE rowid IN"
            if appended := list(self._rows.appended(texts, query)):
                wanted = set(texts)  # a rowid another process's merge reused may hold another key
                found.extend(row for row in appended if row[0] in wanted)
            if self._others_unmerged:
                found.extend(
                    self._db.execute(
                        f"SELECT {_NAMES} FROM {_UNMERGED} WHERE key IN (SELECT value FROM json_each(?))",
                        [json.dumps(texts)],
                    )
                )
            return found

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _data_version(self) -> int:
        """Changes when another connection commits to the file (not when this one does)."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])


def _create_tables(db: sqlite3.Connection) -> None:
    create_appended_tables(db, "outcomes", COLUMNS, "key")


def count_keys(db: sqlite3.Connection) -> int:
    """Distinct keys the answer log open as ``db`` holds, merged or not."""
    merged = int(db.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0])
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [_UNMERGED]).fetchone() is None:
        return merged  # a log from a release that merged nothing
    unmerged = db.execute(
        f"SELECT COUNT(DISTINCT key) FROM {_UNMERGED} WHERE key NOT IN (SELECT key FROM outcomes)"
    ).fetchone()[0]
    return merged + int(unmerged)
