"""A caller's counters, call by call: each call (``enrich_frame``'s, a batch's) counts in a
recorder of its own, added to the caller's totals when it ends; the caller's figures at any moment
are the totals plus the calls still running. Time spent waiting is kept apart, as wall-clock time
(``rate_waits``, ``slot_waits``): summed over calls it would count overlapping waits twice."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from service.calling.adaptive_limit import AdaptiveLimit
from service.calling.circuit import CircuitBreaker
from service.calling.clock import Clock
from service.stats import EnrichStats, StatsRecorder, WaitSpans


class CallCounts:
    """The counters of every call a caller served, and the caller's own waits."""

    def __init__(self, clock: Clock, breaker: CircuitBreaker, adaptive: AdaptiveLimit | None = None) -> None:
        self._clock = clock
        self._breaker = breaker
        self.adaptive = adaptive  # with concurrency = "auto": the concurrency it chose, and when
        self._totals = StatsRecorder()  # of every call that ended
        self._running: list[StatsRecorder] = []
        self.rate_waits = WaitSpans()
        self.slot_waits = WaitSpans()

    @contextmanager
    def counting(self) -> Iterator[StatsRecorder]:
        """A new call's counters: its own while it runs, added to the totals when it ends."""
        call = StatsRecorder(started_s=self._clock.now())
        self._running.append(call)
        try:
            yield call
        finally:
            self._running.remove(call)
            self._totals.absorb(call)

    def counters(self) -> StatsRecorder:
        """A copy of every call's counters added up, those still running included."""
        counters = self._totals.copy()
        for call in self._running:
            counters.absorb(call)
        return counters

    def statistics(self, *, started_s: float) -> EnrichStats:
        """Every call's figures since ``started_s``, those still running included (their rows in
        proportion to their keys answered)."""
        now = self._clock.now()
        return self.counters().snapshot(
            throttled_s=self.rate_waits.seconds(now),
            concurrency_wait_s=self.slot_waits.seconds(now),
            elapsed_s=now - started_s,
            circuit_open=self._breaker.reason,
            rows_in_flight=sum(call.rows_answered_in_flight() for call in self._running),
            concurrency_chosen=self._concurrency_since(started_s),
        )

    def _concurrency_since(self, started_s: float) -> tuple[tuple[float, int], ...]:
        return () if self.adaptive is None else self.adaptive.history.since(started_s)

    def call_statistics(self, call: StatsRecorder) -> EnrichStats:
        """One call's own figures (``counting``'s recorder)."""
        now = self._clock.now()
        return call.snapshot(
            throttled_s=call.rate_waits.seconds(now),
            concurrency_wait_s=call.slot_waits.seconds(now),
            elapsed_s=now - call.started_s,
            circuit_open=self._breaker.reason,
            concurrency_chosen=self._concurrency_since(call.started_s),
        )
