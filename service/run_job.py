"""One enrichment job from file to file: read, enrich, write atomically, report progress."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import anyio
import anyio.to_thread
import httpx
import polars as pl

from service.caller import Caller
from service.checkpoint import JobState, fingerprint, state_dir_for
from service.engine import ATTEMPTS, ERROR, MESSAGE, STATUS, enrich_frame
from service.errors import EnrichError
from service.frame_check import check_schema
from service.mapping import POLARS_TYPES
from service.response_cache import AnswerStore, ResponseCache, cache_namespace, is_redis_url
from service.spec import Spec
from service.stats import EnrichStats
from service.table_io import (
    count_rows,
    iter_batches,
    output_format,
    resolve_inputs,
    scan_inputs,
    write_frames_atomically,
)


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Where a job stands: rows in finished batches, rows in all, and the caller's statistics."""

    rows_done: int
    rows_total: int
    stats: EnrichStats

    @property
    def failed_attempts(self) -> int:
        """Attempts that did not get a usable answer."""
        return sum(count for name, count in self.stats.outcomes.items() if name != "ok")


ProgressReport = Callable[[JobProgress], None]
BatchRunner = Callable[[JobState, int, pl.DataFrame, Caller], Awaitable[object]]
BatchDone = Callable[[int, int], Awaitable[None]]


async def enrich_and_record(state: JobState, index: int, batch: pl.DataFrame, caller: Caller) -> int:
    """Enrich one batch and write its part file: after this, the batch counts as done."""
    result = await enrich_frame(batch, caller.spec, caller=caller)
    await anyio.to_thread.run_sync(state.write_part, index, result.frame)
    await anyio.to_thread.run_sync(state.record_done, index)
    return batch.height


DEFAULT_BATCH_SIZE = 10_000
CACHE_FILE = "responses.sqlite"
DEFAULT_BATCHES_IN_FLIGHT = 3


async def run_job(
    input_spec: str | Path,
    spec: Spec,
    output_path: Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batches_in_flight: int = DEFAULT_BATCHES_IN_FLIGHT,
    restart: bool = False,
    keep_state: bool = False,
    transport: httpx.AsyncBaseTransport | str | None = None,
    cache_dir: Path | str | None = None,
    progress: ProgressReport | None = None,
    progress_every_s: float = 1.0,
    batch_runner: BatchRunner = enrich_and_record,
    on_batch_done: BatchDone | None = None,
) -> EnrichStats:
    """Enrich the input into ``output_path`` batch by batch; OUT is written only when all are done.

    Finished batches are kept in ``OUT.enrich/`` (see ``service.checkpoint``), so running the
    same job again after a crash resumes where it stopped. ``batch_runner`` runs one batch (the
    flows wrap ``enrich_and_record`` in a Prefect task); ``on_batch_done(rows_done, rows_total)``
    is awaited after each. Raises ``InputError``/``SpecError``
    before any request, ``CircuitOpenError`` if the API kept failing (nothing is written then).
    """
    output_format(output_path)
    paths = resolve_inputs(input_spec)
    lazy = scan_inputs(paths)
    schema = lazy.collect_schema()
    check_schema(schema, spec)
    rows_total = count_rows(lazy, paths)
    state = JobState(state_dir_for(output_path))
    state.open(fingerprint(paths, spec, batch_size), restart=restart)
    pipeline = _Pipeline(state, rows_total, batches_in_flight, batch_runner, on_batch_done)
    cache = open_cache(cache_dir, spec)
    try:
        stats = await _enrich_batches(
            pipeline, lazy, paths, batch_size, spec, transport, cache, progress, progress_every_s
        )
    finally:
        if cache is not None:
            cache.close()
    write_frames_atomically(_read_parts(state), _output_schema(schema, spec), output_path)
    stats = _with_row_counts(stats, state)
    if progress is not None:
        progress(JobProgress(rows_total, rows_total, stats))
    if not keep_state:
        state.remove()
    return stats


def open_cache(cache_dir: Path | str | None, spec: Spec) -> AnswerStore | None:
    """The response cache for this spec: in the folder ``cache_dir``, or in the Redis it names
    (``redis://host:port/db``); None when caching is off."""
    if cache_dir is None or not spec.cache.enabled:
        return None
    return open_store(
        cache_dir, cache_namespace(spec), ttl_s=spec.cache.ttl, negative_ttl_s=spec.cache.negative_ttl
    )


def open_store(location: Path | str, namespace: str, *, ttl_s: float, negative_ttl_s: float) -> AnswerStore:
    """The cache at ``location``: a folder (its SQLite file), or a ``redis://`` URL."""
    if is_redis_url(location):
        from service.redis_cache import RedisResponseCache  # only this path needs redis

        return RedisResponseCache(str(location), namespace, ttl_s=ttl_s, negative_ttl_s=negative_ttl_s)
    return ResponseCache(Path(location) / CACHE_FILE, namespace, ttl_s=ttl_s, negative_ttl_s=negative_ttl_s)


