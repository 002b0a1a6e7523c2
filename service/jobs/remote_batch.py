"""One batch enriched on its own, in whatever process runs it (a Dask worker): no shared state but
the files. The spec is read again from its path, its limits replaced by this batch's share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from service.caches.answer_log import answer_log_open
from service.caches.location import open_cache
from service.calling.caller import Caller
from service.jobs.batches import enrich_batch
from service.jobs.checkpoint import JobState
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
class RemoteBatchDone:
    """A batch enriched elsewhere: its rows, and the counters and waits of its caller to add to
    the job's."""

    rows: int
    stats: StatsRecorder
    throttled_s: float
    concurrency_wait_s: float


def split_limits(limits: LimitsSection, slots: int) -> tuple[int, int, float | None, int]:
    """How many batches may run at once (at most ``slots``), and each one's concurrency, rate and
    burst, so that together they stay within ``limits``."""
    batches = max(1, min(slots, limits.concurrency))
    rate = None if limits.rate is None else limits.rate / batches
    return batches, limits.concurrency // batches, rate, max(1, limits.effective_burst // batches)


async def enrich_batch_alone(
    share: BatchShare, index: int, batch: pl.DataFrame, *, environ: Mapping[str, str]
) -> RemoteBatchDone:
    """Enrich ``batch`` with a caller of its own and write its part file (not its journal entry:
    the process that keeps the journal records it). ``environ`` resolves the spec's ``${NAME}``."""
    spec = with_batch_limits(
        load_spec(share.spec_path, environ=environ),
        concurrency=share.concurrency,
        rate=share.rate,
        burst=share.burst,
    )
    cache = open_cache(share.cache_dir, spec)
    state = JobState(Path(share.state_dir))
    try:
        async with (
            answer_log_open(state.answer_log_path) as log,
            Caller(spec, cache=cache, answer_log=log) as caller,
        ):
            await enrich_batch(caller, state, index, batch)
            waited = caller.statistics()
            return RemoteBatchDone(
                batch.height, caller.counts.counters(), waited.throttled_s, waited.concurrency_wait_s
            )
    finally:
        if cache is not None:
            cache.close()
