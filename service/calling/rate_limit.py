"""A requests-per-second limiter shared by every request of a job, with a job-wide pause on 429.

The bucket is GCRA (the "virtual scheduling" form of a token bucket): each acquisition reserves
the next free instant, so waiters are served in arrival order, and an acquisition that need not
wait costs two float operations and no sleep. ``burst`` requests may go back to back after an idle
spell; over any window of ``w`` seconds at most ``burst + rate * w`` requests start.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.calling.clock import Clock


@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    """How much the limiter has slowed the job down."""

    acquisitions: int
    throttled: int
    throttled_s: float
    pauses: int


class RateLimiter:
    """Paces requests to ``rate`` per second (None: no pacing) and pauses the job after a 429.

    After a 429 every request waits until the pause ends (``pause(seconds)``), and, when a rate is
    configured, the rate is halved (down to a tenth of the configured one) and then recovers by a
    twentieth of it per second without another 429: the API said we were too fast, so the whole
    job slows, not only the request that was refused.
    """

    def __init__(self, rate: float | None, burst: int, clock: Clock, headroom: float = 0.0) -> None:
        if rate is not None:
            rate *= 1.0 - headroom
        self._configured = rate
        self._rate = rate
        self._burst = max(1, burst)
        self._clock = clock
        self._tat = 0.0  # theoretical arrival time of the next request
        self._paused_until = 0.0
        self._last_slowdown = 0.0
        self._acquisitions = 0
        self._throttled = 0
        self._throttled_s = 0.0
        self._pauses = 0

    @property
    def rate(self) -> float | None:
        """The current rate, after any slowdown."""
        return self._rate

    def reserve(self) -> float:
        """Reserve the next slot; return how long the caller must wait before sending (0: at once)."""
        now = self._clock.now()
        self._acquisitions += 1
        start = max(now, self._paused_until)
        if self._rate is not None:
            self._recover(now)
            interval = 1.0 / self._rate
            tat = max(self._tat, start)
            start = max(start, tat - (self._burst - 1) * interval)
            self._tat = tat + interval
        wait = start - now
        if wait > 0:
            self._throttled += 1
            self._throttled_s += wait
            return wait
        return 0.0

    def pause(self, seconds: float) -> None:
        """The API answered 429: hold every request for ``seconds`` and slow the rate down."""
        now = self._clock.now()
        self._pauses += 1
        already_paused = now < self._paused_until
        self._paused_until = max(self._paused_until, now + seconds)
        # Requests in flight together meet the same 429: slow down once per pause, not once each.
        if self._rate is not None and self._configured is not None and not already_paused:
            self._rate = max(self._configured / 10, self._rate / 2)
            self._last_slowdown = now
            # No burst right after a pause: the first request goes when it ends, then evenly spaced.
            self._tat = max(self._tat, self._paused_until + (self._burst - 1) / self._rate)

    def _recover(self, now: float) -> None:
        configured = self._configured
        if configured is None or self._rate is None or self._rate >= configured:
            return
        recovered = self._rate + configured / 20 * (now - self._last_slowdown)
        self._last_slowdown = now
        self._rate = min(configured, recovered)

    def statistics(self) -> LimiterStatistics:
        """A snapshot of the limiter's counters."""
        return LimiterStatistics(
            acquisitions=self._acquisitions,
            throttled=self._throttled,
            throttled_s=self._throttled_s,
            pauses=self._pauses,
        )
