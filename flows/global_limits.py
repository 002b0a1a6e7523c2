"""Sharing one API's limits between processes through Prefect global concurrency limits.

Acquiring slots is a server round trip (100-160 ms, docs/architecture.md), so a process never takes
them per request. Concurrency: while it has at least one batch running, a process holds its share
of the limit (``occupy`` slots) and gives them back when it has none; processes whose shares add
up to more than the limit take turns, and together they never exceed it. The rate follows the
slots: a process holding a quarter of them paces itself at a quarter of the rate, so the
processes holding slots at any moment together stay within it, with no further round trips.

Why not a Prefect rate limit (slot decay) taken in blocks: measured here with two processes, the
server's refusals restart its decay clock and its Retry-After grows with the refused slots, so
the process that had the last block kept winning and the other waited for seconds (6 s of a 7 s
job), and a lone process reached only about 87% of the rate (one round trip per block).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import polars as pl
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import concurrency
from prefect.exceptions import ObjectAlreadyExists

from service import Batches, BatchPlacement, EnrichStats, JobState, Spec, with_limit_overrides


async def ensure_limit(name: str, limit: int) -> None:
    """Create the global concurrency limit ``name``, or set its size (a missing limit is not enforced)."""
    async with get_client() as client:
        try:
            await client.upsert_global_concurrency_limit_by_name(name, limit)
        except ObjectAlreadyExists:
            # Another process created it between our read and our create (the upsert is not
            # atomic): it exists now, so the second try updates it.
            await client.upsert_global_concurrency_limit_by_name(name, limit)


def process_limits(concurrency: int, rate: float | None, share: int) -> tuple[int, float | None]:
    """The concurrency and rate of a process holding ``share`` of ``concurrency`` slots.

    The rate follows the slots: holders of all the slots together get all of ``rate``.
    """
    return share, None if rate is None else rate * share / concurrency


# A slot round trip to the server takes about 0.1-0.2 s uncontended (docs/prefect-notes.md).
WAIT_WORTH_LOGGING_S = 0.5


class SharedSlots:
    """Holds ``occupy`` slots of the limit ``name`` while any batch of this process runs.

    The slots are held by one keeper task: Prefect's ``concurrency()`` must be left by the task
    that entered it, and the batch that takes the slots is rarely the one that gives them back.
    """

    def __init__(self, name: str, occupy: int) -> None:
        self._name = name
        self._occupy = occupy
        self._lock = anyio.Lock()
        self._holders = 0
        self._keeper: asyncio.Task[None] | None = None
        self._release = asyncio.Event()

    async def _keep(self, acquired: asyncio.Event, release: asyncio.Event) -> None:
        async with concurrency(self._name, occupy=self._occupy, strict=True):
            acquired.set()
            await release.wait()

    async def _take(self) -> None:
        """Take the slots (by starting their keeper); a long wait for them is logged."""
        started = time.monotonic()
        acquired, self._release = asyncio.Event(), asyncio.Event()
        self._keeper = asyncio.create_task(self._keep(acquired, self._release))
        waiting = asyncio.create_task(acquired.wait())
        await asyncio.wait({self._keeper, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._keeper.done():  # the keeper failed before it got the slots
            keeper, self._keeper = self._keeper, None
            await keeper
        waited = time.monotonic() - started
        if waited >= WAIT_WORTH_LOGGING_S:
            get_run_logger().info(
                "waited %.1f s for %d slots of global limit %r (held by other processes, or a slow server)",
                waited,
                self._occupy,
                self._name,
            )

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Run one batch under the process's share of the limit."""
        async with self._lock:
            if self._holders == 0:
                await self._take()
            self._holders += 1
        try:
            yield
        finally:
            async with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._keeper is not None:
                    keeper, self._keeper = self._keeper, None
                    self._release.set()
                    await keeper


@dataclass(frozen=True)
class UnderSharedSlots:
    """A placement whose batches run while this process holds its share of a global limit."""

    slots: SharedSlots
    inner: BatchPlacement

    @contextlib.asynccontextmanager
    async def __call__(self, spec: Spec, cache_dir: str | None, state: JobState) -> AsyncIterator[Batches]:
        """The inner placement's batches, each run under the shared slots."""
        async with self.inner(spec, cache_dir, state) as batches:
            yield _HeldBatches(batches, self.slots)


@dataclass(frozen=True)
class _HeldBatches:
    batches: Batches
    slots: SharedSlots

    @property
    def in_flight(self) -> int:
        return self.batches.in_flight

    async def enrich(self, state: JobState, index: int, batch: pl.DataFrame) -> None:
        async with self.slots.batch():
            await self.batches.enrich(state, index, batch)

    def statistics(self) -> EnrichStats:
        return self.batches.statistics()


async def share_global_limit(spec: Spec, placement: BatchPlacement) -> tuple[Spec, BatchPlacement]:
    """With ``[limits] global_limit``: the spec with this process's share of the limits, and the
    placement running batches under its share of the slots. Without: both unchanged."""
    limits = spec.limits
    if not limits.global_limit:
        return spec, placement
    share = limits.process_share
    await ensure_limit(limits.global_limit, limits.concurrency)
    own_concurrency, own_rate = process_limits(limits.concurrency, limits.rate, share)
    spec = with_limit_overrides(
        spec, concurrency=own_concurrency, rate=None if own_rate is None else f"{own_rate!r}/s"
    )
    get_run_logger().info(
        "sharing global limit %r: %d of its %d slots per process%s",
        limits.global_limit,
        share,
        limits.concurrency,
        "" if own_rate is None else f", {own_rate:g} of its {limits.rate:g} requests/s",
    )
    return spec, UnderSharedSlots(SharedSlots(limits.global_limit, share), placement)
