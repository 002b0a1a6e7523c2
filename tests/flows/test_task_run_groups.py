"""How batches are grouped into task runs, and which failures a batch is tried again for."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import polars as pl
import pytest

from flows import task_runs
from flows.batch_task import crashed, innermost
from flows.task_runs import ROWS_PER_TASK_RUN, InTaskRuns, batches_per_task_run
from service import (
    Batches,
    CircuitOpenError,
    EnrichStats,
    InputError,
    JobState,
    Spec,
    StatsRecorder,
)
from tests.helpers import make_spec


@pytest.mark.parametrize(
    ("batch_size", "asked", "expected"),
    [
        (10_000, None, 10),  # the default batch size: 10 task runs for 1M rows
        (1, None, ROWS_PER_TASK_RUN),
        (ROWS_PER_TASK_RUN + 1, None, 1),  # never zero
        (10_000, 1, 1),  # asked: one task run per batch
        (10, 7, 7),
    ],
)
def test_a_task_run_covers_about_100000_rows_unless_asked(
    batch_size: int, asked: int | None, expected: int
) -> None:
    assert batches_per_task_run(batch_size, asked) == expected


@pytest.mark.parametrize(
    ("error", "tried_again"),
    [
        (RuntimeError("a bug"), True),
        (OSError("disk hiccup"), True),
        (ExceptionGroup("from a task group", [OSError("disk hiccup")]), True),
        (InputError("bad input"), False),
        (CircuitOpenError("the API keeps failing"), False),
        (ExceptionGroup("from a task group", [InputError("bad input")]), False),
        (ExceptionGroup("mixed", [OSError("disk"), CircuitOpenError("open")]), False),
        (asyncio.CancelledError(), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_only_a_crash_is_tried_again(error: BaseException, tried_again: bool) -> None:
    """Bad input or an open circuit would meet the same error again; a cancellation is obeyed."""
    assert crashed(error) is tried_again


def test_a_group_of_one_error_is_told_as_that_error() -> None:
    leaf = OSError("disk hiccup")
    assert innermost(ExceptionGroup("outer", [ExceptionGroup("inner", [leaf])])) is leaf
    two = ExceptionGroup("two", [leaf, RuntimeError("another")])
    assert innermost(two) is two


class _Recorded:
    """Batches that are only recorded as enriched: the grouping alone, without the engine."""

    in_flight = 3

    def __init__(self) -> None:
        self.enriched: list[int] = []

    async def enrich(self, state: JobState, index: int, batch: pl.DataFrame) -> None:
        self.enriched.append(index)

    def statistics(self) -> EnrichStats:
        return StatsRecorder().snapshot(throttled_s=0, concurrency_wait_s=0, elapsed_s=0, circuit_open=None)


@pytest.mark.asyncio
async def test_a_task_run_keeps_no_batch_it_is_done_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task run covering many batches lets go of each batch's frame once it is done: memory
    holds the batches in flight, not a task run's worth (a million rows with 100,000-row groups)."""
    monkeypatch.setattr(task_runs, "enrich_batches_task", task_runs.enrich_batches_task.fn)  # no Prefect
    recorded = _Recorded()

    @contextlib.asynccontextmanager
    async def recording(spec: Spec, cache_dir: str | None, state: JobState) -> AsyncIterator[Batches]:
        yield recorded

    state = JobState(tmp_path / "state")
    frames: list[weakref.ref[pl.DataFrame]] = []
    async with InTaskRuns(per_task_run=100, inner=recording)(make_spec(), None, state) as batches:
        for index in range(5):
            frame = pl.DataFrame({"k": [f"k{index}"]})
            frames.append(weakref.ref(frame))
            await batches.enrich(state, index, frame)
            del frame
        gc.collect()
        alive = [index for index, ref in enumerate(frames) if ref() is not None]
        assert alive == []  # while the task run is still open
    assert recorded.enriched == [0, 1, 2, 3, 4]
