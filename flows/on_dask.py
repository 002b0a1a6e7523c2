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

import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect_dask.task_runners import DaskTaskRunner

from flows.batch_task import retry_crashed_batch_only
from flows.environment import LOOPBACK_ONLY
from flows.job import enrich_job
from flows.parameters import EnrichFileOptions
from service import (
    Batches,
    BatchShare,
    EnrichStats,
    JobState,
    RemoteBatchDone,
    Spec,
    StatsRecorder,
    enrich_batch_alone,
    is_redis_url,
    split_limits,
)


@task(
    name="enrich-batch-on-worker",
    task_run_name="batch-{index}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,  # as on one process: a crashed batch only (its part is rewritten whole)
    retry_delay_seconds=1,
    retry_condition_fn=retry_crashed_batch_only,
)
def enrich_batch_on_worker(share: BatchShare, index: int, batch: pl.DataFrame) -> RemoteBatchDone:
    """One batch in a Dask worker: enriched on an event loop of its own, its part file written."""
    import uvloop

    # The worker's environment resolves the spec's ${NAME}: the edge where it is read.
    return uvloop.run(enrich_batch_alone(share, index, batch, environ=os.environ))


@dataclass(frozen=True)
class OnDask:
    """A placement for batches on this flow's (Dask) task runner, ``slots`` worker threads wide."""

    spec_path: str
    slots: int

    @contextlib.asynccontextmanager
    async def __call__(self, spec: Spec, cache_dir: str | None, state: JobState) -> AsyncIterator[Batches]:
        """Batches sized so that those running at once stay within ``spec``'s limits together."""
        batches, concurrency, rate, burst = split_limits(spec.limits, self.slots)
        share = self._share(cache_dir, state, concurrency, rate, burst)
        get_run_logger().info(
            "%d batches at once on the cluster, each with concurrency %d%s",
            batches,
            concurrency,
            "" if rate is None else f" and {rate:g} requests/s",
        )
        yield _DaskBatches(share, batches)

    def _share(
        self, cache_dir: str | None, state: JobState, concurrency: int, rate: float | None, burst: int
    ) -> BatchShare:
        # Absolute paths: the workers' working folder may differ.
        if cache_dir is not None and not is_redis_url(cache_dir):
            cache_dir = os.path.abspath(cache_dir)
        return BatchShare(
            spec_path=os.path.abspath(self.spec_path),
            state_dir=os.path.abspath(state.directory),
            cache_dir=cache_dir,
            concurrency=concurrency,
            rate=rate,
            burst=burst,
        )


@dataclass
class _DaskBatches:
    share: BatchShare
    in_flight: int
    _stats: StatsRecorder = field(default_factory=StatsRecorder)
    _started: float = field(default_factory=time.monotonic)

    async def enrich(self, state: JobState, index: int, batch: pl.DataFrame) -> None:
        future = enrich_batch_on_worker.submit(self.share, index, batch)
        done: RemoteBatchDone = await anyio.to_thread.run_sync(future.result)
        self._stats.absorb(
            done.stats, throttled_s=done.throttled_s, concurrency_wait_s=done.concurrency_wait_s
        )
        await anyio.to_thread.run_sync(state.record_done, index)

    def statistics(self) -> EnrichStats:
        elapsed = time.monotonic() - self._started
        return self._stats.snapshot(
            throttled_s=0.0, concurrency_wait_s=0.0, elapsed_s=elapsed, circuit_open=None
        )


@flow(name="enrich-file-on-dask", validate_parameters=False)
async def enrich_file_on_dask(
    input: str, spec: str, output: str, options: EnrichFileOptions, slots: int
) -> dict[str, Any]:
    """The enrich-file job, its batches run by this flow's (Dask) task runner."""
    return await enrich_job(input, spec, output, options, OnDask(spec, slots))


async def enrich_on_dask(input: str, spec: str, output: str, options: EnrichFileOptions) -> dict[str, Any]:
    """Run the job on the Dask cluster the options name (an address, or N local workers)."""
    if options.dask_address is not None:
        runner = DaskTaskRunner(address=options.dask_address)
        slots = await anyio.to_thread.run_sync(_cluster_threads, options.dask_address)
    else:
        slots = options.dask_workers or 1
        runner = DaskTaskRunner(cluster_kwargs=local_cluster_options(slots, _api_url()))
    on_cluster = enrich_file_on_dask.with_options(task_runner=runner)  # type: ignore[arg-type]
    result: dict[str, Any] = await on_cluster(input, spec, output, options, slots)
    return result


# Dask's statistical profiler samples every worker thread's stack (sys._current_frames) every
# 10 ms. On CPython 3.11 before 3.11.9 that call can deadlock the worker for good: it holds the
# thread list's lock while allocating frames, a garbage collection then frees a threading.local,
# whose cleanup waits for that same lock while holding the GIL (CPython gh-106883). Seen here on
# 3.11.7 as a batch stuck for ever on a worker whose every other thread waited for the GIL (gdb).
# Enrich has no use for the profile. A dotted key: the nanny merges this config into the one it
# passes its worker one level deep only (a nested "distributed" would replace all of Dask's).
WORKER_CONFIG = {"distributed.worker.profile.enabled": False}


def local_cluster_options(workers: int, api_url: str) -> dict[str, Any]:
    """The local Dask cluster of ``workers`` processes (one thread each) for a job reporting to
    the Prefect API at ``api_url``."""
    return {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        # The workers report their task runs to this flow's API: in Prefect's local mode each
        # would otherwise start a temporary server of its own.
        "env": {"PREFECT_API_URL": api_url, **LOOPBACK_ONLY},
        "config": WORKER_CONFIG,
    }


def _api_url() -> str:
    from prefect.client.orchestration import get_client

    return str(get_client().api_url).rstrip("/")


def _cluster_threads(address: str) -> int:
    from distributed import Client

    with Client(address, timeout=30) as client:  # type: ignore[no-untyped-call]
        threads: dict[str, int] = client.nthreads()
        return max(1, sum(threads.values()))
