"""``concurrency = "auto"`` against the mock API's capacity mode, in a process of its own: a server
of 32 workers (past 32 in flight its latency grows, past 64 it answers 503)."""

from __future__ import annotations

import httpx
import polars as pl
import pytest

from service import enrich_frame, format_summary
from tests.helpers import make_spec, running_mock_api, server_stats

CAPACITY = 32


# Alone: the limit follows the latency the job sees, and a second test worker loading the same
# two cores raises it as an overloaded API would (one parallel run settled at 22 of 32 after such
# a spike).
@pytest.mark.alone
@pytest.mark.integration
@pytest.mark.asyncio
async def test_auto_settles_near_the_capacity_with_next_to_no_503s() -> None:
    with running_mock_api("--capacity", str(CAPACITY), "--latency-ms", "40") as url:
        limits = '[limits]\nconcurrency = "auto"\nmax_concurrency = 256\n'
        spec = make_spec(limits, url=f"{url}/v1/lookup/{{k}}")
        frame = pl.DataFrame({"k": [f"k{i}" for i in range(5_000)]})
        result = await enrich_frame(frame, spec)
        refused = server_stats(url, totals_only=True)["faults"].get("over_capacity", 0)
    stats = result.stats
    assert stats.rows_ok == 5_000
    assert stats.concurrency_settled is not None
    assert 0.75 * CAPACITY <= stats.concurrency_settled <= 1.5 * CAPACITY, stats.concurrency_chosen
    assert refused <= 0.01 * stats.requests
    assert f"concurrency auto: settled at {stats.concurrency_settled} in flight" in format_summary(stats)


@pytest.mark.integration
def test_the_mock_refuses_past_twice_its_capacity() -> None:
    """Twelve requests at once at a capacity of 4: eight in (each waiting its second), four refused."""
    with running_mock_api("--capacity", "4", "--latency-ms", "1000") as url:
        with httpx.Client(limits=httpx.Limits(max_connections=12), timeout=10) as client:
            import concurrent.futures

            with concurrent.futures.ThreadPoolExecutor(12) as pool:
                statuses = list(
                    pool.map(lambda i: client.get(f"{url}/v1/lookup/c{i}").status_code, range(12))
                )
        faults = server_stats(url, totals_only=True)["faults"]
    assert sorted(statuses) == [200] * 8 + [503] * 4
    assert faults["over_capacity"] == 4
