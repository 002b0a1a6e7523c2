"""The job's answer log: what it holds while outcomes wait for their commit."""

from __future__ import annotations

import sqlite3
import tracemalloc
from pathlib import Path

import pytest

from service import Outcome
from service.caches import answer_log, answer_log_file
from service.caches.answer_log import AnswerLog
from service.caches.answer_log_file import AnswerLogFile
from service.caches.sqlite_rows import HOST_PARAMETERS
from tests.service.caches.key_order import pages_in_any_order_and_in_order


def test_a_commit_of_bulk_answers_holds_about_their_own_size(tmp_path: Path) -> None:
    """Answers with no body of their own (bulk items) are encoded for the commit: thousands wait
    together on a fast job, each taking a few hundred bytes, not orjson's 4 KiB buffer (a 1M-row
    bulk job peaked at 664 MB with them, 309 MB without)."""
    log = AnswerLog(tmp_path / "answers.sqlite")
    try:
        for i in range(2000):
            log.add((f"k{i}",), Outcome({"key": f"k{i}", "country": {"iso_code": "DE"}}, 1))
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            log.flush()
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        assert peak / 2000 < 1024, f"{peak / 2000:.0f} bytes per answer at the commit"
        assert log.get_many([("k7",)])[("k7",)].answer == {"key": "k7", "country": {"iso_code": "DE"}}
    finally:
        log.close()


def test_the_newest_committed_answers_are_found_without_reading_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys repeated across batches are answered from memory (the newest RECENT_ANSWERS after
    their commit); older ones from the file."""
    monkeypatch.setattr(answer_log, "RECENT_ANSWERS", 3)
    log = AnswerLog(tmp_path / "answers.sqlite")
    try:
        for i in range(5):
            log.add((f"k{i}",), Outcome({"v": i}, 1))
        log.flush()
        reads: list[str] = []
        log._file._db.set_trace_callback(reads.append)  # every statement SQLite runs for this log
        recent = log.get_many([("k2",), ("k3",), ("k4",)])
        assert {key: outcome.answer for key, outcome in recent.items()} == {
            ("k2",): {"v": 2},
            ("k3",): {"v": 3},
            ("k4",): {"v": 4},
        }
        assert reads == []
        assert log.get_many([("k0",)])[("k0",)].answer == {"v": 0}
        assert reads
    finally:
        log.close()


def test_a_commit_is_a_few_statements_not_one_per_answer(tmp_path: Path) -> None:
    """A commit runs in a thread beside the busy event loop: stepping SQLite once per answer made
    it wait for the GIL once per answer, and 1,000 answers took a second to commit
    (``service.caches.sqlite_rows``)."""
    log = AnswerLog(tmp_path / "answers.sqlite")
    try:
        for i in range(1000):
            log.add((f"k{i}",), Outcome({"v": i}, 1))
        statements: list[str] = []
        log._file._db.set_trace_callback(statements.append)
        log.flush()
        inserts = [statement for statement in statements if statement.startswith("INSERT")]
        assert 1 <= len(inserts) <= -(-1000 // (HOST_PARAMETERS // 6))
        assert log.get_many([("k999",)])[("k999",)].answer == {"v": 999}
    finally:
        log.close()


def _pages_written(keys: list[str], folder: Path) -> int:
    """Database pages the commits of ``keys``' answers (1,000 a commit) write to the WAL."""
    log = AnswerLog(folder / "answers.sqlite")
    try:
        log._file._db.execute("PRAGMA wal_autocheckpoint=0")  # every page written stays counted
        body = b'{"country": "DE", "asn": 12345, "org": "Example Org", "score": 0.5}'
        for start in range(0, len(keys), 1000):
            for key in keys[start : start + 1000]:
                log.add((key,), Outcome({"country": "DE"}, 1, status=200, raw=body))
            log.flush()
        return int(log._file._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        log.close()


def test_keys_in_any_order_cost_a_commit_about_what_keys_in_order_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each answer inserted into an index of keys as it came wrote a page of the index per answer
    when keys came in random order, as a user's keys do: 2.7 times the pages of the same keys in
    order at 20,000 keys, 9 times at 100,000 (37,544 pages against 4,175). Appended, then merged
    into the index in key order: 1.1 times here (merged every 5,000 keys), 1.2 at 100,000 (10,253
    pages, merged every 20,000; docs/architecture.md)."""
    monkeypatch.setattr(answer_log_file, "MERGE_EVERY", 5000)
    any_order_pages, ordered_pages = pages_in_any_order_and_in_order(_pages_written, tmp_path)
    assert any_order_pages < 1.5 * ordered_pages, (any_order_pages, ordered_pages)


def test_a_log_written_before_the_index_of_keys_is_resumed(tmp_path: Path) -> None:
    """A job started by the release that kept the log ordered by key (a table without rowid)
    resumes on this one: its answers are found, new ones are added."""
    path = tmp_path / "answers.sqlite"
    earlier = sqlite3.connect(path)
    earlier.execute(
        "CREATE TABLE outcomes (key TEXT PRIMARY KEY, attempts INTEGER, "
        "error TEXT, status INTEGER, message TEXT, body BLOB) WITHOUT ROWID"
    )
    earlier.execute("INSERT INTO outcomes VALUES (?, 1, NULL, 200, NULL, ?)", ('["k0"]', b'{"v": 0}'))
    earlier.commit()
    earlier.close()
    log = AnswerLog(path)
    try:
        log.add(("k1",), Outcome({"v": 1}, 1))
        log.add(("k0",), Outcome({"v": 10}, 2))
        log.flush()
    finally:
        log.close()
    log = AnswerLog(path)
    try:
        found = log.get_many([("k0",), ("k1",)])
        assert {key: (outcome.answer, outcome.attempts) for key, outcome in found.items()} == {
            ("k0",): ({"v": 10}, 2),
            ("k1",): ({"v": 1}, 1),
        }
    finally:
        log.close()


def _failing_merges(path: Path) -> None:
    """``path``: a log a killed run left with unmerged rows, on which a merge fails as on a full
    disk (a trigger of the file's own aborts it)."""
    killed = AnswerLogFile(path)
    killed.append([('["k"]', 1, None, 200, None, b"{}")])
    killed._db.execute(
        "CREATE TRIGGER full_disk BEFORE INSERT ON outcomes "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    killed._db.close()


def test_a_log_that_cannot_be_merged_on_opening_is_an_environment_error(tmp_path: Path) -> None:
    """Opening a log merges what a killed run left: a write, which a full disk fails. The job
    stops with one line (an ``OSError`` naming the file), not a traceback."""
    _failing_merges(tmp_path / "answers.sqlite")
    with pytest.raises(
        OSError, match=r"answers\.sqlite: cannot open the job's answer log \(database or disk is full\)"
    ):
        AnswerLog(tmp_path / "answers.sqlite")


def test_a_log_that_cannot_be_read_is_an_environment_error(tmp_path: Path) -> None:
    """A lookup SQLite fails (an I/O error; here the table gone from under it) stops the job with
    one line naming the file."""
    log = AnswerLog(tmp_path / "answers.sqlite")
    try:
        log._file._db.execute("DROP TABLE outcomes")
        with pytest.raises(
            OSError, match=r"answers\.sqlite: cannot read the job's answer log \(no such table"
        ):
            log.get_many([("k",)])
    finally:
        log._file.close()
