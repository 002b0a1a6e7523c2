"""Many rows into SQLite in few statements: a commit from a thread must not step once per row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from service.caches.sqlite_rows import HOST_PARAMETERS, append_rows, create_keyed_table

values = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=5), st.binary(max_size=5))


@st.composite
def tables(draw: st.DrawFn) -> tuple[int, list[tuple[object, ...]]]:
    """A width, and rows of it whose first value is a key (repeated keys included)."""
    width = draw(st.integers(1, 8))
    count = draw(st.sampled_from([0, 1, 2, 165, 166, 167, 500, 1000]))
    keys = draw(st.lists(st.integers(0, 2 * count + 1), min_size=count, max_size=count))
    row = st.tuples(*[values] * (width - 1))
    return width, [(key, *draw(row)) for key in keys]


@settings(max_examples=60, deadline=None)
@given(tables(), st.integers(0, 300))
def test_rows_are_appended_as_executemany_appends_them_in_few_statements(
    table: tuple[int, list[tuple[object, ...]]], earlier: int
) -> None:
    """What ``append_rows`` leaves after ``earlier`` rows is what ``executemany`` leaves, in one
    statement per ``HOST_PARAMETERS`` values, not one per row; the rowids it returns are those its
    rows took, in order."""
    width, rows = table
    columns = ", ".join(f"c{i}" for i in range(width))
    expected, got = (sqlite3.connect(":memory:", isolation_level=None) for _ in range(2))
    placeholders = ", ".join("?" * width)
    for db in (expected, got):
        db.execute(f"CREATE TABLE t ({columns})")
        db.executemany(f"INSERT INTO t VALUES ({placeholders})", [(None,) * width] * earlier)
    expected.executemany(f"INSERT INTO t VALUES ({placeholders})", rows)
    statements: list[str] = []
    got.set_trace_callback(statements.append)
    got.execute("BEGIN IMMEDIATE")
    rowids = append_rows(got, "t", rows)
    got.execute("COMMIT")
    got.set_trace_callback(None)
    query = "SELECT rowid, * FROM t ORDER BY rowid"
    assert got.execute(query).fetchall() == expected.execute(query).fetchall()
    assert [got.execute("SELECT * FROM t WHERE rowid = ?", [rowid]).fetchone() for rowid in rowids] == rows
    per_statement = HOST_PARAMETERS // width
    assert len(statements) - 2 == -(-len(rows) // per_statement)


def test_a_keyed_table_is_made_once_whoever_opens_the_file(tmp_path: Path) -> None:
    """Processes sharing a file (Dask workers on one machine) each make sure of the table: the
    first makes it, appended with a unique index of its key, the others find it."""
    first, second = (sqlite3.connect(tmp_path / "shared.sqlite", isolation_level=None) for _ in range(2))
    try:
        for db in (first, second, first):
            create_keyed_table(db, "t", "namespace TEXT, key TEXT, body BLOB", "namespace, key")
        made = first.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
        assert made == [("table", "t"), ("index", "t_by_key")]
        second.executemany(
            "INSERT OR REPLACE INTO t VALUES (?, ?, ?)",
            [("ns", "k", b"1"), ("ns", "k", b"2"), ("other", "k", b"3")],
        )
        assert first.execute("SELECT namespace, key, body FROM t ORDER BY namespace").fetchall() == [
            ("ns", "k", b"2"),
            ("other", "k", b"3"),
        ]
    finally:
        first.close()
        second.close()
