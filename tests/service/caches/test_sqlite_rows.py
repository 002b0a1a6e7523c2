"""Many rows into SQLite in few statements: a commit from a thread must not step once per row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from service.caches.sqlite_rows import HOST_PARAMETERS, create_keyed_table, insert_rows

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
@given(tables())
def test_rows_are_stored_as_executemany_stores_them_in_few_statements(
    table: tuple[int, list[tuple[object, ...]]],
) -> None:
    """What ``insert_rows`` leaves is what ``executemany`` leaves (a repeated key: its last row),
    in one statement per ``HOST_PARAMETERS`` values, not one per row."""
    width, rows = table
    columns = ", ".join(f"c{i}" for i in range(width))
    expected, got = (sqlite3.connect(":memory:", isolation_level=None) for _ in range(2))
    for db in (expected, got):
        db.execute(f"CREATE TABLE t ({columns}, PRIMARY KEY (c0))")
    placeholders = ", ".join("?" * width)
    expected.executemany(f"INSERT OR REPLACE INTO t VALUES ({placeholders})", rows)
    statements: list[str] = []
    got.set_trace_callback(statements.append)
    insert_rows(got, "t", rows)
    got.set_trace_callback(None)
    query = "SELECT * FROM t ORDER BY c0"
    assert got.execute(query).fetchall() == expected.execute(query).fetchall()
    per_statement = HOST_PARAMETERS // width
    assert len(statements) == -(-len(rows) // per_statement)


def test_a_keyed_table_is_made_once_whoever_opens_the_file(tmp_path: Path) -> None:
    """Processes sharing a file (Dask workers on one machine) each make sure of the table: the
    first makes it, appended with a unique index of its key, the others find it."""
    first, second = (sqlite3.connect(tmp_path / "shared.sqlite", isolation_level=None) for _ in range(2))
    try:
        for db in (first, second, first):
            create_keyed_table(db, "t", "namespace TEXT, key TEXT, body BLOB", "namespace, key")
        made = first.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
        assert made == [("table", "t"), ("index", "t_by_key")]
        insert_rows(second, "t", [("ns", "k", b"1"), ("ns", "k", b"2"), ("other", "k", b"3")])
        assert first.execute("SELECT namespace, key, body FROM t ORDER BY namespace").fetchall() == [
            ("ns", "k", b"2"),
            ("other", "k", b"3"),
        ]
    finally:
        first.close()
        second.close()
