"""A SQLite table indexed by key, written through a table of rows appended without an index and
merged into it in bulk, in key order.

An index updated as each row arrives costs a page write per row when keys come in random order
(a user's table's order), and more as the table grows: 5 us of CPU a row at 120,000 keys, 14-16
at 1M, 20 at 3M (1,000-row commits). Rows appended to a table without an index cost about 1.5 us,
and merging them into the indexed table sorted by key, 100,000 at a time, about 2: 3.3, 3.8 and
4.1 us a row in all (docs/architecture.md, "Measured costs").

Rows not merged yet are found through the rowids this process appended them at, kept in memory
(hashed: 12 MB for 100,000) until it merges them.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

from service.caches.sqlite_rows import (
    append_rows,
    create_keyed_table,
    create_table,
    rows_in,
    transaction,
)


def create_appended_tables(db: sqlite3.Connection, table: str, columns: str, key: str) -> None:
    """``table`` (``columns``, indexed by ``key``) and ``{table}_unmerged``, unless they exist."""
    create_keyed_table(db, table, columns, key)
    create_table(db, unmerged_table(table), columns)


def column_names(columns: str) -> str:
    """The names of ``columns`` (as SQL: "key TEXT, body BLOB"), for a SELECT ("key, body")."""
    return ", ".join(column.split()[0] for column in columns.split(","))


def unmerged_table(table: str) -> str:
    """Where ``table``'s rows wait for their merge."""
    return f"{table}_unmerged"


class AppendedRows:
    """``table`` and its unmerged rows on ``db`` (made by ``create_appended_tables``); its owner
    holds a lock around every call."""

    def __init__(
        self,
        db: sqlite3.Connection,
        table: str,
        columns: str,
        key: str,
        merge_every: int,
        *,
        merge_after_s: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._table = table
        self.unmerged = unmerged_table(table)
        self._names = column_names(columns)
        self._key = key
        self._merge_every = merge_every
        self._merge_after_s = merge_after_s
        self._clock = clock
        self._merged_at = clock()
        self._appended: dict[int, int] = {}  # the hash of a row's identity: its rowid

    def append(self, rows: Sequence[tuple[Any, ...]], identities: Sequence[Hashable]) -> bool:
        """Commit ``rows`` (``identities``: what each is asked for by, its key's text); then merge
        if this process has appended ``merge_every`` since it last merged, or last merged
        ``merge_after_s`` ago; whether it did."""
        with transaction(self._db):
            rowids = append_rows(self._db, self.unmerged, rows)
        appended = self._appended
        appended.update(zip(map(hash, identities), rowids, strict=True))
        if len(appended) < self._merge_every and self._clock() - self._merged_at < self._merge_after_s:
            return False
        self.merge()
        return True

    def merge(self) -> None:
        """Move every unmerged row (any process's) into the indexed table, in key order; of a key
        appended twice, the newer row stays."""
        if self._db.execute(f"SELECT 1 FROM {self.unmerged} LIMIT 1").fetchone() is not None:
            with transaction(self._db, "BEGIN IMMEDIATE"):
                self._db.execute(
                    f"INSERT OR REPLACE INTO {self._table} SELECT {self._names} FROM {self.unmerged} "
                    f"ORDER BY {self._key}, rowid"
                )
                self._db.execute(f"DELETE FROM {self.unmerged}")
        self._appended.clear()
        self._merged_at = self._clock()

    def appended(
        self, identities: Sequence[Hashable], query: str, before: Sequence[Any] = ()
    ) -> Iterator[tuple[Any, ...]]:
        """``query`` (``SELECT ... FROM {unmerged} WHERE ... rowid IN``) over the rows this process
        appended for ``identities`` and has not merged. Another process's merge may have given
        such a rowid to another key's row: the caller checks what it gets."""
        appended = self._appended
        rowids = [rowid for identity in identities if (rowid := appended.get(hash(identity))) is not None]
        return rows_in(self._db, query, rowids, before)
