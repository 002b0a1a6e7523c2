"""The answer log's file: rows appended without an index, merged into the indexed table in bulk,
found before and after their merge, by this process and by others sharing the file."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from service.caches import answer_log_file
from service.caches.answer_log import logged_keys
from service.caches.answer_log_file import AnswerLogFile


def _rows(keys: list[str], value: bytes = b"{}") -> list[tuple[object, ...]]:
    return [(key, 1, None, 200, None, value) for key in keys]


def _found(file: AnswerLogFile, keys: list[str]) -> dict[str, bytes]:
    return {row[0]: row[5] for row in file.find(keys)}


def _statements(file: AnswerLogFile) -> list[str]:
    statements: list[str] = []
    file._db.set_trace_callback(statements.append)  # every statement SQLite runs for this file
    return statements


def test_rows_are_found_before_and_after_their_merge_without_reading_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits of several statements each (300 rows: 166 a statement), merged every 1,000 keys:
    every key is found, the unmerged ones through where they were appended (no scan of the
    unmerged rows: one process writes the file)."""
    monkeypatch.setattr(answer_log_file, "MERGE_EVERY", 1000)
    file = AnswerLogFile(tmp_path / "answers.sqlite")
    try:
        keys = [f"k{i:05d}" for i in range(2500)]
        for start in range(0, len(keys), 300):
            file.append(_rows(keys[start : start + 300], f"v{start}".encode()))
        unmerged = file._db.execute("SELECT COUNT(*) FROM outcomes_unmerged").fetchone()[0]
        assert 0 < unmerged < 1000  # some rows merged, some not
        statements = _statements(file)
        found = _found(file, [*keys, "absent"])
        assert found == {key: f"v{i // 300 * 300}".encode() for i, key in enumerate(keys)}
        assert not any("json_each" in statement for statement in statements)
    finally:
        file.close()


def test_rows_another_process_appended_are_found_until_this_one_merges_them(tmp_path: Path) -> None:
    """Dask workers on one machine share the log: a key one of them answered is found by the
    others before any merge; and a row this process appended, merged away by another, is found
    in the indexed table, not as whatever row took its place."""
    path = tmp_path / "answers.sqlite"
    this, other = AnswerLogFile(path), AnswerLogFile(path)
    try:
        this.append(_rows(["mine"], b"1"))
        other.append(_rows(["theirs"], b"2"))
        assert _found(this, ["mine", "theirs"]) == {"mine": b"1", "theirs": b"2"}
        other.merge()  # moves "mine" too; "late" then takes the first rowid again
        other.append(_rows(["late"], b"3"))
        assert _found(this, ["mine", "nowhere"]) == {"mine": b"1"}
        assert _found(this, ["late"]) == {"late": b"3"}
        this.merge()
        statements = _statements(this)
        assert _found(this, ["late"]) == {"late": b"3"}
        assert not any("json_each" in statement for statement in statements)  # nothing unmerged now
    finally:
        this.close()
        other.close()


def test_a_killed_runs_unmerged_rows_are_merged_when_the_log_is_opened(tmp_path: Path) -> None:
    """A resumed job finds what the killed one appended through the index (this process has no
    memory of where they were appended)."""
    path = tmp_path / "answers.sqlite"
    killed = AnswerLogFile(path)
    killed.append(_rows(["a", "b"], b"1"))
    killed.append(_rows(["b"], b"2"))  # asked twice (two processes at once): the newer counts
    assert logged_keys(path) == 2
    killed._db.close()  # no merge: as a SIGKILL leaves it
    resumed = AnswerLogFile(path)
    try:
        assert resumed._db.execute("SELECT COUNT(*) FROM outcomes_unmerged").fetchone()[0] == 0
        assert _found(resumed, ["a", "b"]) == {"a": b"1", "b": b"2"}
        resumed.append(_rows(["c", "a"], b"3"))
        assert logged_keys(path) == 3
    finally:
        resumed.close()


def test_a_log_of_an_earlier_release_is_counted_without_unmerged_rows(tmp_path: Path) -> None:
    path = tmp_path / "answers.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as earlier:
        earlier.execute(f"CREATE TABLE outcomes ({answer_log_file.COLUMNS})")
        earlier.execute("INSERT INTO outcomes VALUES ('[\"k\"]', 1, NULL, 200, NULL, X'7b7d')")
        earlier.commit()
    assert logged_keys(path) == 1


def test_a_row_another_process_appends_while_this_one_merges_is_found(tmp_path: Path) -> None:
    """The data version this process compares against is read before its merge begins: a row
    another process commits between that merge's end and the version's reading is still read."""
    path = tmp_path / "answers.sqlite"
    this, other = AnswerLogFile(path), AnswerLogFile(path)
    try:
        this.append(_rows(["mine"], b"1"))
        merge = this._rows.merge

        def merge_then_another_appends() -> None:
            merge()
            other.append(_rows(["meanwhile"], b"2"))

        this._rows.merge = merge_then_another_appends  # type: ignore[method-assign]
        this.merge()
        assert _found(this, ["mine", "meanwhile"]) == {"mine": b"1", "meanwhile": b"2"}
    finally:
        this.close()
        other.close()