async def _enrich_batches(
    pipeline: _Pipeline,
    lazy: pl.LazyFrame,
    paths: list[Path],
    batch_size: int,
    spec: Spec,
    transport: httpx.AsyncBaseTransport | str | None,
    cache: AnswerStore | None,
    progress: ProgressReport | None,
    progress_every_s: float,
) -> EnrichStats:
    async with Caller(spec, transport=transport, cache=cache) as caller:
        async with anyio.create_task_group() as group:
            if progress is not None:
                group.start_soon(pipeline.report, caller, progress, progress_every_s)
            await pipeline.run(caller, iter_batches(lazy, batch_size, paths))
            group.cancel_scope.cancel()
        if pipeline.failure is not None:
            raise pipeline.failure
        return caller.statistics()


class _Pipeline:
    """Pulls batches on demand and enriches up to ``batches_in_flight`` of them at once."""

    def __init__(
        self,
        state: JobState,
        rows_total: int,
        batches_in_flight: int,
        runner: BatchRunner,
        on_batch_done: BatchDone | None,
    ) -> None:
        self.state = state
        self.runner = runner
        self.on_batch_done = on_batch_done
        self.rows_total = rows_total
        self.rows_done = 0
        self.slots = anyio.Semaphore(batches_in_flight)
        self.failure: EnrichError | None = None

    async def run(self, caller: Caller, batches: Iterator[pl.DataFrame]) -> None:
        async with anyio.create_task_group() as group:
            index = 0
            while self.failure is None:
                await self.slots.acquire()  # the next batch is read only when a slot is free
                batch = await anyio.to_thread.run_sync(next, batches, None)
                if batch is None:
                    self.slots.release()
                    break
                if self.state.is_done(index):
                    self.rows_done += batch.height
                    self.slots.release()
                else:
                    group.start_soon(self._enrich, caller, index, batch)
                index += 1

    async def _enrich(self, caller: Caller, index: int, batch: pl.DataFrame) -> None:
        try:
            await self.runner(self.state, index, batch, caller)
            self.rows_done += batch.height
            if self.on_batch_done is not None:
                await self.on_batch_done(self.rows_done, self.rows_total)
        except EnrichError as exc:  # kept, not raised: it would come out of the group wrapped
            if self.failure is None:
                self.failure = exc
        finally:
            self.slots.release()

    async def report(self, caller: Caller, progress: ProgressReport, every_s: float) -> None:
        while True:
            progress(JobProgress(self.rows_done, self.rows_total, caller.statistics()))
            await anyio.sleep(every_s)


def _read_parts(state: JobState) -> Iterator[pl.DataFrame]:
    for part in state.parts():
        yield pl.read_parquet(part)


def _output_schema(input_schema: pl.Schema, spec: Spec) -> pl.Schema:
    columns = dict(input_schema)
    columns.update({c.name: POLARS_TYPES[c.type] for c in spec.columns})
    columns.update({STATUS: pl.String(), ERROR: pl.String(), MESSAGE: pl.String(), ATTEMPTS: pl.Int32()})
    return pl.Schema(columns)


def _with_row_counts(stats: EnrichStats, state: JobState) -> EnrichStats:
    """Row counts over every part, those of earlier runs of the job included."""
    parts = list(state.parts())
    if not parts:
        return dataclasses.replace(stats, rows=0, rows_ok=0, rows_failed=0, rows_failed_by_class={})
    counts = pl.scan_parquet(parts).group_by(ERROR).agg(pl.len()).collect()
    by_class = {str(e): int(n) for e, n in counts.iter_rows() if e is not None}
    ok = int(counts.filter(pl.col(ERROR).is_null())["len"].sum())
    failed = sum(by_class.values())
    return dataclasses.replace(
        stats, rows=ok + failed, rows_ok=ok, rows_failed=failed, rows_failed_by_class=by_class
    )


def console_progress(stream: TextIO | None = None) -> tuple[AbstractContextManager[object], ProgressReport]:
    """A rich progress bar on a terminal; plain log lines (rows, rows/s, errors) otherwise."""
    out = stream if stream is not None else sys.stderr
    if out.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("rows"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s, {task.fields[errors]} failed attempts"),
            TimeRemainingColumn(),
            console=Console(file=out),
        )
        task = bar.add_task("enrich", total=None, rate="0", errors=0)

        def update(progress: JobProgress) -> None:
            elapsed = progress.stats.elapsed_s
            rate = progress.rows_done / elapsed if elapsed > 0 else 0.0
            bar.update(
                task,
                completed=progress.rows_done,
                total=progress.rows_total,
                rate=f"{rate:,.0f}",
                errors=progress.failed_attempts,
            )

        return bar, update

    def log(progress: JobProgress) -> None:
        elapsed = progress.stats.elapsed_s
        rate = progress.rows_done / elapsed if elapsed > 0 else 0.0
        print(
            f"progress: {progress.rows_done:,}/{progress.rows_total:,} rows, {rate:,.0f} rows/s, "
            f"{progress.stats.requests:,} requests, {progress.failed_attempts:,} failed attempts",
            file=out,
            flush=True,
        )

    return nullcontext(), log
