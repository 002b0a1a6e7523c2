"""The ``enrich-file`` flow: one flow run per job, one task run per batch.

The flow stays thin: the engine's ``run_job`` does the work, and the flow supplies a Prefect task
for each batch (awaited on the flow's own event loop, so every batch shares one HTTP client and
one set of limits), the progress and summary artifacts, the end-of-job event, and the state hooks.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun, State, TaskRun
from prefect.events import emit_event
from prefect.flows import Flow
from prefect.tasks import Task, exponential_backoff
from prefect.transactions import Transaction, atransaction
from pydantic import BaseModel, Field

from flows.global_limits import SharedSlots, ensure_limit, process_limits
from service.caller import Caller
from service.checkpoint import JobState
from service.engine import enrich_frame
from service.errors import EnrichError
from service.run_job import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BATCHES_IN_FLIGHT,
    BatchRunner,
    ProgressReport,
    run_job,
)
from service.spec import Spec, load_spec, with_limit_overrides
from service.stats import EnrichStats
from service.summary import format_summary

# Progress (artifact and log line) at most this often: each update is API calls the server handles
# on the job's machine in local mode, and a fast job finishes several batches a second.
PROGRESS_EVERY_S = 2.0

Notifier = Callable[[str, dict[str, Any]], None]
_notifiers: list[Notifier] = []
# Set by the CLI, which runs the flow in its own process, for the terminal's progress display.
progress_reporter: ContextVar[ProgressReport | None] = ContextVar("progress_reporter", default=None)


def add_notifier(notifier: Notifier) -> None:
    """Call ``notifier(event_name, payload)`` when a job completes or fails (email, chat, pager...)."""
    _notifiers.append(notifier)


class EnrichFileParameters(BaseModel):
    """What a job needs: validated by pydantic before the flow runs."""

    input: str = Field(min_length=1, description="input file, Parquet directory or glob")
    spec: str = Field(min_length=1, description="the spec file (TOML)")
    output: str = Field(min_length=1, description="output file (.parquet, .csv, .ndjson)")
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1)
    concurrency: int | None = Field(default=None, ge=1)
    rate: str | None = None
    restart: bool = False
    keep_state: bool = False
    cache_dir: str | None = Field(default=None, description="the response cache: a folder or redis://")
    dask_address: str | None = Field(default=None, description="a Dask scheduler, e.g. tcp://host:8786")
    dask_workers: int | None = Field(default=None, ge=1, description="a local Dask cluster of N processes")

    @property
    def on_dask(self) -> bool:
        return self.dask_address is not None or self.dask_workers is not None


def retry_crashed_batch_only(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a batch that crashed (a lost worker, a disk hiccup), never bad input or an open circuit.

    HTTP failures never get here: they are retried per request inside the engine.
    """
    return not isinstance(state.data, EnrichError)


def _remove_part(current: Transaction) -> None:
    """Rollback hook: the batch's part file goes when its recording failed."""
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
async def enrich_batch(state: JobState, index: int, batch: pl.DataFrame, caller: Caller) -> int:
    """Enrich one batch, then write its part and record it in one transaction; returns its rows.

    If recording fails, the transaction rolls the part file back, so a part on disk is never
    left without its record (the engine alone tolerates that case too: an unrecorded part is redone).
    """
    result = await enrich_frame(batch, caller.spec, caller=caller)
    # Staged in the transaction rather than as two task runs of their own: a task run costs the flow
    # process and its API server ~13 ms of CPU, and three per batch made the flow 1.8x the engine alone.
    async with atransaction() as current:
        await anyio.to_thread.run_sync(state.write_part, index, result.frame)
        current.set("job_state", state)
        current.set("batch_index", index)
        current.stage(index, on_rollback_hooks=[_remove_part])
        await anyio.to_thread.run_sync(state.record_done, index)
    return batch.height


def _payload(parameters: dict[str, Any], stats: EnrichStats | None, error: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"input": parameters.get("input"), "output": parameters.get("output")}
    if stats is not None:
        payload |= dataclasses.asdict(stats)
    if error is not None:
        payload["error"] = error
    return payload


def _emit(event: str, parameters: dict[str, Any], stats: EnrichStats | None, error: str | None) -> None:
    payload = _payload(parameters, stats, error)
    emit_event(
        event=event,
        resource={"prefect.resource.id": f"enrich.job.{parameters.get('output')}"},
        payload=payload,
    )
    for notifier in list(_notifiers):
        notifier(event, payload)


