"""The ``enrich-file`` flow: one flow run per job, one task run per group of batches.

Batches run in task runs on the flow's own event loop, so every batch shares one HTTP client and
one set of limits; with a Dask cluster in the options they run there (``flows.on_dask``).
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.events import on_completion, on_crashed, on_failure
from flows.job import enrich_job
from flows.parameters import EnrichFileOptions
from flows.task_runs import InTaskRuns, batches_per_task_run


@flow(
    name="enrich-file",
    validate_parameters=True,
    on_completion=[on_completion],
    on_failure=[on_failure],
    on_crashed=[on_crashed],
)
async def enrich_file(
    input: str, spec: str, output: str, options: EnrichFileOptions | None = None
) -> dict[str, Any]:
    """Enrich INPUT with SPEC into OUTPUT; returns the job's statistics."""
    options = options or EnrichFileOptions()
    if options.on_dask:
        from flows.on_dask import enrich_on_dask  # Dask's imports cost a second: only this path

        return await enrich_on_dask(input, spec, output, options)
    per_task_run = batches_per_task_run(options.batch_size, options.batches_per_task_run)
    return await enrich_job(input, spec, output, options, InTaskRuns(per_task_run))
