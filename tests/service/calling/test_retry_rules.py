"""One retry vocabulary: the spec's [retry] section compiles to tenacity objects, and a Python
caller's own tenacity conditions and waits run inside the engine's schedule (attempts, Retry-After,
budget kept). Over httpx.MockTransport on a fake clock; the mock API's own counts in
test_against_mock_api.py."""

from __future__ import annotations

from typing import Any

import httpx
import polars as pl
import pytest
import tenacity
from tenacity import (
    retry_always,
    retry_if_exception,
    retry_if_exception_type,
    retry_if_not_result,
    retry_if_result,
    retry_never,
    wait_fixed,
)

from service import CallError, ErrorClass, enrich_frame, spec_retry
from service.calling.retry_policy import RetryPolicy
from service.calling.retry_rules import (
    reads_answers,
    retry_if_answer_matches,
    retry_if_retryable_error,
    wait_backoff,
)
from service.stats import StatsRecorder
from service.testing import MockClock
from tests.helpers import make_spec, scripted_transport

RETRY = "[retry]\nattempts = 4\nbackoff = { initial_s = 1, max_s = 8, jitter = 0 }\n"


def pending(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("status") == "pending"


def test_the_spec_compiles_to_tenacity_objects(clock: MockClock) -> None:
    """[retry] becomes tenacity's condition, wait and stop; retry_when adds a result condition."""
    plain = RetryPolicy.for_spec(make_spec(RETRY), random=lambda: 0.0, clock=clock)
    assert isinstance(plain.retry, retry_if_retryable_error)
    assert isinstance(plain.wait, wait_backoff)
    assert isinstance(plain.retrying, tenacity.AsyncRetrying)
    assert plain.retrying.stop.max_attempt_number == 4  # type: ignore[attr-defined]
    assert not plain.reads_answers  # no RetryCallState for a successful attempt
    spec = make_spec(RETRY + "retry_when = \"status == 'pending'\"\n")
    with_answers = RetryPolicy.for_spec(spec, random=lambda: 0.0, clock=clock)
    assert isinstance(with_answers.retry, tenacity.retry_any)
    parts = with_answers.retry.retries
    assert [type(part) for part in parts] == [retry_if_retryable_error, retry_if_answer_matches]
    assert with_answers.reads_answers
    assert with_answers.retries_answer({"status": "pending"}, 1)
    assert not with_answers.retries_answer({"status": "done"}, 1)


@pytest.mark.parametrize(
    ("retry", "reads"),
    [
        (retry_if_exception_type(CallError), False),
        (retry_if_exception(lambda error: True), False),
        (retry_never, False),
        (retry_if_result(pending), True),
        (retry_if_not_result(pending), True),
        (retry_always, True),
        (retry_if_exception_type() | retry_if_result(pending), True),
        (retry_if_exception_type() & retry_if_exception(lambda error: True), False),
        (retry_if_exception_type() & retry_if_result(pending), True),
        (lambda state: False, True),  # a condition Enrich cannot read: assumed to want answers
    ],
)
def test_only_conditions_that_read_answers_see_successful_attempts(retry: Any, reads: bool) -> None:
    assert reads_answers(retry) is reads


def pending_twice(key: str, n: int) -> httpx.Response:
    if n <= 2:
        return httpx.Response(200, json={"status": "pending"})
    return httpx.Response(200, json={"name": key.upper(), "status": "done"})


@pytest.mark.asyncio
async def test_a_result_condition_from_python_changes_what_is_retried(clock: MockClock) -> None:
    """The same API, the same spec: without a condition the pending answer is taken as it is (one
    request, no name); with retry_if_result it is asked again until answered, on the spec's
    backoff (1 s, 2 s)."""
    spec = make_spec(RETRY)
    transport, asked = scripted_transport(pending_twice, clock)
    taken = await enrich_frame(pl.DataFrame({"k": ["a"]}), spec, transport=transport, clock=clock)
    assert taken.frame.select("name", "_enrich_status", "_enrich_attempts").row(0) == (None, "ok", 1)
    transport, asked = scripted_transport(pending_twice, clock)
    retry = spec_retry(spec) | retry_if_result(pending)
    result = await enrich_frame(
        pl.DataFrame({"k": ["a"]}), spec, transport=transport, clock=clock, retry=retry
    )
    assert result.frame.select("name", "_enrich_status", "_enrich_attempts").row(0) == ("A", "ok", 3)
    assert [t - asked["a"][0] for t in asked["a"]] == [0.0, 1.0, 3.0]


@pytest.mark.asyncio
async def test_a_result_condition_still_true_after_the_last_attempt_fails_the_row(clock: MockClock) -> None:
    transport, asked = scripted_transport(
        lambda key, n: httpx.Response(200, json={"status": "pending"}), clock
    )
    spec = make_spec(RETRY)
    frame = pl.DataFrame({"k": ["a"]})
    result = await enrich_frame(frame, spec, transport=transport, clock=clock, retry=retry_if_result(pending))
    row = result.frame.select("_enrich_error", "_enrich_message", "_enrich_attempts").row(0)
    assert row == ("api_error", "answer matches the retry condition given in Python", 4)
    assert len(asked["a"]) == 4


def by_status(key: str, n: int) -> httpx.Response:
    status = int(key)
    return httpx.Response(status if n == 1 else 200, json={"name": key})


@pytest.mark.asyncio
async def test_an_error_condition_from_python_replaces_the_spec_s(clock: MockClock) -> None:
    """Only 500s retried (the spec would retry 503 and not 404), after a fixed 0.25 s; the
    exception a condition sees is the attempt's CallError."""
    only_500 = retry_if_exception(lambda error: isinstance(error, CallError) and error.status == 500)
    transport, asked = scripted_transport(by_status, clock)
    frame = pl.DataFrame({"k": ["500", "503", "404"]})
    result = await enrich_frame(
        frame, make_spec(RETRY), transport=transport, clock=clock, retry=only_500, wait=wait_fixed(0.25)
    )
    assert result.frame["_enrich_attempts"].to_list() == [2, 1, 1]
    assert result.frame["_enrich_status"].to_list() == ["ok", "failed", "failed"]
    assert asked["500"][1] - asked["500"][0] == 0.25


@pytest.mark.asyncio
async def test_retry_after_and_the_attempts_hold_whatever_the_python_wait(clock: MockClock) -> None:
    """A 503 with Retry-After: 3 waits 3 s, not the given wait's 0.25 s; retry_always stops at the
    spec's 4 attempts."""

    def answer(key: str, n: int) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "3"})

    transport, asked = scripted_transport(answer, clock)
    result = await enrich_frame(
        pl.DataFrame({"k": ["a"]}),
        make_spec(RETRY),
        transport=transport,
        clock=clock,
        retry=retry_always,
        wait=wait_fixed(0.25),
    )
    assert result.frame["_enrich_attempts"].to_list() == [4]
    assert [t - asked["a"][0] for t in asked["a"]] == [0.0, 3.0, 6.0, 9.0]


