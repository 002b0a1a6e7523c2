"""The enrich-file job with its batches on a Dask cluster, through prefect-dask's DaskTaskRunner.

The flow process reads the input, hands batches to the cluster and records each finished one in
the job's journal: checkpoint, resume, order and every-row-once work as in one process. Each batch
task reads the spec again and enriches its batch with an HTTP client and limiter of its own. The
job's limits are split, not shared: with W worker threads, at most min(W, concurrency) batches run
at once, each with that fraction of the concurrency, the rate and the burst, so the API never sees
more than the spec allows in total. Workers must see the same files (input, spec, output folder,
cache) under the same paths: one machine, or a shared file system.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio.to_thread
import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect_dask.task_runners import DaskTaskRunner

from flows.enrich_file import EnrichFileParameters, enrich_job, retry_crashed_batch_only
from service.caller import Caller
from service.checkpoint import JobState, state_dir_for
from service.remote_batch import BatchDone, BatchShare, enrich_batch_alone, split_limits
from service.response_cache import is_redis_url
from service.run_job import BatchRunner
from service.spec import Spec


@task(
    name="enrich-batch-on-worker",
    task_run_name="batch-{index}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,  # as on one process: a crashed batch only (its part is rewritten whole)
    retry_delay_seconds=1,
    retry_condition_fn=retry_crashed_batch_only,
)
def enrich_batch_on_worker(share: BatchShare, index: int, batch: pl.DataFrame) -> BatchDone:
    """One batch in a Dask worker: enriched on an event loop of its own, its part file written."""
    import uvloop

    return uvloop.run(enrich_batch_alone(share, index, batch))


class DaskBatches:
    """Runs batches as Dask tasks; ``slots`` is how many the cluster runs at once."""

    def __init__(self, slots: int) -> None:
        self.slots = slots

    async def runner(self, spec: Spec, parameters: EnrichFileParameters) -> tuple[BatchRunner, int]:
        batches, concurrency, rate, burst = split_limits(spec.limits, self.slots)
        share = _batch_share(parameters, concurrency, rate, burst)
        get_run_logger().info(
            "%d batches at once on the cluster, each with concurrency %d%s",
            batches,
            concurrency,
            "" if rate is None else f" and {rate:g} requests/s",
        )

        async def run_on_worker(state: JobState, index: int, batch: pl.DataFrame, caller: Caller) -> int:
            future = enrich_batch_on_worker.submit(share, index, batch)
            done: BatchDone = await anyio.to_thread.run_sync(future.result)
            caller.stats.absorb(done.stats, done.throttled_s)
            await anyio.to_thread.run_sync(state.record_done, index)
            return done.rows

        return run_on_worker, batches


def _batch_share(
    parameters: EnrichFileParameters, concurrency: int, rate: float | None, burst: int
) -> BatchShare:
    return BatchShare(
        spec_path=os.path.abspath(parameters.spec),  # the workers' working folder may differ
        state_dir=os.path.abspath(state_dir_for(Path(parameters.output))),
        cache_dir=_absolute_location(parameters.cache_dir),
        concurrency=concurrency,
        rate=rate,
        burst=burst,
    )


def _absolute_location(cache_dir: str | None) -> str | None:
    if cache_dir is None or is_redis_url(cache_dir):
        return cache_dir
    return os.path.abspath(cache_dir)


@flow(name="enrich-file-on-dask", validate_parameters=False)
async def enrich_file_on_dask(parameters: EnrichFileParameters, slots: int) -> dict[str, Any]:
    """The enrich-file job, its batches run by this flow's (Dask) task runner."""
    return await enrich_job(parameters, on_workers=DaskBatches(slots))


async def enrich_on_dask(parameters: EnrichFileParameters) -> dict[str, Any]:
    """Run the job on the Dask cluster the parameters name (an address, or N local workers)."""
    if parameters.dask_address is not None:
        runner = DaskTaskRunner(address=parameters.dask_address)
        slots = await anyio.to_thread.run_sync(_cluster_threads, parameters.dask_address)
    else:
        workers = parameters.dask_workers or 1
        runner = DaskTaskRunner(
            cluster_kwargs={
                "n_workers": workers,
                "threads_per_worker": 1,
                "processes": True,
                "host": "127.0.0.1",
                "dashboard_address": None,
                # The workers report their task runs to this flow's API: in Prefect's local mode
                # each would otherwise start a temporary server of its own.
                "env": {"PREFECT_API_URL": _api_url(), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
            }
        )
        slots = workers
    on_cluster = enrich_file_on_dask.with_options(task_runner=runner)  # type: ignore[arg-type]
    result: dict[str, Any] = await on_cluster(parameters, slots)
    return result


def _api_url() -> str:
    from prefect.client.orchestration import get_client

    return str(get_client().api_url).rstrip("/")


def _cluster_threads(address: str) -> int:
    from distributed import Client

    with Client(address, timeout=30) as client:  # type: ignore[no-untyped-call]
        threads: dict[str, int] = client.nthreads()
        return max(1, sum(threads.values()))
