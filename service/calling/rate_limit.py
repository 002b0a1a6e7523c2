"""A requests-per-second limiter shared by every request of a job, with a job-wide pause on 429,
and the pace the API's own quota allows (``follow_quota``).

The bucket is GCRA (the "virtual scheduling" form of a token bucket): each acquisition reserves
the next free instant, so waiters are served in arrival order, and an acquisition that need not
wait costs two float operations and no sleep. ``burst`` requests may go back to back after an idle
spell; over any window of ``w`` seconds at most ``burst + rate * w`` requests start.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.calling.clock import Clock
from service.calling.rate_headers import Quota
from service.spec import LimitsSection


@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    """How much the limiter has slowed the job down."""

    acquisitions: int
    throttled: int
    throttled_s: float
    pauses: int
    # Times the API's announced quota was the tighter limit, and times it ran out (a hold).
    quota_paced: int = 0
    quota_holds: int = 0


class RateLimiter:
    """Paces requests to ``rate`` per second (None: no pacing) and pauses the job after a 429.

    After a 429 every request waits until the pause ends (``pause(seconds)``), and, when a rate is
    configured, the rate is halved (down to a tenth of the configured one) and then recovers by a
    twentieth of it per second without another 429: the API said we were too fast, so the whole
    job slows, not only the request that was refused.
    """

    def __init__(self, rate: float | None, burst: int, clock: Clock, headroom: float = 0.0) -> None:
        self._headroom = headroom
        if rate is not None:
            rate *= 1.0 - headroom
        self._configured = rate
        self._told_rate = float("inf")  # the API's quota, spread until its reset
        self._told_until = 0.0
        self._quota_held_until = 0.0  # the quota ran out: every request waits for its reset
        self._quota_next = 0.0  # what remains is reserved: a new reservation waits for the reset
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
        self._quota_paced = 0
        self._quota_holds = 0

    @classmethod
    def for_limits(cls, limits: LimitsSection, clock: Clock, headroom: float = 0.0) -> RateLimiter:
        """The limiter of a spec's ``[limits]``: its rate and burst."""
        return cls(limits.rate, limits.effective_burst, clock, headroom=headroom)

    @property
    def rate(self) -> float | None:
        """The current rate, after any slowdown."""
        return self._rate

    def reserve(self) -> float:
        """Reserve the next slot; return how long the caller must wait before sending (0: at once)."""
        now = self._clock.now()
        self._acquisitions += 1
        start = max(now, self._paused_until, self._quota_held_until, self._quota_next)
        if self._rate != self._configured:  # slowed down by a 429 (a call saved once per request)
            self._recover(now)
        rate, burst = self._rate, self._burst
        if now < self._told_until and (rate is None or self._told_rate < rate):
            # The quota binds: no burst on top of it, or the window's last requests are refused.
            rate, burst = self._told_rate, 1
            self._quota_paced += 1
        if rate is not None:
            interval = 1.0 / rate
            tat = max(self._tat, start)
            start = max(start, tat - (burst - 1) * interval)
            self._tat = tat + interval
        wait = start - now
        if wait > 0:
            self._throttled += 1
            self._throttled_s += wait
            return wait
        return 0.0

    def follow_quota(self, quota: Quota, uncounted: int, reserved: int, hold_cap_s: float) -> None:
        """The API announced ``quota`` (in the answer to the newest request answered so far, of
        which ``uncounted`` requests were sent after it and ``reserved`` wait for their start):
        until its reset, new reservations spend what is left after those, never faster than the
        configured rate. With nothing left for them, the next reservation waits for the reset;
        with nothing left at all, every request does (at most ``hold_cap_s``)."""
        now = self._clock.now()
        unspent = quota.remaining - uncounted
        if unspent <= 0:
            self._quota_held_until = now + min(quota.reset_s, hold_cap_s)
            self._quota_holds += 1
            return
        self._quota_held_until = 0.0  # newer word than the one that held: it is not spent
        left = unspent - reserved
        if left <= 0:
            self._quota_next = now + min(quota.reset_s, hold_cap_s)
            return
        self._quota_next = 0.0
        # New reservations start after the ones already made: spread what is left over the rest.
        span = max(quota.reset_s - max(0.0, self._tat - now), 1e-3)
        self._told_rate = left / span * (1.0 - self._headroom)
        self._told_until = now + quota.reset_s

    def held_for(self) -> float:
        """Seconds left of a hold or pause (0: none), for a request whose reserved start came while
        one began: it must not go before the API said."""
        return max(0.0, max(self._paused_until, self._quota_held_until) - self._clock.now())

    def hold(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (the API said when to come back), without slowing
        the rate down afterwards."""
        self._paused_until = max(self._paused_until, self._clock.now() + seconds)

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
            quota_paced=self._quota_paced,
            quota_holds=self._quota_holds,
        )
