"""The response cache: TTLs on an injected clock, negative caching, what is never cached."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import polars as pl
import pytest

from service import Caller, ErrorClass, Outcome, enrich_frame, format_summary
from service.caches.location import open_store
from service.caches.sqlite_store import ResponseCache
from service.caches.store import cache_namespace, store_outcomes
from service.testing import MockClock
from tests.helpers import make_spec


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
