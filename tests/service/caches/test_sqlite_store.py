"""The response cache: TTLs on an injected clock, negative caching, what is never cached."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import httpx
import polars as pl
import pytest

from service import CACHE_FILE, Caller, ErrorClass, Outcome, enrich_frame, format_summary
from service.caches import sqlite_store
from service.caches.entries import EntryKind, key_text
from service.caches.location import open_store
from service.caches.sqlite_rows import HOST_PARAMETERS
from service.caches.sqlite_store import ResponseCache
from service.caches.store import cache_namespace, store_outcomes
from service.testing import MockClock
from tests.helpers import make_spec, run_cli, write_lookup_job
from tests.service.caches.key_order import pages_in_any_order_and_in_order


class WallClock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def open_cache(tmp_path: Path, now: WallClock, namespace: str = "ns") -> ResponseCache:
    return ResponseCache(tmp_path / "c.sqlite", namespace, ttl_s=100, negative_ttl_s=10, now=now)


def test_answers_expire_after_ttl(tmp_path: Path) -> None:
    """A stored answer comes back until its TTL passes."""
    now = WallClock()
    cache = open_cache(tmp_path, now)
    store_outcomes(cache, [(("a",), Outcome({"x": 1}, 1)), (("b", 2), Outcome([1, "z"], 3))])
    got = cache.get_many([("a",), ("b", 2), ("c",)])
    assert {k: (o.answer, o.attempts, o.error) for k, o in got.items()} == {
        ("a",): ({"x": 1}, 0, None),
        ("b", 2): ([1, "z"], 0, None),
    }
    now.t += 99
    assert len(cache.get_many([("a",)])) == 1
    now.t += 2
    assert cache.get_many([("a",)]) == {}


def test_final_client_errors_are_cached_for_the_shorter_ttl(tmp_path: Path) -> None:
    """404 is kept for negative_ttl; 401, 429, 503, timeouts are never kept."""
    now = WallClock()
    cache = open_cache(tmp_path, now)
    stored = store_outcomes(
        cache,
        [
            (("404",), Outcome(None, 1, ErrorClass.HTTP_4XX, "HTTP 404: no such key", 404)),
            (("401",), Outcome(None, 1, ErrorClass.HTTP_4XX, "HTTP 401", 401)),
            (("429",), Outcome(None, 6, ErrorClass.RATE_LIMITED, "HTTP 429", 429)),
            (("503",), Outcome(None, 6, ErrorClass.HTTP_5XX, "HTTP 503", 503)),
            (("slow",), Outcome(None, 6, ErrorClass.TIMEOUT, "no answer")),
        ],
    )
    assert stored.entries == 1
    got = cache.get_many([("404",), ("401",), ("429",), ("503",), ("slow",)])
    assert list(got) == [("404",)]
    assert got[("404",)].error is ErrorClass.HTTP_4XX
    assert got[("404",)].message == "HTTP 404: no such key (cached)"
    now.t += 11
    assert cache.get_many([("404",)]) == {}


def test_namespaces_do_not_share_answers(tmp_path: Path) -> None:
    """Specs that call differently do not see each other's answers."""
    now = WallClock()
    store_outcomes(open_cache(tmp_path, now, "one"), [(("a",), Outcome(1, 1))])
    assert open_cache(tmp_path, now, "two").get_many([("a",)]) == {}
    assert cache_namespace(make_spec()) == cache_namespace(make_spec("[limits]\nconcurrency = 3\n"))
    assert cache_namespace(make_spec()) != cache_namespace(make_spec(url="http://api.test/v2/{k}"))


