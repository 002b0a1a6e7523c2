"""Where a job's batches are enriched, and the one way a batch becomes done.

A batch is done when its part file is written and its index recorded in the journal
(``service.jobs.checkpoint``): ``enrich_batch`` does the first, ``enrich_and_record`` both. Where
that happens is a ``BatchPlacement``: by default ``OnThisLoop``, every batch on this event loop
sharing one caller; the flows place batches in Prefect tasks or on a Dask cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import anyio.to_thread
import polars as pl

from service.caches.answer_log import answer_log_open
from service.caches.location import open_cache
from service.calling.caller import Caller
from service.calling.priority import in_order_of
from service.calling.transport import TransportChoice
from service.engine import enrich_frame
from service.jobs.checkpoint import JobState
from service.spec import Spec
from service.stats import EnrichStats

# Three batches at once: one being answered while one is read and one written, so the API never
# idles between batches; memory holds three batches, whatever the input's size.
DEFAULT_BATCHES_IN_FLIGHT = 3

BatchRunner = Callable[[Caller, JobState, int, pl.DataFrame], Awaitable[object]]


async def enrich_batch(caller: Caller, state: JobState, index: int, batch: pl.DataFrame) -> EnrichStats:
    """Enrich batch ``index`` and write its part file (not yet recorded: not yet done); the
    batch's own statistics. Its requests go before those of later batches: batches finish in order."""
    with in_order_of(index):
        result = await enrich_frame(batch, caller.spec, caller=caller)
    await anyio.to_thread.run_sync(state.write_part, index, result.frame)
    return result.stats


async def enrich_and_record(caller: Caller, state: JobState, index: int, batch: pl.DataFrame) -> EnrichStats:
    """Enrich batch ``index``, write its part file and record it: after this it counts as done.

    A batch that fails before its record takes its part file with it, so a failed batch never
    leaves a part behind (one a kill leaves is redone and overwritten, never trusted)."""
    try:
        stats = await enrich_batch(caller, state, index, batch)
        await anyio.to_thread.run_sync(state.record_done, index)
    except BaseException:
        if not state.is_done(index):
            state.remove_part(index)
        raise
    return stats


class Batches(Protocol):
    """Enriches a job's batches, at most ``in_flight`` at once."""

    @property
    def in_flight(self) -> int:
        """How many batches may be enriched at once."""
        ...

    async def enrich(self, state: JobState, index: int, batch: pl.DataFrame) -> None:
        """Enrich, write and record batch ``index``."""
        ...

    def statistics(self) -> EnrichStats:
        """What the batches enriched so far did."""
        ...


class BatchPlacement(Protocol):
    """Opens ``Batches`` for a job with this spec, response cache (a folder, a URL, or None) and
    state (whose answer log every batch reads and writes)."""

    def __call__(
        self, spec: Spec, cache_dir: str | None, state: JobState
    ) -> AbstractAsyncContextManager[Batches]: ...


@dataclass(frozen=True)
class OnThisLoop:
    """Batches on this event loop, sharing one caller: one connection pool, one set of limits,
    and a key in flight for one batch is awaited by the others, not requested again."""

    runner: BatchRunner = enrich_and_record
    in_flight: int = DEFAULT_BATCHES_IN_FLIGHT
    transport: TransportChoice = None
    # Off only to measure what the answer log costs (benchmarks/): without it, a key repeated
    # across batches is asked again unless cached, and a kill loses every unrecorded answer.
    answer_log: bool = True

    @asynccontextmanager
    async def __call__(self, spec: Spec, cache_dir: str | None, state: JobState) -> AsyncIterator[Batches]:
        """The batches' caller, open while the job runs."""
        cache = open_cache(cache_dir, spec)
        logging = answer_log_open(state.answer_log_path) if self.answer_log else nullcontext(None)
        try:
            async with (
                logging as log,
                Caller(spec, transport=self.transport, cache=cache, answer_log=log) as caller,
            ):
                yield _CallerBatches(caller, self.runner, self.in_flight)
        finally:
            if cache is not None:
                cache.close()


@dataclass(frozen=True)
class _CallerBatches:
    caller: Caller
    runner: BatchRunner
    in_flight: int

    async def enrich(self, state: JobState, index: int, batch: pl.DataFrame) -> None:
        await self.runner(self.caller, state, index, batch)

    def statistics(self) -> EnrichStats:
        return self.caller.statistics()
