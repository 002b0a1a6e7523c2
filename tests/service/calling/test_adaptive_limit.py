"""The adaptive concurrency limit, driven by a simulated API on a simulated clock.

The simulated API answers in ``FLOOR_S`` up to ``capacity`` requests in flight, queues beyond
(latency grows as ``in_flight / capacity``) and refuses with a quick 503 past twice its capacity:
the mock API's capacity mode, without the noise of a shared machine. The job keeps as many
requests in flight as the limit allows, as a large batch does.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

import pytest

from service.calling.adaptive_limit import AdaptiveLimit, LimitHistory
from service.errors import ErrorClass
from service.stats import settled_limit

FLOOR_S = 0.05


@dataclass
class Run:
    settled: int
    refused_share: float
    answers_per_s: float  # over the second half of the run


class FixedLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def observe(self, latency_s: float, error_class: ErrorClass | None, in_flight: int) -> bool:
        return False


def simulate(
    limit: AdaptiveLimit | FixedLimit,
    capacity: int,
    *,
    requests: int = 20_000,
    queues: bool = True,
    busy_keys: int | None = None,
    error_every: int = 0,
) -> Run:
    """``requests`` attempts through ``limit``. ``queues=False``: the API refuses past twice its
    capacity without slowing first; ``busy_keys``: the job never has more than this in flight;
    ``error_every``: every n-th answer is a 503 whatever the load."""
    jitter = random.Random(0)
    in_flight: list[tuple[float, float, bool]] = []  # (ends, started, refused)
    history = LimitHistory(limit.limit, resolution_s=0.0)
    now, refused, answered_at = 0.0, 0, []
    for number in range(1, requests + 1):
        most = limit.limit if busy_keys is None else min(limit.limit, busy_keys)
        while len(in_flight) < most:
            load = len(in_flight) + 1
            if load > 2 * capacity:
                heapq.heappush(in_flight, (now + FLOOR_S / 10, now, True))
                continue
            slowed = max(1.0, load / capacity) if queues else 1.0
            heapq.heappush(in_flight, (now + FLOOR_S * slowed * (1 + 0.1 * jitter.random()), now, False))
        now, started, was_refused = heapq.heappop(in_flight)
        was_refused = was_refused or (error_every > 0 and number % error_every == 0)
        refused += was_refused
        if not was_refused:
            answered_at.append(now)
        if limit.observe(now - started, ErrorClass.HTTP_5XX if was_refused else None, len(in_flight) + 1):
            history.record(now, limit.limit)
    settled = settled_limit(history.points, now)
    assert settled is not None
    late = sum(1 for at in answered_at if at >= now / 2)
    return Run(settled, refused / requests, late / (now / 2))


@pytest.mark.parametrize("capacity", [8, 32, 100])
def test_the_limit_settles_near_the_capacity_without_refusals_at_full_throughput(capacity: int) -> None:
    run = simulate(AdaptiveLimit(256), capacity)
    best_fixed = max(simulate(FixedLimit(n), capacity).answers_per_s for n in (capacity, capacity * 3 // 2))
    assert 0.75 * capacity <= run.settled <= 1.5 * capacity
    assert run.refused_share <= 0.01
    assert run.answers_per_s >= 0.9 * best_fixed


def test_the_limit_never_passes_the_most_allowed() -> None:
    assert simulate(AdaptiveLimit(20), capacity=100).settled == 20


@pytest.mark.parametrize("capacity", [32, 100])
def test_an_api_that_refuses_without_slowing_holds_the_limit_below_where_it_refuses(capacity: int) -> None:
    run = simulate(AdaptiveLimit(512), capacity, queues=False)
    assert capacity <= run.settled <= 2 * capacity
    assert run.refused_share <= 0.05


def test_a_job_that_uses_few_slots_does_not_grow_the_limit() -> None:
    """Growing on answers the limit did not constrain would leave a limit no one measured."""
    assert simulate(AdaptiveLimit(256), capacity=32, busy_keys=3).settled <= 8


def test_a_single_refusal_now_and_then_is_not_read_as_overload() -> None:
    run = simulate(AdaptiveLimit(256), capacity=32, error_every=60)
    assert 0.75 * 32 <= run.settled <= 1.5 * 32


def test_a_latency_target_above_the_floor_lets_requests_queue_up_to_it() -> None:
    run = simulate(AdaptiveLimit(256, target_latency_s=1.6 * FLOOR_S), capacity=32)
    assert 1.4 * 32 <= run.settled <= 1.7 * 32


def test_the_history_keeps_a_bounded_number_of_points_over_any_length() -> None:
    history = LimitHistory(4, resolution_s=1.0)
    for second in range(100_000):
        history.record(float(second), 4 + second % 7)
    assert len(history.points) <= 512
    assert history.points[0] == (0.0, 4)
    assert [since for since, _ in history.points] == sorted(since for since, _ in history.points)


def test_the_settled_limit_is_the_one_held_longest_over_the_second_half() -> None:
    points = [(0.0, 4), (1.0, 8), (2.0, 40), (6.0, 41), (6.5, 40)]
    assert settled_limit(points, end_s=10.0) == 40  # 41 held 0.5 s of the last 5
    assert settled_limit([(0.0, 4)], end_s=10.0) == 4
    assert settled_limit([], end_s=1.0) is None


def test_the_first_point_stays_where_the_limit_began() -> None:
    history = LimitHistory(4, resolution_s=1.0)
    history.record(0.2, 8)
    history.record(0.5, 16)  # within a second of the last point: replaces it
    assert history.points == [(0.0, 4), (0.2, 16)]


def test_the_history_from_a_later_moment_starts_with_the_limit_in_force_then() -> None:
    history = LimitHistory(4, resolution_s=0.0)
    history.started_s = 100.0
    history.record(101.0, 8)
    history.record(103.0, 40)
    assert history.since(102.0) == ((0.0, 8), (1.0, 40))
    assert history.since(100.0) == ((0.0, 4), (1.0, 8), (3.0, 40))