def test_stats_and_clear(tmp_path: Path) -> None:
    """stats counts entries by kind; clear --expired keeps live ones."""
    now = WallClock()
    cache = open_cache(tmp_path, now)
    store_outcomes(
        cache, [(("a",), Outcome(1, 1)), (("n",), Outcome(None, 1, ErrorClass.HTTP_4XX, "x", 404))]
    )
    stats = cache.statistics()
    assert (stats.entries, stats.answers, stats.negative, stats.expired) == (2, 1, 1, 0)
    now.t += 50
    assert cache.clear(expired_only=True) == 1
    assert cache.statistics().entries == 1
    assert cache.clear() == 1
    assert cache.statistics().entries == 0


def test_storing_many_answers_is_a_few_statements_not_one_per_answer(tmp_path: Path) -> None:
    """Answers are stored from a thread beside the busy event loop: stepping SQLite once per
    answer waits for the GIL once per answer (``service.caches.sqlite_rows``)."""
    cache = open_cache(tmp_path, WallClock())
    statements: list[str] = []
    cache._db.set_trace_callback(statements.append)
    stored = store_outcomes(cache, [((f"k{i}",), Outcome({"v": i}, 1)) for i in range(1000)])
    inserts = [statement for statement in statements if statement.startswith("INSERT")]
    assert stored.entries == 1000
    assert 1 <= len(inserts) <= -(-1000 // (HOST_PARAMETERS // 5))
    assert cache.get_many([("k999",)])[("k999",)].answer == {"v": 999}


@pytest.mark.asyncio
async def test_second_run_makes_no_request(tmp_path: Path, clock: MockClock) -> None:
    """With the cache, the same frame again costs zero requests and no limiter token."""
    calls: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        calls.append(key)
        if key == "gone":
            return httpx.Response(404, text="no such key")
        return httpx.Response(200, json={"name": key})

    spec = make_spec()
    frame = pl.DataFrame({"k": ["a", "b", "a", "gone"]})
    now = WallClock()
    outputs = []
    for _ in range(2):
        cache = open_cache(tmp_path, now, cache_namespace(spec))
        async with Caller(spec, transport=httpx.MockTransport(handler), clock=clock, cache=cache) as caller:
            result = await enrich_frame(frame, spec, caller=caller)
            outputs.append(result)
            acquisitions = caller.limiter.statistics().acquisitions
        cache.close()
    assert sorted(calls) == ["a", "b", "gone"]
    assert acquisitions == 0
    first, second = (r.frame.drop("_enrich_attempts", "_enrich_message") for r in outputs)
    assert first.equals(second)
    assert outputs[1].stats.cache_hits == 3
    assert outputs[1].frame["_enrich_attempts"].to_list() == [0, 0, 0, 0]
    now.t += 101  # past the TTL: asked again
    cache = open_cache(tmp_path, now, cache_namespace(spec))
    async with Caller(spec, transport=httpx.MockTransport(handler), clock=clock, cache=cache) as caller:
        await enrich_frame(frame, spec, caller=caller)
    cache.close()
    assert sorted(calls) == ["a", "a", "b", "b", "gone", "gone"]


@pytest.mark.asyncio
async def test_a_bulk_result_the_cache_cannot_store_is_counted(tmp_path: Path, clock: MockClock) -> None:
    """A bulk item nested deeper than orjson writes is not cached, and the statistics and summary
    say so; the job's rows are unaffected."""
    deep: object = "x"
    for _ in range(300):
        deep = [deep]

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": [{"id": "a", "name": "A"}, {"id": "b", "name": deep}]})

    spec = make_spec(
        '[api]\nmethod = "POST"\nurl = "http://api.test/lookup"\nbody = { keys = "{@keys}" }\n'
        '[bulk]\nsize = 10\nresults = "results"\nmatch = "id"\n'
        '[output.columns]\nname = { path = "name", type = "json" }\n'
    )
    cache = open_cache(tmp_path, WallClock(), cache_namespace(spec))
    try:
        async with Caller(spec, transport=httpx.MockTransport(handler), clock=clock, cache=cache) as caller:
            result = await enrich_frame(pl.DataFrame({"k": ["a", "b"]}), spec, caller=caller)
        stored = cache.statistics().answers
    finally:
        cache.close()
    assert result.frame["_enrich_status"].to_list() == ["ok", "ok"]
    assert (result.stats.uncacheable, stored) == (1, 1)
    assert "; 1 answer it could not store" in format_summary(result.stats)


def test_the_cache_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """The cache holds whole answers: its folder is 0700, its file and SQLite's WAL file 0600."""
    folder = tmp_path / "new-cache"
    cache = open_store(folder, "ns", ttl_s=60, negative_ttl_s=60)
    try:
        store_outcomes(cache, [(("a",), Outcome({"x": 1}, 1))])
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}
    finally:
        cache.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert modes["responses.sqlite"] == 0o600
    assert modes["responses.sqlite-wal"] == 0o600


