"""The terminal's view of a running job: a progress bar on a terminal, log lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TextIO

from service import JobProgress, ProgressReport, format_duration, format_progress


def console_progress(
    stream: TextIO | None = None, *, quiet: bool = False
) -> tuple[AbstractContextManager[object], ProgressReport]:
    """A display to enter while the job runs, and the report that updates it: a rich progress bar
    on a terminal, a line per report otherwise (``format_progress``), nothing when ``quiet``."""
    out = stream if stream is not None else sys.stderr
    if quiet:
        return nullcontext(), lambda progress: None
    if out.isatty():
        return _progress_bar(out)

    def log(progress: JobProgress) -> None:
        print(f"progress: {format_progress(progress)}", file=out, flush=True)

    return nullcontext(), log


def _progress_bar(out: TextIO) -> tuple[AbstractContextManager[object], ProgressReport]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("rows"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "{task.fields[rate]} rows/s, {task.fields[errors]} failed attempts, {task.fields[eta]} left"
        ),
        console=Console(file=out),
    )
    task = bar.add_task("enrich", total=None, rate="0", errors=0, eta="-")

    def update(progress: JobProgress) -> None:
        bar.update(
            task,
            completed=progress.rows_done,
            total=progress.rows_total,
            rate=f"{progress.rows_per_s:,.0f}",
            errors=progress.failed_attempts,
            eta=format_duration(progress.eta_s),
        )

    return bar, update


def printer(*, quiet: bool) -> Callable[[str], None]:
    """Prints a line on stdout at once, or, when ``quiet``, nothing."""

    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    return say
