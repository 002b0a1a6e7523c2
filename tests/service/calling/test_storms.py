"""Storms are bounded: a 429 storm opens the breaker, a failing API gets a fifth more requests
rather than ``attempts`` times as many, one always-429 key costs only its own attempts; all on a
fake clock (no real waiting)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import polars as pl
import pytest

from service import CircuitOpenError, enrich_frame
from service.testing import MockClock
from tests.helpers import make_spec

RETRY = "[retry]\nattempts = 6\nbackoff = { initial_s = 1, max_s = 8, jitter = 0 }\n"


class CountingApi:
    def __init__(self, answer: Callable[[str], httpx.Response]) -> None:
        self.answer = answer
        self.calls: Counter[str] = Counter()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        self.calls[key] += 1
        await asyncio.sleep(0)
        return self.answer(key)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def _refuse(key: str) -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": "2"}, json={"error": "slow down"})


@pytest.mark.asyncio
async def test_a_429_storm_opens_the_breaker_as_rate_limited(clock: MockClock) -> None:
    """Every answer is 429: the job stops after about one window of attempts (200), not after
    2,000 keys x 6 attempts."""
    api = CountingApi(_refuse)
    spec = make_spec("[limits]\nconcurrency = 16\n" + RETRY)
    frame = pl.DataFrame({"k": [f"s{i}" for i in range(2000)]})
    with pytest.raises(CircuitOpenError, match="rate_limited: the API kept answering 429"):
        await enrich_frame(frame, spec, transport=api.transport, clock=clock)
    assert 200 <= sum(api.calls.values()) <= 200 + 16


@pytest.mark.asyncio
async def test_an_api_failing_every_request_gets_a_fifth_more_not_six_times(
    clock: MockClock,
) -> None:
    """503 for everything, the breaker off: the retry budget (20% of attempts + 10/s over 10 s)
    makes the failures final; the rows say why."""
    api = CountingApi(lambda key: httpx.Response(503))
    spec = make_spec("[limits]\nconcurrency = 16\n[circuit]\nenabled = false\n" + RETRY)
    frame = pl.DataFrame({"k": [f"f{i}" for i in range(1000)]})
    result = await enrich_frame(frame, spec, transport=api.transport, clock=clock)
    requests = sum(api.calls.values())
    # retries <= 100 + 0.2 * requests per 10 s window: about 1,375 requests (a little more as the
    # fake clock, moved by every sleep, slides the window); 6,000 without the budget.
    assert requests <= 1500
    assert result.stats.retries_refused > 0
    messages = result.frame["_enrich_message"].to_list()
    assert sum("retry budget is spent" in m for m in messages) == result.stats.retries_refused
    assert set(result.frame["_enrich_error"].to_list()) == {"http_5xx"}


@pytest.mark.asyncio
async def test_one_always_429_key_costs_its_own_attempts_and_nothing_else(clock: MockClock) -> None:
    api = CountingApi(lambda key: _refuse(key) if key == "bad" else httpx.Response(200, json={"name": key}))
    spec = make_spec("[limits]\nconcurrency = 16\n" + RETRY)
    keys = ["bad", *(f"g{i}" for i in range(1000))]
    started = clock.now()
    result = await enrich_frame(pl.DataFrame({"k": keys}), spec, transport=api.transport, clock=clock)
    statuses = dict(zip(keys, result.frame["_enrich_error"].to_list(), strict=True))
    assert statuses.pop("bad") == "rate_limited"
    assert set(statuses.values()) == {None}
    assert api.calls["bad"] == 6
    assert max(count for key, count in api.calls.items() if key != "bad") == 1
    # Every wait the job made, summed (concurrent ones too): five Retry-Afters of 2 s, and the
    # pauses those 429s imposed on the workers waiting then.
    assert clock.now() - started <= 6 * 2 * 16
