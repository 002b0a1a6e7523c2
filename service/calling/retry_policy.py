"""Which failed attempts are retried, and after how long.

``is_retryable`` and ``retry_delay`` are pure decisions over a ``CallError``; ``RetryPolicy`` binds
them to a spec's ``[retry]`` section, the randomness and the clock, and answers the one question
the workers ask after a failed attempt: wait this long and try again, or stop.
"""

from __future__ import annotations

from collections.abc import Callable

from service.calling.backoff import backoff_delay, parse_retry_after
from service.calling.clock import Clock
from service.calling.retry_budget import RetryBudget
from service.errors import NO_ANSWER, CallError
from service.spec import RetrySection
from service.stats import StatsRecorder


def is_retryable(error: CallError, policy: RetrySection) -> bool:
    """True for a configured status code, a timeout or a connection error; False for the rest.

    Any other 4xx, an answer that is not JSON, and a key that cannot be sent are final.
    """
    if error.status is not None:
        return error.status in policy.retry_on_status
    return error.error_class in NO_ANSWER


def retry_delay(
    error: CallError,
    attempt: int,
    policy: RetrySection,
    *,
    random: Callable[[], float],
    wall_now: float,
) -> float:
    """Seconds before the next attempt, after ``attempt`` (1-based) failed with ``error``.

    A ``Retry-After`` the server sent wins over the backoff, up to ``retry_after_cap_s``.
    """
    told = parse_retry_after(error.retry_after, wall_now)
    if told is not None:
        return min(told, policy.retry_after_cap_s)
    return backoff_delay(attempt, policy.backoff, random)


class RetryPolicy:
    """A spec's ``[retry]`` section, with the randomness and the clock its delays need."""

    def __init__(
        self,
        section: RetrySection,
        *,
        random: Callable[[], float],
        clock: Clock,
    ) -> None:
        self._section = section
        self._random = random
        self._clock = clock
        self.budget = RetryBudget(section.budget, clock)

    def next_delay(self, error: CallError, attempts: int, stats: StatsRecorder) -> float | None:
        """After ``attempts`` attempts, the last failing with ``error``: the seconds to wait before
        the next one, or None when ``error`` is final (not retryable, no attempt left, or the job's
        retry budget spent: then its message says so, and ``stats`` counts it)."""
        if attempts >= self._section.attempts or not is_retryable(error, self._section):
            return None
        if not self.budget.allows_retry():
            stats.retries_refused += 1
            error.message += " (not retried: the job's retry budget is spent, the API fails too often)"
            return None
        return self.delay(error, attempts)

    def delay(self, error: CallError, attempt: int) -> float:
        """The wait after failed attempt ``attempt``: the server's ``Retry-After``, else the backoff."""
        return retry_delay(error, attempt, self._section, random=self._random, wall_now=self._clock.wall())
