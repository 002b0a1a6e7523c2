"""A batch inside a task run: tried again when it crashed, and what it did, logged.

HTTP failures never get here: the engine retries them per request. What a batch is tried again
for is a crash (a disk hiccup, a bug): never bad input or an open circuit, which a retry would
meet again, never a cancellation.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from prefect import get_run_logger
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import Task
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from service import Caller, EnrichError, EnrichStats, JobState, enrich_and_record, error_leaves

CRASH_RETRIES = 2


def crashed(exc: BaseException) -> bool:
    """A batch that crashed (a lost worker, a disk hiccup) is retried; never bad input or an open
    circuit (``EnrichError``: a retry would meet it again), never a cancellation, in a group
    (as task groups raise them) or not."""
    leaves = error_leaves(exc)
    return all(isinstance(leaf, Exception) and not isinstance(leaf, EnrichError) for leaf in leaves)


def innermost(exc: BaseException) -> BaseException:
    """The error a group of one error holds (as a task group raises one), for saying what it was."""
    leaves = error_leaves(exc)
    return leaves[0] if len(leaves) == 1 else exc


def retry_crashed_batch_only(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """``crashed`` as a Prefect retry condition (a task run per batch: on Dask)."""
    return not isinstance(state.data, BaseException) or crashed(state.data)


async def enrich_batch_retrying_crashes(
    caller: Caller, state: JobState, index: int, batch: pl.DataFrame
) -> EnrichStats:
    """Enrich, write and record batch ``index``, again (after 1 s, then 2 s) when it crashed; its
    task run's log says what it did."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(crashed),
        stop=stop_after_attempt(1 + CRASH_RETRIES),
        wait=wait_exponential_jitter(initial=1, max=8, jitter=0.5),
        before_sleep=lambda attempt: _log_crash(index, attempt),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            stats = await enrich_and_record(caller, state, index, batch)
    get_run_logger().info("%s", describe_batch(index, stats))
    return stats


def _log_crash(index: int, attempt: RetryCallState) -> None:
    raised = attempt.outcome.exception() if attempt.outcome is not None else None
    error = None if raised is None else innermost(raised)
    wait_s = attempt.next_action.sleep if attempt.next_action is not None else 0.0
    get_run_logger().warning(
        "batch %d crashed (%s: %s); trying it again in %.1f s (attempt %d of %d)",
        index,
        type(error).__name__,
        error,
        wait_s,
        attempt.attempt_number + 1,
        1 + CRASH_RETRIES,
    )


def describe_batch(index: int, stats: EnrichStats) -> str:
    """One line on what a batch did: rows, failures, keys, requests, time."""
    by_class = ", ".join(f"{name} {n:,}" for name, n in sorted(stats.rows_failed_by_class.items()))
    failed = f"{stats.rows_failed:,} failed" + (f": {by_class}" if by_class else "")
    return (
        f"batch {index}: {stats.rows:,} rows ({failed}), "
        f"{stats.distinct_keys:,} distinct keys, {stats.requests:,} requests ({stats.retries:,} retries), "
        f"{stats.cache_hits + stats.answers_reused:,} keys known already, in {stats.elapsed_s:.2f} s"
    )
