"""A job's retry budget: in a storm, retries stop before they multiply the load on a failing API.

In the spirit of gRPC's retry throttling and Finagle's ``RetryBudget``: over a sliding window of
``WINDOW_S`` seconds, retries may not exceed ``ratio`` of the attempts made plus ``FLOOR_PER_S``
per second. Beyond that a retryable failure is final (its row says why). One failing key still
gets its attempts; 10% of requests answering 503 still get theirs (the default ratio is 0.2:
with 0.1, the second retries of that benchmark case would be refused); an API failing every
request gets at most a fifth more requests, not ``attempts`` times as many.
"""

from __future__ import annotations

from service.calling.clock import Clock

WINDOW_S = 10
FLOOR_PER_S = 10


class RetryBudget:
    """Counts attempts and retries per second, over the last ``WINDOW_S`` seconds of ``clock``."""

    def __init__(self, ratio: float, clock: Clock) -> None:
        self._ratio = ratio
        self._now = clock.now
        self._second = [-1] * WINDOW_S  # which second each slot counts, to reset stale ones
        self._attempts = [0] * WINDOW_S
        self._retries = [0] * WINDOW_S

    def _slot(self) -> int:
        second = int(self._now())
        slot = second % WINDOW_S
        if self._second[slot] != second:
            self._second[slot] = second
            self._attempts[slot] = self._retries[slot] = 0
        return slot

    def attempted(self) -> None:
        """Count one attempt (any: a retry is an attempt too)."""
        self._attempts[self._slot()] += 1

    def allows_retry(self) -> bool:
        """Whether one more retry fits the budget now (and count it if so)."""
        slot = self._slot()
        oldest = self._second[slot] - WINDOW_S
        attempts = retries = 0
        for second, made, retried in zip(self._second, self._attempts, self._retries, strict=True):
            if second > oldest:
                attempts += made
                retries += retried
        if retries + 1 > FLOOR_PER_S * WINDOW_S + self._ratio * attempts:
            return False
        self._retries[slot] += 1
        return True