def test_a_file_that_is_not_a_database_is_moved_aside_and_the_cache_starts_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a SQLite database " * 200)
    cache = open_cache(tmp_path, WallClock())
    assert cache.get_many([("a",)]) == {}
    store_outcomes(cache, [(("a",), Outcome({"x": 1}, 1))])
    assert cache.get_many([("a",)])[("a",)].answer == {"x": 1}
    cache.close()
    moved = list(tmp_path.glob("c.sqlite.corrupt-*"))
    assert len(moved) == 1
    assert moved[0].read_bytes().startswith(b"this is not")
    assert f"is corrupt (file is not a database); moved to {moved[0]}" in caplog.text


def _damage_pages(path: Path) -> None:
    """Overwrite everything past the first page (the header stays: the file opens, reads fail)."""
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)
    path.write_bytes(bytes(data))


def test_a_file_found_damaged_on_a_read_is_moved_aside_and_the_job_goes_on(tmp_path: Path) -> None:
    now = WallClock()
    cache = open_cache(tmp_path, now)
    keys = [(f"k{i}",) for i in range(2000)]
    store_outcomes(cache, [(key, Outcome({"v": "x" * 200}, 1)) for key in keys])
    cache.close()
    _damage_pages(tmp_path / "c.sqlite")
    cache = open_cache(tmp_path, now)
    assert cache.get_many(keys) == {}  # the damaged file answered nothing, and raised nothing
    store_outcomes(cache, [(keys[0], Outcome({"v": 1}, 1))])
    assert cache.get_many(keys[:1])[keys[0]].answer == {"v": 1}
    assert cache.clear() == 1
    cache.close()
    assert len(list(tmp_path.glob("c.sqlite.corrupt-*"))) == 1


def test_a_busy_database_is_not_taken_for_a_corrupt_one() -> None:
    from service.caches.sqlite_store import is_corruption

    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    corrupt = sqlite3.DatabaseError("database disk image is malformed")
    corrupt.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
    assert (is_corruption(busy), is_corruption(corrupt)) == (False, True)


