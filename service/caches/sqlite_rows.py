"""Many rows into SQLite from a thread, while the event loop keeps the core busy.

``executemany`` steps SQLite once per row and lets go of the GIL around every step; from a
thread, each row then waits for the busy event loop to hand the GIL back (up to the switch
interval, 5 ms). Committing 1,000 rows that way took 0.75-1.4 s against a busy loop, and what
waits for a commit of the job's answer log is what a kill loses; as multi-row INSERTs (one step
for up to 166 rows), 50 ms (docs/architecture.md, "Measured costs").
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any

# The fewest host parameters a statement may have in any SQLite build (999 before 3.32).
HOST_PARAMETERS = 999


def insert_rows(db: sqlite3.Connection, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``INSERT OR REPLACE`` ``rows`` (tuples as wide as ``table``) into ``table``, as few
    statements as SQLite allows."""
    if not rows:
        return
    width = len(rows[0])
    per_statement = HOST_PARAMETERS // width
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        db.execute(_insert_sql(table, width, len(chunk)), list(itertools.chain.from_iterable(chunk)))


@functools.cache
def _insert_sql(table: str, width: int, count: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"INSERT OR REPLACE INTO {table} VALUES " + ", ".join([row] * count)
