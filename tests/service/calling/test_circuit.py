"""The circuit breaker opens on consecutive connection failures or a failure ratio."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from service import ErrorClass
from service.calling.circuit import CircuitBreaker
from service.spec import CircuitSection


def test_opens_after_consecutive_connection_failures() -> None:
    """N connection failures or timeouts in a row open it."""
    breaker = CircuitBreaker(CircuitSection(consecutive_failures=3, window=1000))
    breaker.record(ErrorClass.CONNECT)
    breaker.record(ErrorClass.TIMEOUT)
    assert not breaker.is_open
    breaker.record(ErrorClass.CONNECT)
    assert breaker.is_open
    assert "3 connection failures or timeouts in a row" in (breaker.reason or "")


def test_any_answer_resets_the_consecutive_count() -> None:
    """An answer (even a 4xx or 5xx) proves the API is reachable."""
    breaker = CircuitBreaker(CircuitSection(consecutive_failures=3, window=1000))
    for _ in range(10):
        breaker.record(ErrorClass.CONNECT)
        breaker.record(ErrorClass.CONNECT)
        breaker.record(ErrorClass.HTTP_4XX)
    assert not breaker.is_open


def test_opens_on_failure_ratio_over_the_window() -> None:
    """Failures at or over the ratio of a full window open it."""
    breaker = CircuitBreaker(CircuitSection(consecutive_failures=1000, failure_ratio=0.5, window=10))
    for _ in range(4):
        breaker.record(ErrorClass.HTTP_5XX)
        breaker.record(None)
    assert not breaker.is_open  # 4 of 8: window not full yet
    breaker.record(ErrorClass.HTTP_5XX)
    assert not breaker.is_open  # 5 of 9
    breaker.record(None)
    assert breaker.is_open  # 5 of 10
    assert "5 of the last 10 attempts failed" in (breaker.reason or "")


def test_window_slides() -> None:
    """Old failures leave the window: a low steady failure rate never opens it."""
    breaker = CircuitBreaker(CircuitSection(consecutive_failures=1000, failure_ratio=0.5, window=10))
    for i in range(1000):
        breaker.record(ErrorClass.HTTP_5XX if i % 3 == 0 else None)
    assert not breaker.is_open


def test_client_errors_do_not_count_and_429_counts_toward_the_window_only() -> None:
    """4xx answers are the API working as designed; a 429 is not a sign the API is down (it never
    counts toward the run of connection failures) but many in the window stop the job."""
    breaker = CircuitBreaker(CircuitSection(consecutive_failures=2, failure_ratio=0.5, window=10))
    for _ in range(50):
        breaker.record(ErrorClass.HTTP_4XX)
    for _ in range(4):
        breaker.record(ErrorClass.RATE_LIMITED)
        breaker.record(None)
    assert not breaker.is_open  # 4 of the last 10: under the ratio (and no run of 2 counted)
    breaker.record(ErrorClass.RATE_LIMITED)  # 5 of the last 10
    assert breaker.reason is not None
    assert breaker.reason.startswith("rate_limited: the API kept answering 429 after the job paused")


def test_disabled_breaker_never_opens() -> None:
    """enabled = false turns it off."""
    breaker = CircuitBreaker(CircuitSection(enabled=False, consecutive_failures=1))
    for _ in range(100):
        breaker.record(ErrorClass.CONNECT)
    assert not breaker.is_open


def test_the_reason_names_429s_only_when_they_are_at_least_half_the_failures() -> None:
    """A full window at the failure ratio stops the job: as rate_limited, naming the 429s, when
    they are half the failures or more; as failures otherwise."""
    section = CircuitSection(consecutive_failures=1000, failure_ratio=0.5, window=10)
    fewer = CircuitBreaker(section)
    for outcome in [ErrorClass.RATE_LIMITED] * 2 + [ErrorClass.HTTP_5XX] * 3 + [None] * 5:
        fewer.record(outcome)
    assert fewer.reason == "5 of the last 10 attempts failed (threshold 50%)"
    half = CircuitBreaker(section)
    for outcome in [ErrorClass.RATE_LIMITED] * 3 + [ErrorClass.HTTP_5XX] * 3 + [None] * 4:
        half.record(outcome)
    assert half.reason == (
        "rate_limited: the API kept answering 429 after the job paused for it (3 of the last 10 attempts)"
    )


def test_429s_leaving_the_window_stop_counting() -> None:
    """Ten 429s, then ten answers: the window holds none of them, and a later burst of 5xx is
    named as failures, not as 429s."""
    breaker = CircuitBreaker(CircuitSection(consecutive_failures=1000, failure_ratio=0.5, window=10))
    for outcome in [ErrorClass.RATE_LIMITED] * 4 + [None] * 16 + [ErrorClass.HTTP_5XX] * 5:
        breaker.record(outcome)
    assert breaker.reason == "5 of the last 10 attempts failed (threshold 50%)"


def test_the_window_drops_its_oldest_attempt() -> None:
    """Window 3: a 5xx, then three answers: the 5xx has left the window; one more 5xx is one
    failure of three, under a ratio of one half: still closed."""
    breaker = CircuitBreaker(CircuitSection(consecutive_failures=1000, failure_ratio=0.5, window=3))
    for outcome in (ErrorClass.HTTP_5XX, None, None, None, ErrorClass.HTTP_5XX):
        breaker.record(outcome)
    assert breaker.reason is None
    breaker.record(ErrorClass.HTTP_5XX)  # two of the last three
    assert breaker.reason == "2 of the last 3 attempts failed (threshold 50%)"


def _reference_opening(outcomes: list[ErrorClass | None], policy: CircuitSection) -> int | None:
    """The attempt at which the breaker must open, by the rules written out over whole lists."""
    failures = {ErrorClass.CONNECT, ErrorClass.TIMEOUT, ErrorClass.HTTP_5XX, ErrorClass.RATE_LIMITED}
    run = 0
    for index, outcome in enumerate(outcomes):
        run = run + 1 if outcome in (ErrorClass.CONNECT, ErrorClass.TIMEOUT) else 0
        window = outcomes[max(0, index + 1 - policy.window) : index + 1]
        failed = sum(o in failures for o in window)
        if run >= policy.consecutive_failures or (
            len(window) == policy.window and failed >= policy.failure_ratio * policy.window
        ):
            return index
    return None


@given(
    st.lists(
        st.sampled_from([None, ErrorClass.CONNECT, ErrorClass.HTTP_5XX, ErrorClass.HTTP_4XX]), max_size=60
    ),
    st.integers(1, 8),
    st.integers(1, 12),
    st.floats(0.05, 1.0),
)
@example([None] * 12 + [ErrorClass.HTTP_5XX] * 3, 20, 4, 0.5)
def test_it_opens_where_the_rules_say_and_not_before(
    outcomes: list[ErrorClass | None], consecutive: int, window: int, ratio: float
) -> None:
    """Whatever the order of answers and failures (runs of answers take a shortcut in the
    breaker: it must not change when it opens), it opens at the attempt the rules name."""
    policy = CircuitSection(consecutive_failures=consecutive, failure_ratio=ratio, window=window)
    breaker = CircuitBreaker(policy)
    opened_at = None
    for index, outcome in enumerate(outcomes):
        breaker.record(outcome)
        if breaker.is_open and opened_at is None:
            opened_at = index
    assert opened_at == _reference_opening(outcomes, policy)
