"""Answer-level conditions: a 200 that says it failed ([api].error_when, error_message) or asks to be
asked again ([retry].retry_when). The verdicts are pure; the engine's handling of them runs over
httpx.MockTransport on a fake clock."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import polars as pl
import pytest

from service import Caller, enrich_frame
from service.calling.answer_conditions import AnswerJudge, judge_for
from service.calling.retry_policy import RetryPolicy
from service.calling.retry_rules import is_truthy
from service.errors import CallError, ErrorClass
from service.stats import StatsRecorder
from service.testing import MockClock
from tests.helpers import make_spec, scripted_transport

URL = "http://api.test/v1/lookup/{k}"
CONDITIONS = (
    f'[api]\nurl = "{URL}"\ntimeout_s = 5\n'
    'error_when = "error"\nerror_message = "error.message"\n'
    "[retry]\nattempts = 3\nretry_when = \"status == 'pending'\"\n"
    "backoff = { initial_s = 1, max_s = 8, jitter = 0 }\n"
)


def policy_of(body: str) -> RetryPolicy:
    spec = make_spec(body)
    return RetryPolicy(spec.retry, random=lambda: 0.0, clock=MockClock(), conditions=spec.conditions)


def conditions_of(body: str) -> AnswerJudge:
    """The judge of a spec's answers (one exists: the spec sets a condition)."""
    spec = make_spec(body)
    judge = judge_for(spec.conditions, policy_of(body))
    assert judge is not None
    return judge


def verdict(judge: AnswerJudge, answer: Any, retry_after: str | None = None) -> CallError | None:
    try:
        judge.judge(answer, 1, 200, retry_after)
    except CallError as exc:
        return exc
    return None


def next_delay(error: CallError, body: str = CONDITIONS) -> float | None:
    """What the spec's policy does after a first attempt failing with ``error``."""
    return policy_of(body).next_delay(error, 1, StatsRecorder())


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        (None, False),
        (False, False),
        ("", False),
        ([], False),
        ({}, False),
        (0, True),  # JMESPath, unlike Python, calls zero true
        (0.0, True),
        (True, True),
        ("x", True),
        ([None], True),
        ({"a": None}, True),
    ],
)
def test_truthiness_is_jmespaths(value: Any, truthy: bool) -> None:
    assert is_truthy(value) is truthy


def test_an_answer_matching_error_when_fails_with_its_own_message() -> None:
    conditions = conditions_of(CONDITIONS)
    error = verdict(conditions, {"error": {"code": 17, "message": "quota exceeded"}})
    assert error is not None
    assert (error.error_class, error.message, error.status, error.retry_chosen) == (
        ErrorClass.API_ERROR,
        "quota exceeded",
        200,
        False,
    )
    assert next_delay(error) is None


@pytest.mark.parametrize(
    ("told", "message"),
    [
        ({"code": 17}, '{"code":17}'),  # not text: as JSON
        (17, "17"),
        (None, "answer matches [api].error_when (error)"),  # none: the condition is named
        ("", "answer matches [api].error_when (error)"),
    ],
)
def test_an_error_message_that_is_not_text_is_shown_as_json(told: Any, message: str) -> None:
    conditions = conditions_of(CONDITIONS)
    error = verdict(conditions, {"error": {"message": told}})
    assert error is not None
    assert error.message == message


def test_without_error_message_the_condition_is_named() -> None:
    conditions = conditions_of(f'[api]\nurl = "{URL}"\nerror_when = "failed == `true`"\n')
    error = verdict(conditions, {"failed": True, "message": "ignored"})
    assert error is not None
    assert error.message == "answer matches [api].error_when (failed == `true`)"


@pytest.mark.parametrize(
    "answer",
    [{"name": "x"}, {"error": None}, {"error": {}}, {"error": ""}, {"status": "done"}, None, [1, 2], "text"],
)
def test_an_answer_matching_nothing_passes(answer: Any) -> None:
    assert verdict(conditions_of(CONDITIONS), answer) is None


def test_retry_when_asks_for_a_retry_with_the_answers_retry_after() -> None:
    conditions = conditions_of(CONDITIONS)
    error = verdict(conditions, {"status": "pending"}, retry_after="7")
    assert error is not None
    assert (error.error_class, error.retry_chosen, error.retry_after) == (ErrorClass.API_ERROR, True, "7")
    assert error.message == "answer matches [retry].retry_when (status == 'pending')"
    assert next_delay(error) == 7.0  # a 200 is no retry_on_status: the condition chose, the answer said when


def test_retry_when_is_read_before_error_when() -> None:
    """An answer matching both (pending, with an error object) is asked again, not failed."""
    conditions = conditions_of(CONDITIONS)
    error = verdict(conditions, {"status": "pending", "error": {"message": "not ready"}})
    assert error is not None
    assert error.retry_chosen
    assert error.message == "not ready"  # its own message, kept for when the retries run out


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ('error_when = "length(count) > `2`"\n', "[api].error_when"),
        ('[retry]\nretry_when = "length(count) > `2`"\n', "[retry].retry_when"),
    ],
)
def test_a_condition_that_cannot_be_evaluated_fails_the_row_as_mapping(condition: str, field: str) -> None:
    """JMESPath's type errors come at run time (length() of a number): the row fails, clearly,
    and for good (the next attempt would get the same answer)."""
    judge = conditions_of(f'[api]\nurl = "{URL}"\n{condition}')
    error = verdict(judge, {"count": 5})
    assert error is not None
    assert error.error_class is ErrorClass.MAPPING
    assert error.message.startswith(f"{field} cannot be evaluated on this answer: ")
    assert not error.retry_chosen
    assert next_delay(error) is None


