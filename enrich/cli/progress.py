"""The terminal's view of a running job: a progress bar on a terminal, log lines otherwise."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import TextIO

from service import JobProgress, ProgressReport


def console_progress(stream: TextIO | None = None) -> tuple[AbstractContextManager[object], ProgressReport]:
    """A display to enter while the job runs, and the report that updates it: a rich progress bar
    on a terminal, plain lines (rows, rows/s, requests, failed attempts) otherwise."""
    out = stream if stream is not None else sys.stderr
    if out.isatty():
        return _progress_bar(out)

    def log(progress: JobProgress) -> None:
        print(
            f"progress: {progress.rows_done:,}/{progress.rows_total:,} rows, {_rows_per_s(progress)} rows/s, "
            f"{progress.stats.requests:,} requests, {progress.failed_attempts:,} failed attempts",
            file=out,
            flush=True,
        )

    return nullcontext(), log


def _progress_bar(out: TextIO) -> tuple[AbstractContextManager[object], ProgressReport]:
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
        bar.update(
            task,
            completed=progress.rows_done,
            total=progress.rows_total,
            rate=_rows_per_s(progress),
            errors=progress.failed_attempts,
        )

    return bar, update


def _rows_per_s(progress: JobProgress) -> str:
    elapsed = progress.stats.elapsed_s
    return f"{progress.rows_done / elapsed if elapsed > 0 else 0.0:,.0f}"
