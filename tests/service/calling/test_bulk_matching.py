"""Matching a bulk answer back to its keys: pure, by the text of each key's values."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import ErrorClass
from service.calling.bulk import match_bulk
from service.spec import BulkSpec
from tests.helpers import make_spec

BULK = """
[api]
method = "POST"
url = "http://api.test/lookup"
body = { keys = "{@keys}" }
[bulk]
size = 10
results = "data.items"
"""


def bulk_spec(match: str, key: str) -> BulkSpec:
    spec = make_spec(BULK + f"match = {match}\n", key=key)
    assert spec.bulk is not None
    return spec.bulk


def test_results_are_matched_by_text_in_any_order_and_missing_keys_fail() -> None:
    """A number key matches its string echo; a key the answer lacks fails as mapping."""
    bulk = bulk_spec('"id"', '["k"]')
    answer = {"data": {"items": [{"id": "7", "v": "seven"}, {"id": "x", "v": "ex"}, {"v": "no id"}]}}
    outcomes = match_bulk([("x",), (7,), ("gone",)], answer, 2, bulk)
    assert outcomes[("x",)].answer == {"id": "x", "v": "ex"}
    assert outcomes[(7,)].answer == {"id": "7", "v": "seven"}
    assert all(outcome.attempts == 2 for outcome in outcomes.values())
    assert outcomes[("gone",)].error is ErrorClass.MAPPING
    assert outcomes[("gone",)].message == "key missing from the bulk answer"


def test_keys_of_several_columns_match_on_every_column() -> None:
    """(country, id) keys: both fields must match; booleans match JSON's true/false."""
    bulk = bulk_spec('["c", "ok"]', '["country", "ok"]')
    answer = {"data": {"items": [{"c": "DE", "ok": True}, {"c": "DE", "ok": "false"}]}}
    outcomes = match_bulk([("DE", True), ("DE", False), ("FR", True)], answer, 1, bulk)
    assert outcomes[("DE", True)].answer == {"c": "DE", "ok": True}
    assert outcomes[("DE", False)].answer == {"c": "DE", "ok": "false"}
    assert outcomes[("FR", True)].error is ErrorClass.MAPPING


def test_an_answer_without_a_results_list_fails_every_key_of_the_chunk() -> None:
    """Where [bulk].results points at no list, each key fails as mapping, saying where."""
    bulk = bulk_spec('"id"', '["k"]')
    outcomes = match_bulk([("a",), ("b",)], {"data": {"items": {"id": "a"}}}, 1, bulk)
    assert {o.error for o in outcomes.values()} == {ErrorClass.MAPPING}
    assert "[bulk].results" in (outcomes[("a",)].message or "")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "big",
    [123456789012345678901234567890, -9_300_000_000_000_000_000, 2**64],  # the second: 19 digits
)
async def test_bulk_results_keep_integers_beyond_64_bits_exact(tmp_path: Path, big: int) -> None:
    """A bulk answer holding an integer orjson cannot keep is read again exactly: its result's str
    column has every digit; the cache cannot store that result, and says so."""
    import httpx
    import polars as pl

    from service import Caller, enrich_frame, open_cache
    from service.testing import MockClock

    def answer(request: httpx.Request) -> httpx.Response:
        body = b'{"data": {"items": [{"id": "a", "n": %d}, {"id": "b", "n": 7}]}}' % big
        return httpx.Response(200, content=body)

    spec = make_spec(BULK + 'match = "id"\n[output.columns]\nn = { path = "n", type = "str" }\n')
    cache = open_cache(tmp_path, spec)
    try:
        async with Caller(
            spec, transport=httpx.MockTransport(answer), clock=MockClock(), cache=cache
        ) as caller:
            result = await enrich_frame(pl.DataFrame({"k": ["a", "b"]}), spec, caller=caller)
    finally:
        if cache is not None:
            cache.close()
    assert result.frame["n"].to_list() == [str(big), "7"]
    assert result.stats.uncacheable == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("keeper", [None, "cache", "answer log"])
async def test_a_bulk_results_body_is_written_only_where_something_keeps_it(
    tmp_path: Path, keeper: str | None
) -> None:
    """Each bulk result is mapped as its chunk arrives; its own body is written for the cache or
    the answer log to keep, and not at all without either (it cost an eighth of a bulk job's
    time). Either way the row is the same."""
    import httpx
    import orjson

    from service import Caller, open_cache
    from service.caches.answer_log import AnswerLog
    from service.testing import MockClock

    def answer(request: httpx.Request) -> httpx.Response:
        keys = orjson.loads(request.content)["keys"]
        return httpx.Response(200, json={"data": {"items": [{"id": k, "n": len(k)} for k in keys]}})

    spec = make_spec(BULK + 'match = "id"\n[output.columns]\nn = { path = "n", type = "i64" }\n')
    cache = open_cache(tmp_path, spec) if keeper == "cache" else None
    log = AnswerLog(tmp_path / "answers.sqlite") if keeper == "answer log" else None
    try:
        async with Caller(
            spec, transport=httpx.MockTransport(answer), clock=MockClock(), cache=cache, answer_log=log
        ) as caller:
            outcomes = await caller.outcomes([("a",), ("bb",)])
    finally:
        for keeping in (cache, log):
            if keeping is not None:
                keeping.close()
    assert [outcomes[key].row for key in [("a",), ("bb",)]] == [((1,), None), ((2,), None)]
    bodies = [outcomes[key].raw for key in [("a",), ("bb",)]]
    if keeper is None:
        assert bodies == [None, None]
    else:
        assert [orjson.loads(body) for body in bodies if body] == [{"id": "a", "n": 1}, {"id": "bb", "n": 2}]
