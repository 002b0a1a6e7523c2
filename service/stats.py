"""Job statistics: cheap counters on the hot path, a frozen snapshot for everyone who reads them.

Latencies go into a log-bucketed histogram (about 5% resolution) so that memory stays constant
however many requests a job makes; percentiles are read from it. Time spent waiting (for the rate
limit, for a concurrency slot) is wall-clock time during which at least one request waited: many
requests waiting at once count once, so the figure reads against the job's elapsed time.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

from service.errors import ErrorClass

_BUCKETS_PER_E = 20  # buckets per factor e: consecutive bucket edges differ by ~5%
_MAX_BUCKET = 600  # exp(600 / 20) microseconds is about 3 hours: beyond any timeout


def _bucket(seconds: float) -> int:
    return min(_MAX_BUCKET, int(math.log1p(seconds * 1e6) * _BUCKETS_PER_E))


def _bucket_value(bucket: int) -> float:
    """The middle of a bucket, in seconds."""
    return math.expm1((bucket + 0.5) / _BUCKETS_PER_E) / 1e6


@dataclass(frozen=True, slots=True)
class EnrichStats:
    """What a job did. Every figure is a count or seconds."""

    rows: int
    rows_ok: int
    rows_failed: int
    rows_failed_by_class: dict[str, int]
    distinct_keys: int
    requests: int
    retries: int
    cache_hits: int
    outcomes: dict[str, int]
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    throttled_s: float  # wall-clock seconds during which some request waited for the rate limit
    concurrency_wait_s: float  # ... for a concurrency slot
    elapsed_s: float
    circuit_open: str | None = None
    uncacheable: int = 0  # answers the cache keeps by rule but could not encode, so not stored
    answers_reused: int = 0  # keys answered earlier in the same job (its answer log): no request
    retries_refused: int = 0  # retryable failures made final by the job's retry budget
    # Rows whose keys have an outcome so far: ``rows`` once every frame is done, and, while frames
    # are in flight, their rows in proportion to their keys answered (it moves as answers arrive).
    rows_answered: int = 0
    # With concurrency = "auto": (seconds since the start, the concurrency from then on).
    concurrency_chosen: tuple[tuple[float, int], ...] = ()

    @property
    def concurrency_settled(self) -> int | None:
        """With concurrency = "auto": the concurrency it settled on (``settled_limit``)."""
        return settled_limit(self.concurrency_chosen, self.elapsed_s)

    @property
    def rows_per_s(self) -> float:
        """Rows handled per second of the job's time."""
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(slots=True)
class WaitSpans:
    """Wall-clock seconds during which at least one waiter waited: ``begin`` when a wait starts,
    ``end`` when it ends; overlapping waits count once."""

    _total_s: float = 0.0
    _waiting: int = 0
    _since: float = 0.0

    def begin(self, now: float) -> None:
        """A wait starts at ``now``."""
        if not self._waiting:
            self._since = now
        self._waiting += 1

    def end(self, now: float) -> None:
        """A wait that began earlier ends at ``now``."""
        self._waiting -= 1
        if not self._waiting:
            self._total_s += now - self._since

    def seconds(self, now: float) -> float:
        """The waited time up to ``now`` (a wait still going counts up to ``now``)."""
        return self._total_s + (now - self._since if self._waiting else 0.0)


