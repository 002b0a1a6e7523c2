"""The Python API (``import enrich``) against the mock API on loopback: specs from a file, TOML text
or a dict; DataFrame and LazyFrame; sync, async and in a running event loop; the cache by one
argument; statistics per call; the polars namespace."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from tenacity import retry_if_result, wait_fixed

import enrich
from tests.helpers import server_stats

pytestmark = pytest.mark.integration


def spec_text(url: str) -> str:
    return (
        f'[api]\nurl = "{url}/v1/lookup/{{ip}}"\n[input]\nkey = "ip"\n'
        '[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n'
    )


def frame(keys: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"row": range(len(keys)), "ip": keys})


def test_a_spec_from_a_file_toml_text_or_a_dict_enriches_alike(tmp_path: Path, server: str) -> None:
    """The three ways to give a spec give the same rows, in order, with the same columns."""
    path = tmp_path / "spec.toml"
    path.write_text(spec_text(server))
    as_dict = {
        "api": {"url": f"{server}/v1/lookup/{{ip}}"},
        "input": {"key": "ip"},
        "output": {"columns": {"country": {"path": "country.iso_code", "type": "str"}}},
    }
    data = frame(["a", "b", "a", "c"])
    results = [
        enrich.enrich(data, source, cache=False).frame
        for source in (path, str(path), spec_text(server), as_dict)
    ]
    for result in results[1:]:
        assert result.equals(results[0])
    assert results[0]["row"].to_list() == [0, 1, 2, 3]
    assert results[0]["_enrich_status"].to_list() == ["ok"] * 4
    assert results[0]["country"].null_count() == 0


def test_a_lazy_frame_is_enriched_too(server: str) -> None:
    """A LazyFrame is collected, then enriched: the rows it selects, each once."""
    lazy = frame([f"k{i}" for i in range(10)]).lazy().filter(pl.col("row") % 2 == 0)
    result = enrich.enrich(lazy, spec_text(server), cache=False)
    assert result.frame["ip"].to_list() == [f"k{i}" for i in range(0, 10, 2)]
    assert (result.stats.rows, result.stats.requests) == (5, 5)


@pytest.mark.asyncio
async def test_the_sync_call_works_inside_a_running_event_loop(server: str) -> None:
    """In a notebook an event loop already runs in the caller's thread: the sync call still works."""
    result = enrich.enrich(frame(["x", "y"]), spec_text(server), cache=False)
    assert result.stats.rows_ok == 2


@pytest.mark.asyncio
async def test_a_session_asks_each_key_once_across_calls_and_counts_per_call(server: str) -> None:
    """Two calls in one session, the second repeating two keys of the first: those come from the
    cache (no request, server-counted), and each call's statistics are its own."""
    async with enrich.Session(spec_text(server)) as session:
        first = await session.enrich(frame(["a", "b", "c"]))
        second = await session.enrich(frame(["b", "c", "d"]))
        total = session.statistics()
    assert (first.stats.requests, first.stats.cache_hits) == (3, 0)
    assert (second.stats.requests, second.stats.cache_hits, second.stats.rows_ok) == (1, 2, 3)
    assert (total.requests, total.rows) == (4, 6)
    assert server_stats(server)["requests"] == 4


def test_without_the_cache_a_second_call_asks_again(server: str) -> None:
    """cache=False: nothing is kept between calls (server-counted); the default keeps answers."""
    data = frame(["a", "b"])
    for _ in range(2):
        enrich.enrich(data, spec_text(server), cache=False)
    assert server_stats(server)["requests"] == 4
    for _ in range(2):
        enrich.enrich(data, spec_text(server))
    assert server_stats(server)["requests"] == 6


def test_the_polars_namespace_returns_the_enriched_frame(server: str) -> None:
    """``frame.enrich(spec)`` is ``enrich.enrich(frame, spec).frame``."""
    enriched = frame(["a", "b"]).enrich(spec_text(server), cache=False)
    assert enriched.columns[:3] == ["row", "ip", "country"]
    assert enriched["_enrich_status"].to_list() == ["ok", "ok"]


def test_mistakes_are_named(tmp_path: Path, server: str) -> None:
    """A bad spec is a SpecError naming the field; a frame missing the key column an InputError; a
    value that is not a frame a TypeError."""
    with pytest.raises(enrich.SpecError, match=r"limits\.concurrency"):
        enrich.enrich(frame(["a"]), spec_text(server) + "[limits]\nconcurrency = -3\n")
    with pytest.raises(enrich.SpecError, match="spec file not found"):
        enrich.enrich(frame(["a"]), tmp_path / "missing.toml")
    with pytest.raises(enrich.InputError, match=r"input\.key column 'ip' is not in the input"):
        enrich.enrich(pl.DataFrame({"address": ["a"]}), spec_text(server))
    with pytest.raises(TypeError, match="polars DataFrame or LazyFrame"):
        enrich.enrich({"ip": ["a"]}, spec_text(server))  # type: ignore[arg-type]
    assert server_stats(server)["requests"] == 0


def test_tenacity_conditions_and_waits_are_taken_as_they_are(server: str) -> None:
    """retry= and wait= in tenacity's words, against the mock API's own counts: the spec's rules
    kept (a 503 retried to the last of 3 attempts), a result condition added (a pending answer
    asked again until answered), a fixed wait in place of the backoff."""
    spec = spec_text(server) + "[retry]\nattempts = 3\n"
    retry = enrich.spec_retry(spec) | retry_if_result(lambda answer: answer.get("status") == "pending")
    data = frame(["1.2.3.4", "pending-a", "503-a"])
    result = enrich.enrich(data, spec, cache=False, retry=retry, wait=wait_fixed(0.01))
    out = result.frame.select("_enrich_status", "_enrich_error", "_enrich_attempts").rows()
    assert out == [("ok", None, 1), ("ok", None, 3), ("failed", "http_5xx", 3)]
    assert server_stats(server)["per_key"] == {"1.2.3.4": 1, "pending-a": 3, "503-a": 3}