def test_a_corrupt_cache_file_does_not_brick_jobs_or_cache_clear(tmp_path: Path, server: str) -> None:
    """The machine's cache file is garbage: the job finishes (exit 0, a one-line warning), and
    ``enrich cache stats`` and ``clear`` work."""
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / CACHE_FILE).write_bytes(b"\x00garbage\xff" * 4096)
    source, spec = write_lookup_job(tmp_path, server, ["a", "b", "a"])
    output = tmp_path / "out.csv"
    args = ("--cache-dir", str(cache_dir))
    done = run_cli("run", "--no-flow", str(source), "--spec", str(spec), "--output", str(output), *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"the response cache {cache_dir / CACHE_FILE} is corrupt" in done.stderr
    assert pl.read_csv(output)["_enrich_status"].to_list() == ["ok"] * 3
    (cache_dir / CACHE_FILE).write_bytes(b"\x00garbage again\xff" * 4096)
    for action in ("stats", "clear"):
        done = run_cli("cache", action, *args)
        assert done.returncode == 0, done.stderr
    assert len(list(cache_dir.glob(f"{CACHE_FILE}.corrupt-*"))) == 2


def _pages_written(keys: list[str], folder: Path) -> int:
    """Database pages that storing an answer for each of ``keys`` (1,000 a commit) writes to the WAL."""
    cache = open_cache(folder, WallClock())
    try:
        cache._db.execute("PRAGMA wal_autocheckpoint=0")  # every page written stays counted
        body = b'{"country": "DE", "asn": 12345, "org": "Example Org", "score": 0.5}'
        for start in range(0, len(keys), 1000):
            cache.put_entries(
                [(key_text((key,)), EntryKind.ANSWER, body) for key in keys[start : start + 1000]]
            )
        return int(cache._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        cache.close()


def test_keys_in_any_order_cost_a_store_about_what_keys_in_order_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries inserted into an index of keys as they came wrote a page of the index per entry
    when keys came in random order, as a user's keys do (2.7 times the pages of the same keys in
    order here); appended, then merged into the index in key order, about the same pages
    (``service.caches.appended_rows``)."""
    monkeypatch.setattr(sqlite_store, "MERGE_EVERY", 5000)
    any_order_pages, ordered_pages = pages_in_any_order_and_in_order(_pages_written, tmp_path)
    assert any_order_pages < 1.5 * ordered_pages, (any_order_pages, ordered_pages)


def test_entries_are_found_before_and_after_their_merge_until_they_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stores of 300 entries, merged every 1,000: every entry is found, merged or not, and none
    once its time to live has passed; statistics count both."""
    monkeypatch.setattr(sqlite_store, "MERGE_EVERY", 1000)
    now = WallClock()
    cache = open_cache(tmp_path, now)
    try:
        keys = [(f"k{i}",) for i in range(2500)]
        for start in range(0, len(keys), 300):
            store_outcomes(cache, [(key, Outcome({"at": start}, 1)) for key in keys[start : start + 300]])
        unmerged = cache._db.execute("SELECT COUNT(*) FROM answers_unmerged").fetchone()[0]
        assert 0 < unmerged < 1000
        got = cache.get_many([*keys, ("absent",)])
        assert {key: outcome.answer for key, outcome in got.items()} == {
            key: {"at": i // 300 * 300} for i, key in enumerate(keys)
        }
        now.t += 101
        assert cache.get_many(keys) == {}
        assert cache.statistics().entries == 2500
    finally:
        cache.close()


def test_jobs_sharing_the_file_find_each_others_entries_once_merged(tmp_path: Path) -> None:
    """Entries wait unmerged while their job runs: a job closing merges them (jobs running then
    find them), a job opening merges what a killed one left; and a rowid another job's merge gave
    to another entry is not taken for the entry this one stored there."""
    now = WallClock()
    first = open_cache(tmp_path, now)
    store_outcomes(first, [(("a",), Outcome({"x": 1}, 1))])
    second = open_cache(tmp_path, now)  # merges "a"
    store_outcomes(second, [(("b",), Outcome({"x": 2}, 1))])  # at the rowid "a" had
    assert {key: o.answer for key, o in first.get_many([("a",)]).items()} == {("a",): {"x": 1}}
    second.close()
    assert {key: o.answer for key, o in first.get_many([("b",)]).items()} == {("b",): {"x": 2}}
    store_outcomes(first, [(("c",), Outcome({"x": 3}, 1))])
    first._db.close()  # as a SIGKILL leaves it: "c" unmerged
    later = open_cache(tmp_path, now)
    try:
        assert later._db.execute("SELECT COUNT(*) FROM answers_unmerged").fetchone()[0] == 0
        got = later.get_many([("a",), ("b",), ("c",)])
        assert {key: o.answer for key, o in got.items()} == {
            ("a",): {"x": 1},
            ("b",): {"x": 2},
            ("c",): {"x": 3},
        }
    finally:
        later.close()


def test_a_long_lived_process_shares_its_entries_at_its_first_store_a_minute_after_a_merge(
    tmp_path: Path,
) -> None:
    """enrich api and serve keep a cache open for hours, storing a few entries at a time: they
    reach the other processes at the first store a minute after the last merge, not at close."""
    now = WallClock()
    serving, other = open_cache(tmp_path, now), open_cache(tmp_path, now)
    try:
        store_outcomes(serving, [(("a",), Outcome({"x": 1}, 1))])
        assert other.get_many([("a",)]) == {}  # unmerged, and not the other's own
        now.t += 61
        store_outcomes(serving, [(("b",), Outcome({"x": 2}, 1))])
        got = other.get_many([("a",), ("b",)])
        assert {key: o.answer for key, o in got.items()} == {("a",): {"x": 1}, ("b",): {"x": 2}}
    finally:
        serving.close()
        other.close()


def test_a_cache_file_written_before_the_index_of_keys_is_used_as_it_is(tmp_path: Path) -> None:
    """A cache from the release that kept entries ordered by key (a table without rowid) keeps
    answering, and takes new answers; no index is added to it."""
    earlier = sqlite3.connect(tmp_path / "c.sqlite")
    earlier.execute(
        "CREATE TABLE answers (namespace TEXT, key TEXT, kind INTEGER, expires REAL, body BLOB, "
        "PRIMARY KEY (namespace, key)) WITHOUT ROWID"
    )
    earlier.execute(
        "INSERT INTO answers VALUES ('ns', '[\"a\"]', ?, 2e9, ?)", [int(EntryKind.ANSWER), b'{"x": 1}']
    )
    earlier.commit()
    earlier.close()
    now = WallClock()
    cache = open_cache(tmp_path, now)
    try:
        store_outcomes(cache, [(("b",), Outcome({"x": 2}, 1)), (("a",), Outcome({"x": 3}, 1))])
        got = cache.get_many([("a",), ("b",)])
        assert {key: outcome.answer for key, outcome in got.items()} == {("a",): {"x": 3}, ("b",): {"x": 2}}
        indexes = cache._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        assert indexes == []  # a table without rowid is its own index of keys
    finally:
        cache.close()


def test_a_store_that_fails_leaves_no_transaction_open_for_the_next(tmp_path: Path) -> None:
    """A commit that fails (a full disk; here a trigger aborting the insert) is the machine's
    error (an ``OSError``: one line, not a traceback), and is rolled back: the next store goes
    through rather than failing on the transaction the first left open."""
    cache = open_cache(tmp_path, WallClock())
    cache._db.execute(
        "CREATE TEMP TRIGGER full_disk BEFORE INSERT ON answers_unmerged WHEN NEW.key = '[\"boom\"]' "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    with pytest.raises(
        OSError, match=r"c\.sqlite: cannot use the response cache \(database or disk is full\)"
    ):
        store_outcomes(cache, [(("boom",), Outcome({"x": 1}, 1))])
    store_outcomes(cache, [(("fine",), Outcome({"x": 2}, 1))])
    assert cache.get_many([("fine",)])[("fine",)].answer == {"x": 2}
    cache.close()


def test_a_cache_that_cannot_be_merged_on_opening_is_an_environment_error(tmp_path: Path) -> None:
    """Opening the cache merges what a killed job left: a write, which a full disk fails (a
    trigger of the file's own here): an ``OSError`` naming the file, the file not taken for a
    corrupt one."""
    killed = open_cache(tmp_path, WallClock())
    store_outcomes(killed, [(("a",), Outcome({"x": 1}, 1))])
    killed._db.execute(
        "CREATE TRIGGER full_disk BEFORE INSERT ON answers "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    killed._db.close()
    with pytest.raises(OSError, match=r"cannot use the response cache \(database or disk is full\)"):
        open_cache(tmp_path, WallClock())
    assert not list(tmp_path.glob("c.sqlite.corrupt-*"))