def api_answer(key: str, n: int) -> httpx.Response:
    if key == "pending2" and n <= 2:
        return httpx.Response(200, json={"status": "pending"})
    if key == "stuck":
        return httpx.Response(200, json={"status": "pending"})
    if key == "refused":
        return httpx.Response(200, json={"error": {"code": 17, "message": "quota exceeded"}})
    return httpx.Response(200, json={"name": key.upper(), "status": "done"})


@pytest.mark.asyncio
async def test_the_engine_retries_what_asks_and_fails_what_says_so(clock: MockClock) -> None:
    """pending twice then answered: 3 attempts, ok, after the backoff's 1 s and 2 s; pending for
    ever: 3 attempts then api_error; an error inside a 200: api_error at once, its message kept."""
    transport, asked = scripted_transport(api_answer, clock)
    frame = pl.DataFrame({"k": ["plain", "pending2", "stuck", "refused"]})
    result = await enrich_frame(frame, make_spec(CONDITIONS), transport=transport, clock=clock)
    rows = result.frame.select("k", "name", "_enrich_status", "_enrich_error", "_enrich_attempts").rows()
    assert rows == [
        ("plain", "PLAIN", "ok", None, 1),
        ("pending2", "PENDING2", "ok", None, 3),
        ("stuck", None, "failed", "api_error", 3),
        ("refused", None, "failed", "api_error", 1),
    ]
    messages = dict(zip(frame["k"], result.frame["_enrich_message"], strict=True))
    assert messages["stuck"] == "answer matches [retry].retry_when (status == 'pending')"
    assert messages["refused"] == "quota exceeded"
    start = asked["plain"][0]
    assert {key: [t - start for t in times] for key, times in asked.items()} == {
        "plain": [0.0],
        "pending2": [0.0, 1.0, 3.0],
        "stuck": [0.0, 1.0, 3.0],
        "refused": [0.0],
    }
    assert result.stats.retries == 4
    assert result.stats.outcomes["api_error"] == 6  # attempts: pending2 2, stuck 3, refused 1


@pytest.mark.asyncio
async def test_a_pending_answer_with_retry_after_waits_as_told(clock: MockClock) -> None:
    """A 200 pending with Retry-After: 5 waits 5 s (not the backoff's 1 s) before asking again."""

    def answer(key: str, n: int) -> httpx.Response:
        if n == 1:
            return httpx.Response(200, json={"status": "pending"}, headers={"Retry-After": "5"})
        return httpx.Response(200, json={"name": "ready"})

    transport, asked = scripted_transport(answer, clock)
    result = await enrich_frame(
        pl.DataFrame({"k": ["a"]}), make_spec(CONDITIONS), transport=transport, clock=clock
    )
    assert result.frame["name"].to_list() == ["ready"]
    assert len(asked["a"]) == 2
    assert asked["a"][1] - asked["a"][0] == 5.0


@pytest.mark.asyncio
async def test_errors_inside_answers_do_not_open_the_circuit(clock: MockClock) -> None:
    """The API answers (it is up): 40 refusals in a row, against a breaker opening after 5
    failures, still end as 40 api_error rows, every key asked."""
    spec = make_spec(CONDITIONS + "[circuit]\nconsecutive_failures = 5\n")
    transport, asked = scripted_transport(
        lambda key, n: httpx.Response(200, json={"error": {"message": "no"}}), clock
    )
    keys = [f"k{i}" for i in range(40)]
    async with Caller(spec, transport=transport, clock=clock) as caller:
        result = await enrich_frame(pl.DataFrame({"k": keys}), spec, caller=caller)
    assert result.frame["_enrich_error"].to_list() == ["api_error"] * 40
    assert sorted(asked) == sorted(keys)
    assert all(len(times) == 1 for times in asked.values())


@pytest.mark.asyncio
async def test_without_conditions_an_error_inside_a_200_is_an_answer(clock: MockClock) -> None:
    """The default stays what it was: every 200 that parses is ok."""
    transport, _ = scripted_transport(api_answer, clock)
    result = await enrich_frame(
        pl.DataFrame({"k": ["refused", "stuck"]}), make_spec(), transport=transport, clock=clock
    )
    assert result.frame["_enrich_status"].to_list() == ["ok", "ok"]


@pytest.mark.asyncio
async def test_in_bulk_the_whole_answer_is_read_and_a_failing_chunk_is_split(clock: MockClock) -> None:
    """A bulk API that answers 200 with an error object when a request holds an unknown key: the
    conditions read the whole answer, and the chunk is split (as for any failure) until that key
    stands alone, its neighbours answered."""
    requests: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys = orjson.loads(request.content)["keys"]
        requests.append(keys)
        if "unknown" in keys:
            return httpx.Response(200, json={"error": {"message": "unknown key in request"}})
        return httpx.Response(200, json={"results": [{"key": k, "name": k.upper()} for k in keys]})

    spec = make_spec(
        '[api]\nmethod = "POST"\nurl = "http://api.test/v1/lookup"\nbody = { keys = "{@keys}" }\n'
        'error_when = "error"\nerror_message = "error.message"\n'
        '[bulk]\nsize = 4\nresults = "results"\nmatch = "key"\n[retry]\nattempts = 1\n'
    )
    frame = pl.DataFrame({"k": ["a", "b", "unknown", "c"]})
    out = (await enrich_frame(frame, spec, transport=httpx.MockTransport(handler), clock=clock)).frame
    assert out["name"].to_list() == ["A", "B", None, "C"]
    assert out["_enrich_error"].to_list() == [None, None, "api_error", None]
    assert out["_enrich_message"][2] == "unknown key in request"
    assert requests == [["a", "b", "unknown", "c"], ["a", "b"], ["unknown", "c"], ["unknown"], ["c"]]