def _on_completion(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    get_run_logger_for(flow_run).info("job %s completed", flow_run.name)


def _on_failure(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    get_run_logger_for(flow_run).error("job %s failed: %s", flow_run.name, state.message)
    _emit("enrich.job.failed", dict(flow_run.parameters), None, state.message or "failed")


def _on_crashed(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    get_run_logger_for(flow_run).error("job %s crashed: %s", flow_run.name, state.message)
    _emit("enrich.job.failed", dict(flow_run.parameters), None, f"crashed: {state.message}")


def get_run_logger_for(flow_run: FlowRun) -> Any:
    """A logger for hooks, which may run outside the flow's context."""
    from prefect.logging import get_logger

    return get_logger("enrich.flows").getChild(str(flow_run.id))


def _artifact_key(output: str) -> str:
    name = "".join(c if c.isalnum() else "-" for c in Path(output).name.lower()).strip("-")
    return f"enrich-{name}"[:60].rstrip("-") or "enrich-job"


@flow(
    name="enrich-file",
    validate_parameters=True,
    on_completion=[_on_completion],
    on_failure=[_on_failure],
    on_crashed=[_on_crashed],
)
async def enrich_file(
    input: str,
    spec: str,
    output: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    concurrency: int | None = None,
    rate: str | None = None,
    restart: bool = False,
    keep_state: bool = False,
    cache_dir: str | None = None,
    dask_address: str | None = None,
    dask_workers: int | None = None,
) -> dict[str, Any]:
    """Enrich INPUT with SPEC into OUTPUT; returns the job's statistics.

    With ``dask_address`` or ``dask_workers`` the batches run on a Dask cluster (``flows.on_dask``).
    """
    parameters = EnrichFileParameters(
        input=input,
        spec=spec,
        output=output,
        batch_size=batch_size,
        concurrency=concurrency,
        rate=rate,
        restart=restart,
        keep_state=keep_state,
        cache_dir=cache_dir,
        dask_address=dask_address,
        dask_workers=dask_workers,
    )
    if parameters.on_dask:
        from flows.on_dask import enrich_on_dask  # only this path needs prefect-dask

        return await enrich_on_dask(parameters)
    return await enrich_job(parameters, on_workers=None)


class WorkerBatches(Protocol):
    """Where batches run when not on the flow's event loop (``flows.on_dask``)."""

    async def runner(self, spec: Spec, parameters: EnrichFileParameters) -> tuple[BatchRunner, int]:
        """The batch runner, and how many batches may run at once, within ``spec``'s limits."""
        ...


async def enrich_job(parameters: EnrichFileParameters, on_workers: WorkerBatches | None) -> dict[str, Any]:
    """The job inside a flow run: its batches on this event loop, or on workers (``on_workers``)."""
    logger = get_run_logger()
    loaded = with_limit_overrides(
        load_spec(parameters.spec, environ=os.environ),
        concurrency=parameters.concurrency,
        rate=parameters.rate,
    )
    key = _artifact_key(parameters.output)
    progress_id = await acreate_progress_artifact(0.0, key=f"{key}-progress", description="rows enriched (%)")

    last_report = -math.inf

    async def batch_done(rows_done: int, rows_total: int) -> None:
        nonlocal last_report
        now = time.monotonic()
        if rows_done < rows_total and now - last_report < PROGRESS_EVERY_S:
            return
        last_report = now
        percent = 100.0 * rows_done / rows_total if rows_total else 100.0
        await aupdate_progress_artifact(progress_id, percent)
        logger.info("%s of %s rows done", f"{rows_done:,}", f"{rows_total:,}")

    batch_runner: Any = enrich_batch
    batches_in_flight = DEFAULT_BATCHES_IN_FLIGHT
    limits = loaded.limits
    slots: SharedSlots | None = None
    if limits.global_limit:
        share = limits.process_share
        await ensure_limit(limits.global_limit, limits.concurrency)
        slots = SharedSlots(limits.global_limit, share)
        own_concurrency, own_rate = process_limits(limits.concurrency, limits.rate, share)
        loaded = with_limit_overrides(
            loaded, concurrency=own_concurrency, rate=None if own_rate is None else f"{own_rate!r}/s"
        )
        logger.info(
            "sharing global limit %r: %d of its %d slots per process%s",
            limits.global_limit,
            share,
            limits.concurrency,
            "" if own_rate is None else f", {own_rate:g} of its {limits.rate:g} requests/s",
        )
    if on_workers is not None:  # the workers split this process's limits between them
        batch_runner, batches_in_flight = await on_workers.runner(loaded, parameters)
    if slots is not None:
        inner, held = batch_runner, slots

        async def batch_runner(state: JobState, index: int, batch: pl.DataFrame, caller: Caller) -> int:
            async with held.batch():
                return int(await inner(state, index, batch, caller))

    logger.info(
        "enriching %s into %s (batches of %d)", parameters.input, parameters.output, parameters.batch_size
    )
    stats = await run_job(
        parameters.input,
        loaded,
        Path(parameters.output),
        batch_size=parameters.batch_size,
        batches_in_flight=batches_in_flight,
        restart=parameters.restart,
        keep_state=parameters.keep_state,
        cache_dir=parameters.cache_dir,
        batch_runner=batch_runner,
        on_batch_done=batch_done,
        progress=progress_reporter.get(),
    )
    await aupdate_progress_artifact(progress_id, 100.0)
    summary = format_summary(stats)
    await acreate_markdown_artifact(
        f"# Enrich: {parameters.output}\n\n```\n{summary}\n```\n", key=f"{key}-summary"
    )
    await acreate_table_artifact(_summary_table(stats), key=f"{key}-table")
    logger.info("job finished\n%s", summary)
    _emit("enrich.job.completed", parameters.model_dump(), stats, None)
    return dataclasses.asdict(stats)


def _summary_table(stats: EnrichStats) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"figure": "rows ok", "value": stats.rows_ok},
        {"figure": "rows failed", "value": stats.rows_failed},
    ]
    rows += [
        {"figure": f"failed: {name}", "value": n} for name, n in sorted(stats.rows_failed_by_class.items())
    ]
    rows += [
        {"figure": "requests", "value": stats.requests},
        {"figure": "retries", "value": stats.retries},
        {"figure": "cache hits", "value": stats.cache_hits},
        {"figure": "throttled (s, summed)", "value": round(stats.throttled_s, 3)},
        {"figure": "latency p50 (ms)", "value": _ms(stats.latency_p50_s)},
        {"figure": "latency p95 (ms)", "value": _ms(stats.latency_p95_s)},
        {"figure": "latency p99 (ms)", "value": _ms(stats.latency_p99_s)},
        {"figure": "rows/s", "value": round(stats.rows_per_s, 1)},
    ]
    return rows


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
