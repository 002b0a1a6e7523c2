"""One batch enriched on its own, in whatever process runs it (a Dask worker): no shared state but
the files. The spec is read again from its path, its limits replaced by this batch's share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from service.caller import Caller
from service.checkpoint import JobState
from service.engine import enrich_frame
from service.run_job import open_cache
from service.spec import LimitsSection, load_spec, with_batch_limits
from service.stats import StatsRecorder


@dataclass(frozen=True)
class BatchShare:
    """What a process needs to enrich one batch of a job: picklable, small."""

    spec_path: str
    state_dir: str
    cache_dir: str | None
    concurrency: int  # this batch's share of the job's limits
    rate: float | None
    burst: int


@dataclass(frozen=True)
class BatchDone:
    rows: int
    stats: StatsRecorder
    throttled_s: float


def split_limits(limits: LimitsSection, slots: int) -> tuple[int, int, float | None, int]:
    """How many batches may run at once (at most ``slots``), and each one's concurrency, rate and
    burst, so that together they stay within ``limits``."""
    batches = max(1, min(slots, limits.concurrency))
    rate = None if limits.rate is None else limits.rate / batches
    return batches, limits.concurrency // batches, rate, max(1, limits.effective_burst // batches)


async def enrich_batch_alone(share: BatchShare, index: int, batch: pl.DataFrame) -> BatchDone:
    """Enrich ``batch`` with a caller of its own and write its part file (not its journal entry)."""
    spec = with_batch_limits(
        load_spec(share.spec_path, environ=os.environ),
        concurrency=share.concurrency,
        rate=share.rate,
        burst=share.burst,
    )
    cache = open_cache(share.cache_dir, spec)
    try:
        async with Caller(spec, cache=cache) as caller:
            result = await enrich_frame(batch, spec, caller=caller)
            JobState(Path(share.state_dir)).write_part(index, result.frame)
            return BatchDone(batch.height, caller.stats, caller.limiter.statistics().throttled_s)
    finally:
        if cache is not None:
            cache.close()
