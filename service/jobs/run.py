"""One enrichment job from file to file: read in batches, enrich, record, write OUT atomically."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
import polars as pl

from service.caches.answer_log import logged_keys
from service.engine import ATTEMPTS, ERROR, MESSAGE, STATUS
from service.errors import CircuitOpenError, EnrichError, InputError
from service.jobs.batches import Batches, BatchPlacement, OnThisLoop
from service.jobs.checkpoint import JobState, fingerprint
from service.jobs.object_state import state_for
from service.jobs.options import JobOptions
from service.jobs.preflight import check_job
from service.jobs.progress import JobProgress, ProgressReport, report_progress
from service.spec import Spec
from service.stats import EnrichStats
from service.storage.locations import ObjectLocation, TableLocation, table_location
from service.tables.batch_reading import iter_batches
from service.tables.mapping import polars_type
from service.tables.reading import count_rows
from service.tables.writing import write_output


async def run_job(
    input_spec: str | Path,
    spec: Spec,
    output_path: str | Path | ObjectLocation,
    options: JobOptions | None = None,
    *,
    batches: BatchPlacement | None = None,
    progress: ProgressReport | None = None,
    progress_every_s: float = 1.0,
) -> EnrichStats:
    """Enrich the input into ``output_path`` (a path, or an ``s3://``/``gs://``/``az://`` URL) batch
    by batch; OUT is written only when all are done.

    Finished batches are kept in ``OUT.enrich/`` (``service.jobs.checkpoint``; in object storage a
    prefix, ``service.jobs.object_state``), so running the same job again after a crash resumes
    where it stopped. ``batches`` says where batches are enriched (default: ``OnThisLoop()``);
    ``progress`` is told where the job stands every ``progress_every_s`` and at its end. Raises
    ``InputError``/``SpecError`` before any request, ``CircuitOpenError`` if the API kept failing
    (nothing is written then)."""
    options = options or JobOptions()
    job = _JobInput.open(input_spec, spec, table_location(output_path, "--output "), options)
    try:
        async with (batches or OnThisLoop())(spec, options.cache_dir, job.state) as placed:
            pipeline = _Pipeline(job.state, placed, job.rows_total)
            stats = await pipeline.run(
                iter_batches(job.paths, job.schema, options.batch_size, options.limit),
                progress,
                progress_every_s,
                deadline_s=options.deadline_for(spec),
            )
        pipeline.check_every_batch_recorded()
        job.write_output(spec)
        stats = _with_job_counts(stats, job.state)
        if progress is not None:
            await report_progress(progress, JobProgress(job.rows_total, job.rows_total, stats))
        if not options.keep_state:
            job.state.remove()
    finally:
        job.state.close()
    return stats


@dataclass(frozen=True)
class _JobInput:
    """A job's input, checked against its spec, and its state, opened: all before any request."""

    paths: list[TableLocation]
    schema: pl.Schema
    rows_total: int
    state: JobState
    output: TableLocation

    @classmethod
    def open(
        cls, input_spec: str | Path, spec: Spec, output: TableLocation, options: JobOptions
    ) -> _JobInput:
        checked = check_job(input_spec, spec, output, overwrite=options.overwrite)
        lazy = checked.lazy if options.limit is None else checked.lazy.head(options.limit)
        rows_total = count_rows(lazy, checked.paths)
        state = state_for(output)
        state.open(
            fingerprint(checked.paths, spec, options.batch_size, options.limit), restart=options.restart
        )
        state.batches_planned = math.ceil(rows_total / options.batch_size)
        return cls(checked.paths, checked.schema, rows_total, state, output)

    def write_output(self, spec: Spec) -> None:
        """OUT from the recorded parts, whole or not at all."""
        write_output(
            _read_parts(self.state), _output_schema(self.schema, spec), self.output, self.state.directory
        )


class _Pipeline:
    """Pulls batches on demand and enriches up to ``batches.in_flight`` of them at once."""

    def __init__(self, state: JobState, batches: Batches, rows_total: int) -> None:
        self.state = state
        self.batches = batches
        self.rows_total = rows_total
        self.rows_done_before = 0  # in batches an earlier run of the job finished
        self.rows_reported = 0
        self.slots = anyio.Semaphore(batches.in_flight)
        self.failure: EnrichError | None = None
        self.batches_seen = 0

    async def run(
        self,
        batches: Iterator[pl.DataFrame],
        progress: ProgressReport | None,
        every_s: float,
        *,
        deadline_s: float | None = None,
    ) -> EnrichStats:
        """Enrich every batch not done yet, reporting progress; the statistics, or the first
        ``EnrichError`` a batch raised (``CircuitOpenError`` once ``deadline_s`` passed: batches
        in flight are cut short, their answers kept in the answer log)."""
        with anyio.move_on_after(math.inf if deadline_s is None else deadline_s) as deadline:
            async with anyio.create_task_group() as group:
                if progress is not None:
                    group.start_soon(self._report, progress, every_s)
                await self._enrich_all(batches)
                group.cancel_scope.cancel()
        if deadline.cancelled_caught:
            raise CircuitOpenError(
                f"stopped calling the API: the job's deadline ({deadline_s:g} s) passed; rerun to resume"
            )
        if self.failure is not None:
            raise self.failure
        return self.batches.statistics()

    def check_every_batch_recorded(self) -> None:
        """A placement that lost a batch without raising: never an OUT with rows missing."""
        undone = [index for index in range(self.batches_seen) if not self.state.is_done(index)]
        if undone:
            raise RuntimeError(f"batches {undone[:5]} were not recorded; {self.state.name_of()} is kept")

    async def _enrich_all(self, batches: Iterator[pl.DataFrame]) -> None:
        async with anyio.create_task_group() as group:
            index = 0
            while self.failure is None:
                await self.slots.acquire()  # the next batch is read only when a slot is free
                try:
                    batch = await anyio.to_thread.run_sync(next, batches, None)
                except EnrichError as exc:  # a file found bad halfway: kept, as a batch's error is
                    self.failure = exc
                    batch = None
                if batch is None:
                    self.slots.release()
                    break
                self.batches_seen = index + 1
                if self.state.is_done(index):
                    self.rows_done_before += batch.height
                    self.slots.release()
                else:
                    group.start_soon(self._enrich, index, batch)
                index += 1

    async def _enrich(self, index: int, batch: pl.DataFrame) -> None:
        try:
            await self.batches.enrich(self.state, index, batch)
        except EnrichError as exc:  # kept, not raised: it would come out of the group wrapped
            if self.failure is None:
                self.failure = exc
        finally:
            self.slots.release()

    async def _report(self, progress: ProgressReport, every_s: float) -> None:
        while True:
            await report_progress(progress, self.progress())
            await anyio.sleep(every_s)

    def progress(self) -> JobProgress:
        """Where the job stands: never fewer rows than last time (a retried batch's rows, or a
        batch between its last answer and its record, would otherwise count twice or not at all)."""
        stats = self.batches.statistics()
        rows = min(self.rows_total, self.rows_done_before + stats.rows_answered)
        self.rows_reported = max(self.rows_reported, rows)
        return JobProgress(self.rows_reported, self.rows_total, stats)


def _read_parts(state: JobState) -> Iterator[pl.DataFrame]:
    for part in state.parts():
        try:
            frame = pl.read_parquet(part)
        except Exception as exc:  # polars raises many types for one cause: damaged since recorded
            raise InputError(
                f"{part}: damaged since it was recorded ({exc}); run again with --restart"
            ) from None
        yield frame


def _output_schema(input_schema: pl.Schema, spec: Spec) -> pl.Schema:
    columns = dict(input_schema)
    columns.update({c.name: polars_type(c.kind) for c in spec.columns})
    columns.update({STATUS: pl.String(), ERROR: pl.String(), MESSAGE: pl.String(), ATTEMPTS: pl.Int32()})
    return pl.Schema(columns)


def _with_job_counts(stats: EnrichStats, state: JobState) -> EnrichStats:
    """Row counts over every part, and distinct keys over the job's answer log (each key once
    however many batches held it), those of earlier runs of the job included."""
    distinct = logged_keys(state.answer_log_path)
    if distinct is not None:
        stats = dataclasses.replace(stats, distinct_keys=distinct)
    parts = list(state.parts())
    if not parts:
        return dataclasses.replace(
            stats, rows=0, rows_ok=0, rows_failed=0, rows_failed_by_class={}, rows_answered=0
        )
    counts = pl.scan_parquet(parts).group_by(ERROR).agg(pl.len()).collect()
    by_class = {str(e): int(n) for e, n in counts.iter_rows() if e is not None}
    ok = int(counts.filter(pl.col(ERROR).is_null())["len"].sum())
    failed = sum(by_class.values())
    return dataclasses.replace(
        stats,
        rows=ok + failed,
        rows_ok=ok,
        rows_failed=failed,
        rows_failed_by_class=by_class,
        rows_answered=ok + failed,
    )
