"""Requests waiting out their backoff, ordered by when they are due: a heap, no event loop.

The caller's workers take a due retry before a fresh key, so a retry costs a heap push and pop
instead of a task and a timer of its own (which, at 10% failed attempts, cost the job about a
quarter of its throughput in task churn and garbage collection).
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

T = TypeVar("T")


class RetrySchedule(Generic[T]):
    """Items due at given times; ``pop_due(now)`` hands out the earliest one that is due."""

    def __init__(self) -> None:
        # (due, order, item): plain tuples compare fastest; ``order`` keeps equal due times in the
        # order they came and means items themselves are never compared.
        self._heap: list[tuple[float, int, T]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: float, item: T) -> None:
        """Schedule ``item`` for ``due`` (same clock as ``pop_due``'s ``now``)."""
        heapq.heappush(self._heap, (due, next(self._order), item))

    def pop_due(self, now: float) -> T | None:
        """The earliest item due at ``now``, removed; None when none is due yet."""
        heap = self._heap
        if heap and heap[0][0] <= now:
            return heapq.heappop(heap)[2]
        return None

    @property
    def next_due(self) -> float | None:
        """When the earliest item is due; None when empty."""
        return self._heap[0][0] if self._heap else None

    def drain(self) -> list[T]:
        """Every item left, earliest first; the schedule is empty afterwards."""
        items = [item for _, _, item in sorted(self._heap)]
        self._heap.clear()
        return items
