"""Where a running job stands, as reported to whoever displays it (a terminal, a Prefect artifact)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.stats import EnrichStats


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Rows in finished batches, rows in all, and the statistics so far."""

    rows_done: int
    rows_total: int
    stats: EnrichStats

    @property
    def failed_attempts(self) -> int:
        """Attempts that did not get a usable answer."""
        return sum(count for name, count in self.stats.outcomes.items() if name != "ok")


ProgressReport = Callable[[JobProgress], None]
