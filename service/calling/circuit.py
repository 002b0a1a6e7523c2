"""A circuit breaker for one job: once the API is clearly down, stop calling it.

It opens on ``consecutive_failures`` connection failures or timeouts in a row, or when failures
(5xx, timeouts, connection errors) make up at least ``failure_ratio`` of the last ``window``
attempts. Answers the API chose to give (4xx, 429) show it is up and count as successes here. A job
does not half-open: it stops, and is resumed later.
"""

from __future__ import annotations

from collections import deque

from service.errors import NO_ANSWER, ErrorClass
from service.spec import CircuitSection

_FAILURES = NO_ANSWER | {ErrorClass.HTTP_5XX}


class CircuitBreaker:
    """Counts attempt outcomes and opens when the API keeps failing."""

    def __init__(self, policy: CircuitSection) -> None:
        self._policy = policy
        self._consecutive = 0
        self._recent: deque[bool] = deque(maxlen=policy.window)
        self._recent_failures = 0
        self.reason: str | None = None

    @property
    def is_open(self) -> bool:
        """True once the breaker has tripped."""
        return self.reason is not None

    def record(self, error_class: ErrorClass | None) -> None:
        """Record one attempt's outcome: None for an answer, else its error class."""
        if not self._policy.enabled or self.reason is not None:
            return
        failed = error_class in _FAILURES
        if len(self._recent) == self._recent.maxlen and self._recent[0]:
            self._recent_failures -= 1
        self._recent.append(failed)
        self._recent_failures += failed
        if error_class in NO_ANSWER:
            self._consecutive += 1
            if self._consecutive >= self._policy.consecutive_failures:
                self.reason = (
                    f"{self._consecutive} connection failures or timeouts in a row (last: {error_class})"
                )
                return
        else:
            self._consecutive = 0
        window = self._policy.window
        if len(self._recent) == window and self._recent_failures >= self._policy.failure_ratio * window:
            self.reason = (
                f"{self._recent_failures} of the last {window} attempts failed "
                f"(threshold {self._policy.failure_ratio:.0%})"
            )
