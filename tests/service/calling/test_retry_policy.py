"""Retry decisions: the predicate per status and failure, Retry-After, backoff bounds."""

from __future__ import annotations

import email.utils

import pytest
import tenacity

from service import CallError, ErrorClass
from service.calling.backoff import backoff_delay, parse_retry_after
from service.calling.retry_policy import RetryPolicy, is_retryable
from service.spec import BackoffSection, RetrySection
from service.stats import StatsRecorder
from service.testing import MockClock

POLICY = RetrySection()


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_configured_statuses_are_retried(status: int) -> None:
    """The default retry_on_status list is retried."""
    assert is_retryable(CallError(ErrorClass.HTTP_5XX, "x", status=status), POLICY)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501])
def test_other_statuses_are_final(status: int) -> None:
    """Any other 4xx (and an unlisted 5xx) is final on the first try."""
    assert not is_retryable(CallError(ErrorClass.HTTP_4XX, "x", status=status), POLICY)


def test_retry_statuses_are_configurable() -> None:
    """A spec can make 404 retryable and 500 final."""
    policy = RetrySection(retry_on_status=(404,))
    assert is_retryable(CallError(ErrorClass.HTTP_4XX, "x", status=404), policy)
    assert not is_retryable(CallError(ErrorClass.HTTP_5XX, "x", status=500), policy)


@pytest.mark.parametrize(
    ("error_class", "expected"),
    [
        (ErrorClass.TIMEOUT, True),
        (ErrorClass.CONNECT, True),
        (ErrorClass.INVALID_JSON, False),
        (ErrorClass.INVALID_KEY, False),
    ],
)
def test_failures_without_status(error_class: ErrorClass, expected: bool) -> None:
    """Timeouts and connection errors retry; a bad answer or key does not."""
    assert is_retryable(CallError(error_class, "x"), POLICY) is expected


def test_retry_after_seconds() -> None:
    """Retry-After as delay-seconds."""
    assert parse_retry_after("7", wall_now=0.0) == 7.0
    assert parse_retry_after(" 0 ", wall_now=0.0) == 0.0


def test_retry_after_http_date() -> None:
    """Retry-After as an HTTP-date is relative to the injected wall clock; past dates give 0."""
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), wall_now=now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), wall_now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", wall_now=1445412470.0) == 10.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5e3"])
def test_unparseable_retry_after_is_ignored(value: str | None) -> None:
    """A header in neither form gives None: the caller backs off instead."""
    assert parse_retry_after(value, wall_now=0.0) is None


def test_retry_after_wins_over_backoff_up_to_the_cap(clock: MockClock) -> None:
    """A server's Retry-After is honoured, but never beyond retry_after_cap_s."""
    policy = RetryPolicy(RetrySection(retry_after_cap_s=60), random=lambda: 0.0, clock=clock)
    told = CallError(ErrorClass.RATE_LIMITED, "x", status=429, retry_after="2")
    assert policy.delay(told, 5) == 2.0
    too_long = CallError(ErrorClass.RATE_LIMITED, "x", status=429, retry_after="3600")
    assert policy.delay(too_long, 1) == 60.0
    plain = CallError(ErrorClass.HTTP_5XX, "x", status=503)
    assert policy.delay(plain, 1) == 0.5


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    """Without jitter: initial, x2, x4 ... capped at max_s."""
    policy = BackoffSection(initial_s=0.5, max_s=5, multiplier=2, jitter=0)
    delays = [backoff_delay(n, policy, random=lambda: 0.7) for n in range(1, 8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert backoff_delay(10_000, policy, random=lambda: 0.0) == 5.0


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.999999])
def test_backoff_jitter_stays_within_bounds(draw: float) -> None:
    """With jitter j the delay lies in [base * (1 - j), base]."""
    policy = BackoffSection(initial_s=1, max_s=30, multiplier=3, jitter=0.5)
    for attempt in range(1, 6):
        base = min(30, 3 ** (attempt - 1))
        delay = backoff_delay(attempt, policy, random=lambda: draw)
        assert base * 0.5 <= delay <= base
    assert backoff_delay(2, policy, random=lambda: 0.0) == 3.0
    assert backoff_delay(2, policy, random=lambda: 1.0) == 1.5


