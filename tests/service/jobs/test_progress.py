"""A job's progress and figures: live within a batch, never backwards, distinct keys counted once
per job, waiting time as wall-clock time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import polars as pl
import pytest

from service import JobOptions, JobProgress, OnThisLoop, run_job
from tests.helpers import make_spec


def write_input(tmp_path: Path, keys: list[str]) -> Path:
    source = tmp_path / "in.parquet"
    pl.DataFrame({"k": keys}).write_parquet(source)
    return source


def answering(held: asyncio.Event | None = None, prefix: str = "held-") -> httpx.MockTransport:
    """Answers every key at once, but keys starting with ``prefix`` only once ``held`` is set."""

    async def answer(request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        if held is not None and key.startswith(prefix):
            await held.wait()
        return httpx.Response(200, json={"name": key})

    return httpx.MockTransport(answer)


@pytest.mark.asyncio
async def test_progress_moves_within_a_batch_as_answers_arrive(tmp_path: Path) -> None:
    """One batch of 100 rows, half its keys held back by the API until progress shows the other
    half done: reports move within the batch, never go back, and end at 100 of 100."""
    keys = [f"quick-{i}" for i in range(50)] + [f"held-{i}" for i in range(50)]
    source = write_input(tmp_path, keys)
    held = asyncio.Event()
    seen: list[JobProgress] = []

    def report(progress: JobProgress) -> None:
        seen.append(progress)
        if 0 < progress.rows_done < progress.rows_total:
            held.set()  # the job can only finish once an intermediate count was reported

    async with asyncio.timeout(30):
        stats = await run_job(
            source,
            make_spec(),
            tmp_path / "out.parquet",
            JobOptions(batch_size=100),
            batches=OnThisLoop(transport=answering(held)),
            progress=report,
            progress_every_s=0.01,
        )
    done = [p.rows_done for p in seen]
    assert 50 in done  # the quick half, before the batch ended
    assert done == sorted(done)
    assert (done[-1], seen[-1].rows_total, stats.rows_ok) == (100, 100, 100)
    assert seen[-1].eta_s == 0.0


@pytest.mark.asyncio
async def test_distinct_keys_are_counted_once_per_job_across_batches(tmp_path: Path) -> None:
    """50 rows over 30 keys in batches of 10 (every batch holds 10 distinct keys): 30 distinct
    keys, 30 requests, not the 50 a sum over batches gives."""
    source = write_input(tmp_path, [f"f{i % 30}" for i in range(50)])
    stats = await run_job(
        source,
        make_spec(),
        tmp_path / "out.parquet",
        JobOptions(batch_size=10),
        batches=OnThisLoop(transport=answering()),
    )
    assert (stats.rows, stats.distinct_keys, stats.requests) == (50, 30, 30)


@pytest.mark.asyncio
async def test_waiting_for_the_rate_limit_is_wall_clock_time(tmp_path: Path) -> None:
    """100 keys at 200/s with 64 in flight: requests wait for the limit together, and the time
    waited is at most the job's own time (summed over requests it would be about 25 s)."""
    source = write_input(tmp_path, [f"r{i}" for i in range(100)])
    spec = make_spec('[limits]\nconcurrency = 64\nrate = "200/s"\nburst = 1\n')
    stats = await run_job(source, spec, tmp_path / "out.parquet", batches=OnThisLoop(transport=answering()))
    assert stats.requests == 100
    assert 0 < stats.throttled_s <= stats.elapsed_s
