"""The enrich-file job inside a flow run, whichever flow runs it and wherever its batches go.

The engine's ``run_job`` does the work; the job adds what Prefect shows and coordinates: the
spec's limits shared through a global concurrency limit, a progress artifact, the summary
artifacts and the completion event. ``flows.enrich_file`` places batches on this event loop in
task runs of several batches each, ``flows.on_dask`` on a Dask cluster.
"""

from __future__ import annotations

import dataclasses
import os
from contextvars import ContextVar
from typing import Any

from prefect import get_run_logger

from flows.artifacts import ProgressArtifact, publish_summary
from flows.aws_credentials import use_aws_credentials
from flows.events import emit_job_event
from flows.global_limits import share_global_limit
from flows.parameters import EnrichFileOptions
from flows.secret_blocks import load_spec_with_blocks
from service import (
    BatchPlacement,
    JobProgress,
    ProgressReport,
    expand_environment,
    report_progress,
    run_job,
)

# Set by the command line, which runs the flow in its own process, for the terminal's display.
progress_reporter: ContextVar[ProgressReport | None] = ContextVar("progress_reporter", default=None)


async def enrich_job(
    input: str, spec_path: str, output: str, options: EnrichFileOptions, batches: BatchPlacement
) -> dict[str, Any]:
    """Enrich ``input`` with the spec at ``spec_path`` into ``output``; returns the statistics."""
    logger = get_run_logger()
    use_aws_credentials(options.aws_credentials)
    spec = options.applied_to(load_spec_with_blocks(spec_path, os.environ))
    if options.cache_dir is not None:  # ${NAME} (a Redis password) resolved here, never recorded
        cache_dir = expand_environment(options.cache_dir, os.environ, "cache_dir")
        options = options.model_copy(update={"cache_dir": cache_dir})
    spec, batches = await share_global_limit(spec, batches)
    artifact = await ProgressArtifact.create(output)
    terminal = progress_reporter.get()

    async def progress(now: JobProgress) -> None:
        await artifact(now)
        if terminal is not None:
            await report_progress(terminal, now)

    logger.info("enriching %s into %s (batches of %d)", input, output, options.batch_size)
    stats = await run_job(input, spec, output, options, batches=batches, progress=progress)
    summary = await publish_summary(output, spec.key, stats)
    logger.info("job finished\n%s", summary)
    emit_job_event("enrich.job.completed", {"input": input, "output": output}, stats)
    return dataclasses.asdict(stats)
