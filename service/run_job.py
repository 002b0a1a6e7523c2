"""One enrichment job from file to file: read, enrich, write atomically, report progress."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import anyio
import httpx

from service.caller import Caller
from service.engine import enrich_frame
from service.errors import EnrichError
from service.frame_check import check_schema
from service.spec import Spec
from service.stats import EnrichStats
from service.table_io import output_format, read_table, write_table_atomically


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Where a job stands: keys answered so far, and the input's size."""

    keys_done: int
    keys_total: int
    rows_total: int
    stats: EnrichStats

    @property
    def rows_done(self) -> int:
        """Rows whose key is answered, estimated from the share of keys (rows join at the end)."""
        if not self.keys_total:
            return self.rows_total
        return round(self.rows_total * self.keys_done / self.keys_total)

    @property
    def failed_attempts(self) -> int:
        """Attempts that did not get a usable answer."""
        return sum(count for name, count in self.stats.outcomes.items() if name != "ok")


ProgressReport = Callable[[JobProgress], None]


async def run_job(
    input_path: Path,
    spec: Spec,
    output_path: Path,
    *,
    transport: httpx.AsyncBaseTransport | str | None = None,
    progress: ProgressReport | None = None,
    progress_every_s: float = 1.0,
) -> EnrichStats:
    """Enrich ``input_path`` into ``output_path``. OUT is written only when the job finished.

    Raises ``InputError``/``SpecError`` before any request, ``CircuitOpenError`` if the API kept
    failing (nothing is written then).
    """
    output_format(output_path)
    frame = read_table(input_path)
    check_schema(frame.schema, spec)
    total_keys = frame.select(spec.key).n_unique()
    async with Caller(spec, transport=transport) as caller, anyio.create_task_group() as group:
        if progress is not None:

            async def report() -> None:
                while True:
                    progress(
                        JobProgress(caller.stats.keys_done, total_keys, frame.height, caller.statistics())
                    )
                    await anyio.sleep(progress_every_s)

            group.start_soon(report)
        failure: EnrichError | None = None
        try:
            result = await enrich_frame(frame, spec, caller=caller)
        except EnrichError as exc:  # raised outside the task group, or it would come out wrapped
            failure = exc
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if progress is not None:
        progress(JobProgress(caller.stats.keys_done, total_keys, frame.height, result.stats))
    write_table_atomically(result.frame, output_path)
    return result.stats


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