def test_the_policy_says_retry_in_n_seconds_or_stop(clock: MockClock) -> None:
    """Retryable and attempts left: the backoff (or Retry-After); otherwise None, final."""
    section = RetrySection(attempts=3, backoff=BackoffSection(initial_s=1, max_s=8, jitter=0))
    policy = RetryPolicy(section, random=lambda: 0.0, clock=clock)
    busy = CallError(ErrorClass.HTTP_5XX, "HTTP 503", status=503)
    assert policy.next_delay(busy, 1, StatsRecorder()) == 1.0
    assert policy.next_delay(busy, 2, StatsRecorder()) == 2.0
    assert policy.next_delay(busy, 3, StatsRecorder()) is None  # the third attempt was the last
    told = CallError(ErrorClass.HTTP_5XX, "HTTP 503", status=503, retry_after="5")
    assert policy.next_delay(told, 1, StatsRecorder()) == 5.0
    missing = CallError(ErrorClass.HTTP_4XX, "HTTP 404", status=404)
    assert policy.next_delay(missing, 1, StatsRecorder()) is None


def test_a_spent_budget_makes_a_retryable_failure_final_and_says_so(clock: MockClock) -> None:
    """With no ratio, the budget is its floor (100 retries per 10 s): the 101st and 102nd
    retryable failures are final, counted, and their message says why."""
    section = RetrySection(attempts=6, budget=0, backoff=BackoffSection(initial_s=1, max_s=1, jitter=0))
    policy = RetryPolicy(section, random=lambda: 0.0, clock=clock)
    stats = StatsRecorder()
    errors = [CallError(ErrorClass.HTTP_5XX, "HTTP 503", status=503) for _ in range(102)]
    delays = [policy.next_delay(error, 1, stats) for error in errors]
    assert delays == [1.0] * 100 + [None, None]
    assert stats.retries_refused == 2
    assert [e.message for e in errors[99:]] == ["HTTP 503"] + [
        "HTTP 503 (not retried: the job's retry budget is spent, the API fails too often)"
    ] * 2


def test_a_retry_after_date_is_read_on_the_policys_clock(clock: MockClock) -> None:
    """An HTTP-date Retry-After 7 s after the clock's wall time: wait 7 s."""
    policy = RetryPolicy(RetrySection(attempts=3), random=lambda: 0.0, clock=clock)
    later = email.utils.formatdate(clock.wall() + 7, usegmt=True)
    told = CallError(ErrorClass.HTTP_5XX, "HTTP 503", status=503, retry_after=later)
    assert policy.next_delay(told, 1, StatsRecorder()) == pytest.approx(7.0, abs=1.0)
    assert policy.delay(told, 1) == pytest.approx(7.0, abs=1.0)


@pytest.mark.usefixtures("zone_behind_utc")
def test_a_retry_after_date_keeps_its_offset_and_a_date_without_one_is_gmt() -> None:
    """ "+0200" is two hours ahead of GMT; "-0000" (no zone) is GMT, not the machine's local time
    (read here in a zone five hours behind)."""
    now = email.utils.parsedate_to_datetime("Sun, 06 Nov 1994 08:49:37 GMT").timestamp()
    assert parse_retry_after("Sun, 06 Nov 1994 10:49:47 +0200", now) == 10.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:47 -0000", now) == 10.0


def test_the_condition_and_the_wait_see_one_state_per_failed_attempt(clock: MockClock) -> None:
    """As in tenacity's own loop, a Python ``retry`` and ``wait`` are asked about one failed attempt
    with the same ``RetryCallState`` (a wait may read what the condition noted on it)."""
    seen: list[tuple[str, tenacity.RetryCallState]] = []

    def retry(state: tenacity.RetryCallState) -> bool:
        seen.append(("retry", state))
        return True

    def wait(state: tenacity.RetryCallState) -> float:
        seen.append(("wait", state))
        return 0.25

    policy = RetryPolicy(RetrySection(attempts=3), random=lambda: 0.0, clock=clock, retry=retry, wait=wait)
    error = CallError(ErrorClass.HTTP_5XX, "HTTP 503", status=503)
    assert policy.next_delay(error, 2, StatsRecorder()) == 0.25
    assert [name for name, _ in seen] == ["retry", "wait"]
    assert seen[0][1] is seen[1][1]
    assert seen[1][1].attempt_number == 2
    outcome = seen[1][1].outcome
    assert outcome is not None
    assert outcome.exception() is error
