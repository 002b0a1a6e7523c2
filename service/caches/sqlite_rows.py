"""SQLite tables keyed by text, written many rows at a time from a thread beside a busy event loop.

Keys come in any order (a user's table is not sorted), and a table ordered by its key (SQLite's
``WITHOUT ROWID``) rewrites a page of whole rows per row when they do: 38 us of CPU a row at 1M
keys in 1,000-row commits, 3 us for keys in order. Rows appended in arrival order and found
through a unique index of the key alone: 15 us (docs/architecture.md, "Measured costs").

``executemany`` steps SQLite once per row and lets go of the GIL around every step; from a
thread, each row then waits for the busy event loop to hand the GIL back (up to the switch
interval, 5 ms). Committing 1,000 rows that way took 0.75-1.4 s against a busy loop, and what
waits for a commit of the job's answer log is what a kill loses; as multi-row INSERTs (one step
for up to 166 rows), 50 ms (docs/architecture.md, "Measured costs").
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from service.files import touch_private

# The fewest host parameters a statement may have in any SQLite build (999 before 3.32).
HOST_PARAMETERS = 999
_IN_CHUNK = 500  # values of one ``IN (...)``, beside a few other parameters


def open_shared(
    path: Path, *, timeout_s: float, prepare: Callable[[sqlite3.Connection], None]
) -> sqlite3.Connection:
    """``path`` as a file several threads and processes write, made ready by ``prepare`` (its
    tables): WAL (readers do not block the writer), commits that survive a kill of the process
    (``synchronous=NORMAL``), each statement its own transaction unless one is begun; a file made
    here is its owner's only. Closed again if it cannot be made ready."""
    touch_private(path)  # SQLite gives its -wal and -shm files the database file's mode
    db = sqlite3.connect(path, check_same_thread=False, timeout=timeout_s, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        prepare(db)
    except BaseException:
        db.close()
        raise
    return db


def create_keyed_table(db: sqlite3.Connection, table: str, columns: str, key: str) -> None:
    """Create ``table`` (``columns``, as SQL) with rows appended and a unique index of ``key`` (a
    column or columns), unless it exists: a file from an earlier release, whose table is ordered by
    its key, is used as it is (alike, only slower to add to)."""
    _create(
        db,
        table,
        f"CREATE TABLE {table} ({columns})",
        f"CREATE UNIQUE INDEX {table}_by_key ON {table} ({key})",
    )


def create_table(db: sqlite3.Connection, table: str, columns: str) -> None:
    """Create ``table`` (``columns``, as SQL; rows appended, no index) unless it exists."""
    _create(db, table, f"CREATE TABLE {table} ({columns})")


def _create(db: sqlite3.Connection, table: str, *statements: str) -> None:
    if _has_table(db, table):  # no write: a read-only file with the table opens as before
        return
    with transaction(db, "BEGIN IMMEDIATE"):  # another process may be creating it now
        if not _has_table(db, table):
            for statement in statements:
                db.execute(statement)


@contextlib.contextmanager
def transaction(db: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[None]:
    """``begin`` ... COMMIT around the block; ROLLBACK when it raises (the error goes on)."""
    db.execute(begin)
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


def _has_table(db: sqlite3.Connection, table: str) -> bool:
    return (
        db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table]).fetchone()
        is not None
    )


def rows_in(
    db: sqlite3.Connection, query: str, values: Sequence[Any], before: Sequence[Any] = ()
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query``, which ends in ``IN``, for every one of ``values`` (bound after
    ``before``), a statement per few hundred of them."""
    for start in range(0, len(values), _IN_CHUNK):
        chunk = values[start : start + _IN_CHUNK]
        yield from db.execute(f"{query} ({','.join('?' * len(chunk))})", [*before, *chunk])


def append_rows(db: sqlite3.Connection, table: str, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """``INSERT`` ``rows`` (tuples as wide as ``table``, a rowid table with no unique key) into
    ``table``, as few statements as SQLite allows, inside a transaction that holds the write lock;
    the rowid each row took, in order."""
    rowids: list[int] = []
    if not rows:
        return rowids
    width = len(rows[0])
    per_statement = HOST_PARAMETERS // width
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        cursor = db.execute(_insert_sql(table, width, len(chunk)), list(itertools.chain.from_iterable(chunk)))
        last = int(cursor.lastrowid or 0)
        # A new row's rowid is one more than the largest (SQLite's rule until 2**63 - 1), and no
        # other connection writes during the transaction: a statement's rows take consecutive ones.
        rowids.extend(range(last - len(chunk) + 1, last + 1))
    return rowids


@functools.cache
def _insert_sql(table: str, width: int, count: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"INSERT INTO {table} VALUES " + ", ".join([row] * count)
