"""The concurrency limit found from the API's latency and its load-shedding answers:
``[limits] concurrency = "auto"``.

Why not one of the two the field names first. AIMD (TCP Reno, Netflix's ``AIMDLimit``) learns
only from errors: it grows until the API sheds load, halves, and grows again, so it lives between
the API's capacity and the point where it refuses, with a burst of 503s every cycle. Gradient2
learns from latency, but against a long average of its own latency, which follows the limit up:
under steady queueing its gradient returns to 1 and it grows by its queue allowance until the API
refuses, which it does not read.

So: Gradient's rule against the lowest latency this job has seen (the API's latency with nothing
queued, as TCP Vegas and Netflix's ``VegasLimit`` take it), and AIMD's multiplicative decrease on
load shedding. Every window of answers (one limit's worth: about one round trip):

- the second load-shedding failure (429, 5xx, timeouts: ``SHEDDING``): ``limit * BACKOFF`` at
  once, without waiting for the window's end (refusals come back fast and would fill it);
- a window with one such failure: no change (its quick answers say nothing of queueing);
- mean latency above ``tolerance * floor`` (or above ``target_latency_s``, a latency the user
  accepts, when that is higher): the limit at which that latency says the API answers within the
  threshold, ``limit * threshold / mean`` (at most halved);
- otherwise, if the window used at least half the limit: double while no window has queued yet
  (slow start), then one more.

In a server that queues past C in flight (latency ``floor * n / C``), the decrease lands on
``tolerance * C`` and the increase probes one above it: it settles at ``tolerance * C``. One
window after a change is not judged: its answers were asked for under the old limit.
"""

from __future__ import annotations

import bisect

from service.errors import ErrorClass
from service.spec import LimitsSection

SHEDDING = frozenset({ErrorClass.RATE_LIMITED, ErrorClass.HTTP_5XX, ErrorClass.TIMEOUT})
BACKOFF = 0.75
DEFAULT_TOLERANCE = 1.25
INITIAL_LIMIT = 4
LEAST_WINDOW = 8


class AdaptiveLimit:
    """The concurrency limit, updated by every attempt's latency and outcome (``observe``)."""

    def __init__(
        self,
        most: int,
        *,
        target_latency_s: float | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        initial: int = INITIAL_LIMIT,
    ) -> None:
        self.most = most
        self.limit = min(most, initial)
        self.history = LimitHistory(self.limit)  # each change, on the job's clock: limit_since
        self._target_s = target_latency_s
        self._tolerance = tolerance
        self._floor_s = float("inf")
        self._slow_start = True
        self._skip_window = False
        self._reset_window()

    @classmethod
    def for_limits(cls, limits: LimitsSection, now_s: float) -> AdaptiveLimit | None:
        """The limit ``[limits]`` asks for, its history starting at ``now_s``; None unless
        ``concurrency = "auto"``."""
        if not limits.adaptive_concurrency:
            return None
        target_ms = limits.target_latency_ms
        adaptive = cls(limits.concurrency, target_latency_s=None if target_ms is None else target_ms / 1000)
        adaptive.history.started_s = now_s
        return adaptive

    def limit_since(self, now_s: float) -> int:
        """The limit, which changed at ``now_s`` (kept in ``history``)."""
        self.history.record(now_s, self.limit)
        return self.limit

    def _reset_window(self) -> None:
        self._count = 0
        self._total_s = 0.0
        self._shed = 0
        self._busiest = 0

    def observe(self, latency_s: float, error_class: ErrorClass | None, in_flight: int) -> bool:
        """Count one attempt (``in_flight`` were in flight as it ended); True when the limit
        changed."""
        self._count += 1
        self._total_s += latency_s
        if in_flight > self._busiest:
            self._busiest = in_flight
        if error_class in SHEDDING:
            self._shed += 1
            if self._shed >= 2 and not self._skip_window:  # at once: refusals come back fast
                self._slow_start = False
                self._reset_window()
                return self._set(self.limit * BACKOFF)
        if self._count < max(LEAST_WINDOW, self.limit):
            return False
        return self._judge_window()

    def _judge_window(self) -> bool:
        mean_s = self._total_s / self._count
        shed, busiest = self._shed, self._busiest
        self._reset_window()
        if self._skip_window:
            self._skip_window = False
            return False
        if shed:  # a latency that includes refusals' quick answers says nothing of queueing
            return False
        self._floor_s = min(self._floor_s, mean_s)
        return self._set(self._next_limit(mean_s, busiest))

    def _next_limit(self, mean_s: float, busiest: int) -> float:
        limit = self.limit
        threshold = max(self._target_s or 0.0, self._tolerance * self._floor_s)
        if mean_s > threshold:
            self._slow_start = False
            return limit * max(0.5, threshold / mean_s)
        if busiest * 2 < limit:  # the job did not use the limit it has: nothing learnt about more
            return limit
        return limit * 2 if self._slow_start else limit + 1

    def _set(self, limit: float) -> bool:
        new = max(1, min(self.most, int(limit)))
        if new == self.limit:
            return False
        self.limit = new
        self._skip_window = True
        return True


MOST_POINTS = 512


class LimitHistory:
    """The limit over a job's time: (seconds since the start, the limit from then on), the first
    and then at most one point per ``resolution_s``; past ``MOST_POINTS`` every other point goes
    and the resolution doubles, so a job of any length keeps a bounded history."""

    def __init__(self, limit: int, resolution_s: float = 1.0) -> None:
        self.points: list[tuple[float, int]] = [(0.0, limit)]
        self.started_s = 0.0  # on the clock ``record`` is given: the job's start
        self._resolution_s = resolution_s

    def record(self, now_s: float, limit: int) -> None:
        """From ``now_s`` on, the limit is ``limit``."""
        elapsed_s = now_s - self.started_s
        points = self.points
        since, _ = points[-1]
        if elapsed_s - since < self._resolution_s and len(points) > 1:  # the first stays: where it began
            points[-1] = (since, limit)
            return
        points.append((round(elapsed_s, 3), limit))
        if len(points) > MOST_POINTS:
            self.points = points[::2]
            self._resolution_s *= 2

    def since(self, now_s: float) -> tuple[tuple[float, int], ...]:
        """The history from ``now_s`` on, timed from there (the limit in force then at 0)."""
        points = self.points
        start = now_s - self.started_s
        first = max(0, bisect.bisect_right(points, start, key=lambda point: point[0]) - 1)
        later = tuple((round(since - start, 3), limit) for since, limit in points[first + 1 :])
        return ((0.0, points[first][1]), *later)
