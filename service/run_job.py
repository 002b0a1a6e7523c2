"""One enrichment job from file to file: read, enrich, write atomically, report progress."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
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

ProgressReport = Callable[[int, int, EnrichStats], None]


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
                    progress(caller.stats.keys_done, total_keys, caller.statistics())
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
        progress(caller.stats.keys_done, total_keys, result.stats)
    write_table_atomically(result.frame, output_path)
    return result.stats


def console_progress(stream: TextIO | None = None) -> tuple[AbstractContextManager[object], ProgressReport]:
    """A rich progress bar on a terminal; plain log lines (rows, rate, errors) otherwise."""
    out = stream if stream is not None else sys.stderr
    if getattr(out, "isatty", lambda: False)():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("keys"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} req/s, {task.fields[errors]} errors"),
            TimeRemainingColumn(),
        )
        task = bar.add_task("enrich", total=None, rate="0", errors=0)

        def update(done: int, total: int, stats: EnrichStats) -> None:
            rate = stats.requests / stats.elapsed_s if stats.elapsed_s > 0 else 0.0
            errors = sum(v for k, v in stats.outcomes.items() if k != "ok")
            bar.update(task, completed=done, total=total, rate=f"{rate:,.0f}", errors=errors)

        return bar, update

    def log(done: int, total: int, stats: EnrichStats) -> None:
        rate = stats.requests / stats.elapsed_s if stats.elapsed_s > 0 else 0.0
        errors = sum(v for k, v in stats.outcomes.items() if k != "ok")
        print(
            f"progress: {done:,}/{total:,} keys, {stats.requests:,} requests, {rate:,.0f} req/s, "
            f"{errors:,} failed attempts",
            file=out,
            flush=True,
        )

    return nullcontext(), log
