"""The retry budget over its sliding window, on a fake clock."""

from __future__ import annotations

from service.calling.retry_budget import FLOOR_PER_S, WINDOW_S, RetryBudget
from service.testing import MockClock


def _allowed(budget: RetryBudget, tries: int) -> int:
    return sum(budget.allows_retry() for _ in range(tries))


def test_retries_fit_the_floor_plus_a_share_of_the_attempts() -> None:
    clock = MockClock()
    budget = RetryBudget(0.2, clock)
    for _ in range(1000):
        budget.attempted()
    assert _allowed(budget, 10_000) == FLOOR_PER_S * WINDOW_S + 200


def test_the_window_slides_and_old_retries_stop_counting() -> None:
    clock = MockClock()
    budget = RetryBudget(0.0, clock)
    assert _allowed(budget, 1000) == FLOOR_PER_S * WINDOW_S
    clock.t += WINDOW_S - 1
    assert _allowed(budget, 1000) == 0  # all the retries are still in the window
    clock.t += 1
    assert _allowed(budget, 1000) == FLOOR_PER_S * WINDOW_S
