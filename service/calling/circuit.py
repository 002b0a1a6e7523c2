"""A circuit breaker for one job: once the API is clearly down, stop calling it.

It opens on ``consecutive_failures`` connection failures or timeouts in a row, or when failures
(5xx, 429, timeouts, connection errors) make up at least ``failure_ratio`` of the last ``window``
attempts: an API that keeps answering 429 after the job paused for it stops the job too (reason
``rate_limited``), rather than letting a storm run for hours. Answers the API chose to give (other
4xx) show it is up and count as successes here. A job does not half-open: it stops, and is resumed
later.
"""

from __future__ import annotations

from collections import deque

from service.errors import NO_ANSWER, ErrorClass
from service.spec import CircuitSection

_FAILURES = NO_ANSWER | {ErrorClass.HTTP_5XX, ErrorClass.RATE_LIMITED}


class CircuitBreaker:
    """Counts attempt outcomes and opens when the API keeps failing."""

    def __init__(self, policy: CircuitSection) -> None:
        self._policy = policy
        self._consecutive = 0
        self._recent: deque[ErrorClass | None] = deque(maxlen=policy.window)  # failures, or None
        self._recent_failures = 0
        self._recent_refusals = 0  # the 429s among them
        self.reason: str | None = None

    @property
    def is_open(self) -> bool:
        """True once the breaker has tripped."""
        return self.reason is not None

    def close(self) -> None:
        """Close again, with no memory of past attempts: a long-running service (the online
        endpoint) tries the API again after a cool-down, where a job stops for good."""
        self._consecutive = 0
        self._recent.clear()
        self._recent_failures = self._recent_refusals = 0
        self.reason = None

    def record(self, error_class: ErrorClass | None) -> None:
        """Record one attempt's outcome: None for an answer, else its error class."""
        recent = self._recent
        if error_class is None and not self._recent_failures and not self._consecutive:
            # The usual case, once per request: no failure lately, so the window holds only
            # answers and one more changes nothing but its length.
            if len(recent) != recent.maxlen:
                recent.append(None)
            return
        if not self._policy.enabled or self.reason is not None:
            return
        failed = error_class if error_class in _FAILURES else None
        if len(self._recent) == self._recent.maxlen:
            dropped = self._recent[0]
            self._recent_failures -= dropped is not None
            self._recent_refusals -= dropped is ErrorClass.RATE_LIMITED
        self._recent.append(failed)
        self._recent_failures += failed is not None
        self._recent_refusals += failed is ErrorClass.RATE_LIMITED
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
            if 2 * self._recent_refusals >= self._recent_failures:
                self.reason = (
                    f"rate_limited: the API kept answering 429 after the job paused for it "
                    f"({self._recent_refusals} of the last {window} attempts)"
                )
                return
            self.reason = (
                f"{self._recent_failures} of the last {window} attempts failed "
                f"(threshold {self._policy.failure_ratio:.0%})"
            )
