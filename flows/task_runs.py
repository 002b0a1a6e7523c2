"""Batches as Prefect task runs: one task run per group of consecutive batches, each batch still
done (written and recorded) on its own, so a killed job redoes at most the batches in flight.

A task run costs the flow process and its Prefect server tens of milliseconds of CPU (the server
about 40 ms a task run here, README "As a Prefect flow"): a 1M-row job paid for 100 of them at the
default batch size. Grouped by ``ROWS_PER_TASK_RUN``, it pays for 10. Grouping changes what the UI
shows, nothing else: the batches of a group run on the flow's event loop, sharing one caller, as
many at once as without groups.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import polars as pl
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.batch_task import enrich_batch_retrying_crashes
from service import Batches, BatchPlacement, EnrichStats, JobState, OnThisLoop, Spec

# Rows a task run covers by default: 10 task runs for a 1M-row job, a few minutes of work each at
# most at the speeds an API allows, so the UI still shows the job moving.
ROWS_PER_TASK_RUN = 100_000


def batches_per_task_run(batch_size: int, asked: int | None = None) -> int:
    """Batches a task run covers: ``asked``, else as many as make ``ROWS_PER_TASK_RUN`` rows."""
    return asked if asked is not None else max(1, ROWS_PER_TASK_RUN // batch_size)


@dataclass(frozen=True)
class InTaskRuns:
    """Batches on this event loop (``inner``), ``per_task_run`` consecutive ones to a task run."""

    per_task_run: int
    inner: BatchPlacement = field(default_factory=lambda: OnThisLoop(runner=enrich_batch_retrying_crashes))

    @contextlib.asynccontextmanager
    async def __call__(self, spec: Spec, cache_dir: str | None, state: JobState) -> AsyncIterator[Batches]:
        """The inner placement's batches, each handed to its group's task run."""
        failure: Exception | None = None
        async with self.inner(spec, cache_dir, state) as batches, anyio.create_task_group() as runs:
            grouped = _GroupedBatches(batches, self.per_task_run, state.batches_planned, runs)
            try:
                yield grouped
            except Exception as exc:  # raised past the task group, which would wrap it in a group
                failure = exc
            finally:
                grouped.close_group()  # the last group's task run ends with its batches
        if failure is not None:
            raise failure


class _Arrival:
    """A batch handed to a task run, and how it ended there."""

    def __init__(self, state: JobState, index: int, batch: pl.DataFrame) -> None:
        self.state = state
        self.index = index
        self._batch: pl.DataFrame | None = batch
        self.scope = anyio.CancelScope()  # cancelled when whoever handed it stops waiting
        self.ended = anyio.Event()
        self.error: BaseException | None = None

    def take(self) -> pl.DataFrame:
        """The batch, for the task run to enrich: the arrival keeps no reference to it after."""
        batch, self._batch = self._batch, None
        if batch is None:
            raise RuntimeError(f"batch {self.index} was taken twice")
        return batch


class _Inbox:
    """The batches of one task run as they arrive (a plain object: Prefect does not look inside
    a task's parameters that are not collections)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sender: MemoryObjectSendStream[_Arrival]
        self.receiver: MemoryObjectReceiveStream[_Arrival]
        self.sender, self.receiver = anyio.create_memory_object_stream[_Arrival](math.inf)
        self.waiting: set[_Arrival] = set()  # handed, and not ended: a batch's frame goes with it
        self.closed_because: str | None = None

    def hand(self, arrival: _Arrival) -> None:
        if self.closed_because is not None:
            raise RuntimeError(f"batch {arrival.index} has no task run: {self.closed_because}")
        self.waiting.add(arrival)
        self.sender.send_nowait(arrival)

    def close_after(self, ended: BaseException | None) -> None:
        """The task run ended: a batch it did not take (it failed to start, or stopped early)
        fails, rather than waiting for ever."""
        how = "" if ended is None else f" ({type(ended).__name__}: {ended})"
        self.closed_because = f"task run {self.name} ended{how} before taking it"
        for arrival in list(self.waiting):
            if not arrival.ended.is_set():
                arrival.error = RuntimeError(f"batch {arrival.index} has no task run: {self.closed_because}")
                arrival.ended.set()
        self.sender.close()
        self.receiver.close()


@dataclass
class _GroupedBatches:
    batches: Batches
    per_task_run: int
    planned: int | None
    runs: TaskGroup
    _open: tuple[int, _Inbox] | None = field(default=None)

    @property
    def in_flight(self) -> int:
        return self.batches.in_flight

    def statistics(self) -> EnrichStats:
        return self.batches.statistics()

    async def enrich(self, state: JobState, index: int, batch: pl.DataFrame) -> None:
        arrival = _Arrival(state, index, batch)
        inbox = self._inbox_for(index)
        inbox.hand(arrival)
        try:
            await arrival.ended.wait()
        except BaseException:  # cancelled (the job's deadline): so is the batch, in its task run
            arrival.scope.cancel()
            raise
        finally:
            inbox.waiting.discard(arrival)
        if arrival.error is not None:
            raise arrival.error

    def _inbox_for(self, index: int) -> _Inbox:
        group = index // self.per_task_run
        if self._open is None or self._open[0] != group:
            # Batches arrive in order: a batch of the next group means this one has all of its.
            self.close_group()
            first = group * self.per_task_run
            last = first + self.per_task_run - 1
            if self.planned is not None:
                last = max(first, min(last, self.planned - 1))
            self._open = (group, _Inbox(f"batches-{first}-{last}"))
            self.runs.start_soon(self._run, first, last, self._open[1])
        return self._open[1]

    def close_group(self) -> None:
        if self._open is not None:
            self._open[1].sender.close()
            self._open = None

    async def _run(self, first: int, last: int, inbox: _Inbox) -> None:
        ended: BaseException | None = None
        try:
            await enrich_batches_task(self.batches, first, last, inbox)
        except Exception as exc:
            # A batch's failure went to whoever handed it the batch, and the task run's state
            # shows it: not raised a second time here.
            ended = exc
        finally:
            inbox.close_after(ended)


@task(
    name="enrich-batches",
    task_run_name="batches-{first}-{last}",
    cache_policy=NO_CACHE,
    persist_result=False,
)
async def enrich_batches_task(batches: Batches, first: int, last: int, inbox: _Inbox) -> None:
    """Enrich batches ``first`` to ``last`` (those not done before) as they arrive, each written
    and recorded on its own; fails with the first batch's failure once the others have ended."""
    failures: list[BaseException] = []
    async with inbox.receiver, anyio.create_task_group() as group:
        async for arrival in inbox.receiver:
            group.start_soon(_enrich_arrival, batches, arrival, failures)
    if failures:
        raise failures[0]


async def _enrich_arrival(batches: Batches, arrival: _Arrival, failures: list[BaseException]) -> None:
    try:
        with arrival.scope:
            await batches.enrich(arrival.state, arrival.index, arrival.take())
        if arrival.scope.cancel_called:
            failures.append(RuntimeError(f"batch {arrival.index} was stopped before it was done"))
    except Exception as exc:
        arrival.error = exc
        failures.append(exc)
    finally:
        arrival.ended.set()
