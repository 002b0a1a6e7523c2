"""Where a running job stands, as reported to whoever displays it (a terminal, a Prefect artifact)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from service.stats import EnrichStats


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Rows done (those of batches finished in earlier runs, and rows answered in this one, which
    move as answers arrive; never fewer than in an earlier report), rows in all, and the
    statistics so far."""

    rows_done: int
    rows_total: int
    stats: EnrichStats

    @property
    def failed_attempts(self) -> int:
        """Attempts that did not get a usable answer."""
        return sum(count for name, count in self.stats.outcomes.items() if name != "ok")

    @property
    def rows_per_s(self) -> float:
        """Rows answered per second in this run."""
        elapsed = self.stats.elapsed_s
        return self.stats.rows_answered / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds until every row is done at this run's pace; None before there is a pace."""
        left = self.rows_total - self.rows_done
        if left <= 0:
            return 0.0
        rate = self.rows_per_s
        return left / rate if rate > 0 else None


ProgressReport = Callable[[JobProgress], Awaitable[None] | None]
"""Told where a job stands, about once a second and at its end; may be a coroutine function."""


async def report_progress(report: ProgressReport, progress: JobProgress) -> None:
    """Call ``report`` with ``progress``, awaiting it if it is a coroutine function."""
    told = report(progress)
    if inspect.isawaitable(told):
        await told
