"""One measured figure of a benchmark run, and finding one among many."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    scenario: str
    name: str
    params: dict[str, Any]
    rows: int
    values: list[float]
    requests: float
    unit: str = "rows/s"
    median: float = field(init=False)
    min: float = field(init=False)
    max: float = field(init=False)

    def __post_init__(self) -> None:
        self.median = statistics.median(self.values)
        self.min = min(self.values)
        self.max = max(self.values)


def find(figures: list[Figure], scenario: str, name: str, **params: Any) -> Figure | None:
    for figure in figures:
        if (
            figure.scenario == scenario
            and figure.name == name
            and all(figure.params.get(k) == v for k, v in params.items())
        ):
            return figure
    return None


def by_rows(figures: list[Figure], scenario: str, name: str) -> list[Figure]:
    """Every figure of ``scenario`` called ``name`` (one per input size), fewest rows first."""
    return sorted((f for f in figures if f.scenario == scenario and f.name == name), key=lambda f: f.rows)


def mapped_part(peak_name: str) -> str:
    """The name of the figure holding how much of the peak ``peak_name`` was mapped from files (the
    libraries' code: its size follows the page cache's state, not the job)."""
    return f"{peak_name}, mapped from files"
