"""Pacing from the quota an API announces: on a fake clock, against the mock API's own quota
counting (``service.testing.mock_quota``) behind httpx.MockTransport, so two minutes of a job
take no real time and every count is exact."""

from __future__ import annotations

import httpx
import polars as pl
import pytest

from service import EnrichResult, enrich_frame
from service.testing import MockClock
from service.testing.mock_quota import QuotaHeaders, QuotaWindows
from tests.helpers import make_spec

RETRY = "[retry]\nattempts = 6\nbackoff = { initial_s = 1, max_s = 8, jitter = 0 }\n"


class QuotaApi:
    """600 requests a minute, told in every answer; each request's time and status kept."""

    def __init__(self, clock: MockClock, form: QuotaHeaders = "ietf", quota: int = 600) -> None:
        self.windows = QuotaWindows(quota, 60.0, form, now=clock.now, wall=clock.wall)
        self.clock = clock
        self.sent: list[tuple[float, int]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        allowed, headers = self.windows.take()
        status = 200 if allowed else 429
        self.sent.append((self.clock.now(), status))
        return httpx.Response(status, json={"name": "x"} if allowed else None, headers=headers)

    def answered_within(self, seconds: float) -> int:
        start = self.sent[0][0]
        return sum(1 for at, status in self.sent if status == 200 and at < start + seconds)


async def run(api: QuotaApi, keys: int, limits: str = "") -> EnrichResult:
    spec = make_spec(RETRY + "[limits]\nconcurrency = 1\n" + limits)
    frame = pl.DataFrame({"k": [f"k{i}" for i in range(keys)]})
    return await enrich_frame(frame, spec, transport=httpx.MockTransport(api), clock=api.clock)


@pytest.mark.asyncio
@pytest.mark.parametrize("form", ["ietf", "x"])
async def test_a_job_paced_by_the_quota_never_meets_a_429_and_uses_it(
    clock: MockClock, form: QuotaHeaders
) -> None:
    """A 600/min quota, a job needing more than two minutes of it: not one 429, and at least 90%
    of the quota of the first two minutes used (1,080 of 1,200 requests)."""
    api = QuotaApi(clock, form)
    result = await run(api, 1_300)
    assert api.windows.refused == 0
    assert [status for _, status in api.sent].count(429) == 0
    assert result.stats.rows_ok == 1_300
    assert api.answered_within(120.0) >= 1_080


@pytest.mark.asyncio
async def test_without_pacing_the_job_runs_into_the_wall(clock: MockClock) -> None:
    """pace_from_headers = false: the same job spends the quota at once and meets 429s (then
    pauses for their Retry-After): what pacing avoids."""
    api = QuotaApi(clock)
    result = await run(api, 1_300, "pace_from_headers = false\n")
    assert api.windows.refused > 0
    assert result.stats.rows_ok == 1_300  # the 429s were retried after their Retry-After


@pytest.mark.asyncio
async def test_the_spec_s_rate_still_bounds_a_generous_quota(clock: MockClock) -> None:
    """A quota of 60,000 a minute and a spec rate of 5/s: 5/s it is (never faster than the spec)."""
    api = QuotaApi(clock, quota=60_000)
    await run(api, 100, 'rate = "5/s"\n')
    times = [at for at, _ in api.sent]
    assert times[-1] - times[0] >= 99 / 5 * 0.98  # 99 intervals at 5/s (less the 2% headroom)


@pytest.mark.asyncio
@pytest.mark.parametrize(("pacing", "held"), [(True, True), (False, False)])
async def test_a_503_saying_when_to_come_back_holds_the_job(
    clock: MockClock, pacing: bool, held: bool
) -> None:
    """A 503 with Retry-After: 2 on key a, one request at a time: with pacing, b and c (never
    refused) wait the 2 s too; without, only a's retry does."""
    sent: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        sent.append((key, clock.now()))
        if key == "a" and len(sent) == 1:
            return httpx.Response(503, headers={"Retry-After": "2"})
        return httpx.Response(200, json={"name": key})

    limits = "" if pacing else "pace_from_headers = false\n"
    spec = make_spec(RETRY + "[limits]\nconcurrency = 1\n" + limits)
    frame = pl.DataFrame({"k": ["a", "b", "c"]})
    result = await enrich_frame(frame, spec, transport=httpx.MockTransport(handler), clock=clock)
    assert result.stats.rows_ok == 3
    refused_at = sent[0][1]
    others = [at - refused_at for key, at in sent[1:] if key != "a"]
    assert all(wait >= 2.0 for wait in others) is held, sent