@dataclass(slots=True)
class StatsRecorder:
    """Mutable counters the caller and the engine update; ``snapshot()`` freezes them.

    A caller keeps one for its whole life and one per call (``CallCounts.counting``), added to
    the first when the call ends: each call's figures are its own.
    """

    cache_hits: int = 0
    uncacheable: int = 0
    answers_reused: int = 0
    retries_refused: int = 0
    rows_ok: int = 0
    rows_failed_by_class: dict[str, int] = field(default_factory=dict)
    distinct_keys: int = 0
    requests: int = 0
    retries: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    rate_waits: WaitSpans = field(default_factory=WaitSpans)
    slot_waits: WaitSpans = field(default_factory=WaitSpans)
    # Waits of batches enriched in other processes (each batch's wall-clock waits, added up).
    throttled_elsewhere_s: float = 0.0
    concurrency_wait_elsewhere_s: float = 0.0
    started_s: float = 0.0  # on the caller's clock
    # A call's frame, for progress while it runs: its rows, its distinct keys, those settled so far.
    frame_rows: int = 0
    frame_keys: int = 0
    keys_settled: int = 0
    _latency: list[int] = field(default_factory=lambda: [0] * (_MAX_BUCKET + 1))
    _latency_count: int = 0

    def absorb(
        self, other: StatsRecorder, *, throttled_s: float = 0.0, concurrency_wait_s: float = 0.0
    ) -> None:
        """Add the counters of a finished call, or of a batch enriched in another process (a Dask
        worker: ``throttled_s`` and ``concurrency_wait_s`` are its caller's waits)."""
        self.cache_hits += other.cache_hits
        self.uncacheable += other.uncacheable
        self.answers_reused += other.answers_reused
        self.retries_refused += other.retries_refused
        self.add_rows(
            ok=other.rows_ok, failed_by_class=other.rows_failed_by_class, distinct_keys=other.distinct_keys
        )
        self.requests += other.requests
        self.retries += other.retries
        for name, count in other.outcomes.items():
            self.outcomes[name] = self.outcomes.get(name, 0) + count
        self.throttled_elsewhere_s += throttled_s + other.throttled_elsewhere_s
        self.concurrency_wait_elsewhere_s += concurrency_wait_s + other.concurrency_wait_elsewhere_s
        self._latency = [a + b for a, b in zip(self._latency, other._latency, strict=True)]
        self._latency_count += other._latency_count

    def copy(self) -> StatsRecorder:
        """An independent copy (later counts on either side do not reach the other)."""
        return copy.deepcopy(self)

    def add_rows(self, *, ok: int, failed_by_class: dict[str, int], distinct_keys: int) -> None:
        """Count the rows of one enriched frame."""
        self.rows_ok += ok
        for name, count in failed_by_class.items():
            self.rows_failed_by_class[name] = self.rows_failed_by_class.get(name, 0) + count
        self.distinct_keys += distinct_keys

    def rows_answered_in_flight(self) -> int:
        """Of a call still running: its frame's rows in proportion to its keys settled so far."""
        if not self.frame_keys:
            return 0
        return self.frame_rows * min(self.keys_settled, self.frame_keys) // self.frame_keys

    def snapshot(
        self,
        *,
        throttled_s: float,
        concurrency_wait_s: float,
        elapsed_s: float,
        circuit_open: str | None,
        rows_in_flight: int = 0,
        concurrency_chosen: tuple[tuple[float, int], ...] = (),
    ) -> EnrichStats:
        """A frozen copy of the counters, with the figures kept elsewhere passed in: the wall-clock
        waits, the time, the breaker's reason, and rows answered in calls still running."""
        failed = sum(self.rows_failed_by_class.values())
        return EnrichStats(
            rows=self.rows_ok + failed,
            rows_ok=self.rows_ok,
            rows_failed=failed,
            rows_failed_by_class=dict(self.rows_failed_by_class),
            distinct_keys=self.distinct_keys,
            requests=self.requests,
            retries=self.retries,
            cache_hits=self.cache_hits,
            outcomes=dict(self.outcomes),
            latency_p50_s=self.percentile(0.50),
            latency_p95_s=self.percentile(0.95),
            latency_p99_s=self.percentile(0.99),
            throttled_s=throttled_s + self.throttled_elsewhere_s,
            concurrency_wait_s=concurrency_wait_s + self.concurrency_wait_elsewhere_s,
            elapsed_s=elapsed_s,
            circuit_open=circuit_open,
            uncacheable=self.uncacheable,
            answers_reused=self.answers_reused,
            retries_refused=self.retries_refused,
            rows_answered=self.rows_ok + failed + rows_in_flight,
            concurrency_chosen=concurrency_chosen,
        )

    def record_attempt(self, seconds: float, error_class: ErrorClass | None) -> None:
        """Record one attempt: its latency, and its outcome (None for ok, else its error class)."""
        self._latency[_bucket(seconds)] += 1
        self._latency_count += 1
        name = "ok" if error_class is None else error_class.value
        outcomes = self.outcomes
        outcomes[name] = outcomes.get(name, 0) + 1

    def latency_histogram(self, bounds: list[float]) -> tuple[list[int], int, float]:
        """For each of the ascending ``bounds`` (seconds), how many attempts took at most that
        long (by their bucket's middle, so within ~5%); then the count of every attempt, and the
        sum of their latencies (from the buckets' middles): a Prometheus histogram's figures."""
        at_most = [0] * len(bounds)
        total = 0.0
        for bucket, count in enumerate(self._latency):
            if not count:
                continue
            value = _bucket_value(bucket)
            total += value * count
            for index, bound in enumerate(bounds):
                if value <= bound:
                    at_most[index] += count
        return at_most, self._latency_count, total

    def percentile(self, fraction: float) -> float | None:
        """The latency below which ``fraction`` of attempts fell, or None with no attempt."""
        if not self._latency_count:
            return None
        rank = max(1, math.ceil(fraction * self._latency_count))
        seen = 0
        for bucket, count in enumerate(self._latency):
            seen += count
            if seen >= rank:
                return _bucket_value(bucket)
        return _bucket_value(_MAX_BUCKET)


def milliseconds(seconds: float | None) -> float | None:
    """``seconds`` in milliseconds, rounded to 0.01 ms (None stays None)."""
    return None if seconds is None else round(seconds * 1000, 2)


def settled_limit(
    points: tuple[tuple[float, int], ...] | list[tuple[float, int]], end_s: float
) -> int | None:
    """The limit held longest over the second half of ``[0, end_s]`` (the time-weighted median):
    what the job settled on. None without points."""
    if not points:
        return None
    half = end_s / 2
    held: dict[int, float] = {}
    ends = [since for since, _ in points[1:]] + [end_s]
    for (since, limit), until in zip(points, ends, strict=True):
        span = until - max(since, half)
        if span > 0:
            held[limit] = held.get(limit, 0.0) + span
    if not held:
        return points[-1][1]
    total, seen = sum(held.values()), 0.0
    for limit in sorted(held):
        seen += held[limit]
        if seen >= total / 2:
            return limit
    return points[-1][1]