class CountingErrorCondition(retry_if_exception):
    """A condition on errors only, counting how often it is asked."""

    def __init__(self) -> None:
        super().__init__(lambda error: True)
        self.asked = 0

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        self.asked += 1
        return bool(super().__call__(retry_state))


class CountingResultCondition(retry_if_result):
    def __init__(self) -> None:
        super().__init__(pending)
        self.asked = 0

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        self.asked += 1
        return bool(super().__call__(retry_state))


@pytest.mark.asyncio
async def test_a_condition_on_errors_is_asked_only_after_a_failed_attempt(clock: MockClock) -> None:
    """100 answered keys and one 503 then answered: an error condition is asked once (no
    RetryCallState for the 100 successes); a result condition is asked for every answer."""

    def answer(key: str, n: int) -> httpx.Response:
        if key == "busy" and n == 1:
            return httpx.Response(503)
        return httpx.Response(200, json={"name": key})

    keys = [f"k{i}" for i in range(100)] + ["busy"]
    on_errors = CountingErrorCondition()
    transport, _ = scripted_transport(answer, clock)
    await enrich_frame(
        pl.DataFrame({"k": keys}), make_spec(RETRY), transport=transport, clock=clock, retry=on_errors
    )
    assert on_errors.asked == 1
    on_answers = CountingResultCondition()
    transport, _ = scripted_transport(answer, clock)
    await enrich_frame(
        pl.DataFrame({"k": keys}), make_spec(RETRY), transport=transport, clock=clock, retry=on_answers
    )
    assert on_answers.asked == 101  # the 100 answers, and the 503 (not retried: no result)


def test_the_budget_still_bounds_retries_a_python_condition_asks_for(clock: MockClock) -> None:
    """retry_always with no budget ratio: the 101st retry in 10 s is refused, as the spec's would be."""
    spec = make_spec(
        "[retry]\nattempts = 6\nbudget = 0\nbackoff = { initial_s = 1, max_s = 1, jitter = 0 }\n"
    )
    policy = RetryPolicy.for_spec(spec, random=lambda: 0.0, clock=clock, retry=retry_always)
    stats = StatsRecorder()
    delays = [
        policy.next_delay(CallError(ErrorClass.HTTP_4XX, "x", status=404), 1, stats) for _ in range(101)
    ]
    assert delays == [1.0] * 100 + [None]
    assert stats.retries_refused == 1
