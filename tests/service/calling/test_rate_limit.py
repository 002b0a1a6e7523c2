"""The rate limiter on a fake clock: exact rates, burst, the 429 pause and slowdown."""

from __future__ import annotations

import pytest

from service.calling.rate_headers import Quota
from service.calling.rate_limit import RateLimiter
from service.testing import MockClock


def _start_times(limiter: RateLimiter, clock: MockClock, count: int) -> list[float]:
    """Reserve ``count`` slots at the current instant; return when each may start."""
    return [clock.now() + limiter.reserve() for _ in range(count)]


def test_no_rate_means_no_wait(clock: MockClock) -> None:
    """Without a configured rate nothing waits."""
    limiter = RateLimiter(None, 1, clock)
    assert _start_times(limiter, clock, 1000) == [clock.now()] * 1000


def test_requests_are_spaced_at_the_rate(clock: MockClock) -> None:
    """With burst 1, starts are exactly 1/rate apart."""
    limiter = RateLimiter(10.0, 1, clock)
    starts = _start_times(limiter, clock, 5)
    assert [round(s - clock.now(), 9) for s in starts] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert limiter.statistics().throttled == 4
    assert limiter.statistics().throttled_s == pytest.approx(1.0)


@pytest.mark.parametrize(("rate", "burst"), [(100.0, 1), (100.0, 5), (7.0, 3), (1000.0, 50)])
def test_no_window_exceeds_burst_plus_rate(clock: MockClock, rate: float, burst: int) -> None:
    """In any 1 s window at most burst + rate requests start, and the long-run rate is exact."""
    limiter = RateLimiter(rate, burst, clock)
    starts = sorted(_start_times(limiter, clock, int(rate * 5)))
    for i, start in enumerate(starts):
        in_window = sum(1 for s in starts[i:] if s < start + 1.0)
        assert in_window <= burst + rate
    span = starts[-1] - starts[burst - 1]
    assert (len(starts) - burst) / span == pytest.approx(rate, rel=1e-6)


def test_idle_time_refills_only_up_to_burst(clock: MockClock) -> None:
    """After an idle spell, burst requests go at once, then the pacing resumes."""
    limiter = RateLimiter(10.0, 3, clock)
    _start_times(limiter, clock, 10)
    clock.t += 100
    waits = [limiter.reserve() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.1)
    assert waits[4] == pytest.approx(0.2)


def test_pause_holds_everyone_and_halves_the_rate(clock: MockClock) -> None:
    """After a 429 every request waits out the pause, then goes at half the rate."""
    limiter = RateLimiter(10.0, 1, clock)
    limiter.pause(2.0)
    starts = [round(s - clock.now(), 9) for s in _start_times(limiter, clock, 3)]
    assert starts == [2.0, 2.2, 2.4]
    assert limiter.rate == 5.0


def test_rate_recovers_after_slowdown(clock: MockClock) -> None:
    """Without another 429, the rate climbs back to the configured one (a twentieth per second)."""
    limiter = RateLimiter(20.0, 1, clock)
    limiter.pause(0.0)
    assert limiter.rate == 10.0
    clock.t += 5.0
    limiter.reserve()
    assert limiter.rate == pytest.approx(15.0)
    clock.t += 60.0
    limiter.reserve()
    assert limiter.rate == 20.0


def test_slowdown_has_a_floor(clock: MockClock) -> None:
    """Repeated 429s never push the rate below a tenth of the configured one."""
    limiter = RateLimiter(100.0, 1, clock)
    for _ in range(20):
        limiter.pause(0.0)
    assert limiter.rate == 10.0


def test_pause_without_rate_still_holds_requests(clock: MockClock) -> None:
    """With no rate configured, a 429 still pauses the whole job."""
    limiter = RateLimiter(None, 1, clock)
    limiter.pause(3.0)
    assert limiter.reserve() == 3.0
    clock.t += 3.0
    assert limiter.reserve() == 0.0


def test_simultaneous_429s_slow_down_once(clock: MockClock) -> None:
    """Many requests refused together halve the rate once, not once each."""
    limiter = RateLimiter(100.0, 1, clock)
    for _ in range(30):
        limiter.pause(1.0)
    assert limiter.rate == 50.0
    clock.t += 1.0
    limiter.pause(1.0)
    assert limiter.rate == 25.0  # a new pause after the first ended slows down again


def test_headroom_paces_under_the_configured_rate(clock: MockClock) -> None:
    """With 2% headroom, 100/s is paced at 98/s."""
    limiter = RateLimiter(100.0, 1, clock, headroom=0.02)
    starts = _start_times(limiter, clock, 99)
    assert starts[-1] - starts[0] == pytest.approx(98 / 98.0)


def test_a_limiter_counts_what_it_did() -> None:
    """Acquisitions, those that had to wait and for how long, and pauses, exactly."""
    clock = MockClock()
    limiter = RateLimiter(rate=10.0, burst=2, clock=clock)
    waits = [limiter.reserve() for _ in range(4)]
    limiter.pause(1.0)
    limiter.pause(0.5)  # within the first: a pause, not a second slowdown
    stats = limiter.statistics()
    assert waits == pytest.approx([0.0, 0.0, 0.1, 0.2])
    assert (stats.acquisitions, stats.throttled, stats.pauses) == (4, 2, 2)
    assert stats.throttled_s == pytest.approx(0.3)
    assert limiter.rate == 5.0


