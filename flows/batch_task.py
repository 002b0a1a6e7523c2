"""A batch as a Prefect task run: retried when it crashed, its effects committed together.

One task run per batch, never per row: a task run costs the flow process and its API server
about 13 ms of CPU (docs/architecture.md, "Measured costs").
"""

from __future__ import annotations

from typing import Any

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import Task, exponential_backoff
from prefect.transactions import Transaction, atransaction

from service import Caller, EnrichError, EnrichStats, JobState, enrich_and_record


def retry_crashed_batch_only(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a batch that crashed (a lost worker, a disk hiccup), never bad input or an open circuit.

    HTTP failures never get here: they are retried per request inside the engine.
    """
    return not isinstance(state.data, EnrichError)


def _remove_part(current: Transaction) -> None:
    """Rollback hook: the batch's part file goes when the batch did not get recorded."""
    current.get("job_state").remove_part(current.get("batch_index"))


@task(
    name="enrich-batch",
    task_run_name="batch-{index}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=1),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_crashed_batch_only,
)
async def enrich_batch_task(caller: Caller, state: JobState, index: int, batch: pl.DataFrame) -> None:
    """Enrich batch ``index``, write its part and record it, in one transaction.

    If anything fails before the batch is recorded, the transaction rolls the part file back, so a
    part on disk is never left without its record (the engine alone tolerates that case too: an
    unrecorded part is redone). The rollback is a hook staged in the transaction rather than task
    runs of their own: three task runs per batch made the flow 1.8x the engine alone.
    """
    async with atransaction() as current:
        current.set("job_state", state)
        current.set("batch_index", index)
        current.stage(index, on_rollback_hooks=[_remove_part])
        stats = await enrich_and_record(caller, state, index, batch)
    get_run_logger().info("%s", describe_batch(index, stats))


def describe_batch(index: int, stats: EnrichStats) -> str:
    """One line on what a batch did: rows, failures, keys, requests, time."""
    by_class = ", ".join(f"{name} {n:,}" for name, n in sorted(stats.rows_failed_by_class.items()))
    failed = f"{stats.rows_failed:,} failed" + (f": {by_class}" if by_class else "")
    return (
        f"batch {index}: {stats.rows:,} rows ({failed}), "
        f"{stats.distinct_keys:,} distinct keys, {stats.requests:,} requests ({stats.retries:,} retries), "
        f"{stats.cache_hits + stats.answers_reused:,} keys known already, in {stats.elapsed_s:.2f} s"
    )