def test_after_a_pause_requests_go_evenly_spaced_without_a_burst() -> None:
    """A pause of 2 s at 10/s with a burst of 5: the first request goes when the pause ends, the
    next ones the halved rate's interval apart (0.2 s), not five at once."""
    clock = MockClock()
    limiter = RateLimiter(rate=10.0, burst=5, clock=clock)
    limiter.pause(2.0)
    assert [limiter.reserve() for _ in range(3)] == pytest.approx([2.0, 2.2, 2.4])


def test_a_clock_starting_at_zero_holds_no_one_back() -> None:
    """Monotonic time may start near zero: the first requests still go at once."""
    limiter = RateLimiter(rate=1.0, burst=1, clock=MockClock(start=0.0))
    assert limiter.reserve() == 0.0
    unlimited = RateLimiter(rate=None, burst=1, clock=MockClock(start=0.0))
    assert unlimited.reserve() == 0.0


def _offsets(limiter: RateLimiter, clock: MockClock, count: int) -> list[float]:
    return [round(start - clock.now(), 9) for start in _start_times(limiter, clock, count)]


def test_an_announced_quota_spreads_what_remains_until_its_reset(clock: MockClock) -> None:
    """No rate of its own; the API says 10 left for 10 s: one a second, no burst (the quota
    binds), and the statistics count the paced starts."""
    limiter = RateLimiter(None, 5, clock)
    limiter.follow_quota(Quota(10, 10.0), uncounted=0, reserved=0, hold_cap_s=120)
    assert _offsets(limiter, clock, 4) == [0.0, 1.0, 2.0, 3.0]
    assert limiter.statistics().quota_paced == 4


def test_requests_the_api_has_not_counted_are_spent_quota(clock: MockClock) -> None:
    """10 left, but 4 sent after the answer that said so and 1 waiting for its start: 5 left
    for new ones over 10 s."""
    limiter = RateLimiter(None, 1, clock)
    limiter.follow_quota(Quota(10, 10.0), uncounted=4, reserved=1, hold_cap_s=120)
    assert _offsets(limiter, clock, 3) == [0.0, 2.0, 4.0]


def test_never_faster_than_the_configured_rate(clock: MockClock) -> None:
    limiter = RateLimiter(2.0, 1, clock)
    limiter.follow_quota(Quota(1000, 10.0), uncounted=0, reserved=0, hold_cap_s=120)
    assert _offsets(limiter, clock, 3) == [0.0, 0.5, 1.0]
    assert limiter.statistics().quota_paced == 0


def test_the_quota_s_pace_ends_with_its_window(clock: MockClock) -> None:
    limiter = RateLimiter(None, 1, clock)
    limiter.follow_quota(Quota(2, 4.0), uncounted=0, reserved=0, hold_cap_s=120)
    clock.t += 4.0
    assert _offsets(limiter, clock, 3) == [0.0, 0.0, 0.0]


def test_a_spent_quota_holds_every_request_until_its_reset(clock: MockClock) -> None:
    """None left (or all of it spent by requests sent since): every request waits for the reset,
    those that had reserved a start too (held_for); at most the cap."""
    limiter = RateLimiter(None, 1, clock)
    limiter.follow_quota(Quota(3, 5.0), uncounted=3, reserved=0, hold_cap_s=120)
    assert limiter.held_for() == 5.0
    assert _offsets(limiter, clock, 2) == [5.0, 5.0]
    assert limiter.statistics().quota_holds == 1
    capped = RateLimiter(None, 1, clock)
    capped.follow_quota(Quota(0, 3600.0), uncounted=0, reserved=0, hold_cap_s=120)
    assert capped.held_for() == 120.0


def test_newer_word_that_quota_remains_lifts_a_hold(clock: MockClock) -> None:
    limiter = RateLimiter(None, 1, clock)
    limiter.follow_quota(Quota(0, 5.0), uncounted=0, reserved=0, hold_cap_s=120)
    limiter.follow_quota(Quota(4, 4.0), uncounted=0, reserved=0, hold_cap_s=120)
    assert limiter.held_for() == 0.0
    assert _offsets(limiter, clock, 2) == [0.0, 1.0]


def test_what_remains_already_reserved_sends_new_reservations_past_the_reset(clock: MockClock) -> None:
    """3 left and 3 waiting for their start: those go (no hold), a new one waits for the reset."""
    limiter = RateLimiter(None, 1, clock)
    limiter.follow_quota(Quota(3, 5.0), uncounted=0, reserved=3, hold_cap_s=120)
    assert limiter.held_for() == 0.0
    assert _offsets(limiter, clock, 1) == [5.0]


def test_a_hold_is_not_a_slowdown(clock: MockClock) -> None:
    """A 503's Retry-After holds every request, then the configured rate resumes unhalved."""
    limiter = RateLimiter(10.0, 1, clock)
    limiter.hold(2.0)
    assert _offsets(limiter, clock, 2) == [2.0, 2.1]
    assert limiter.rate == 10.0
    assert limiter.statistics().pauses == 0
