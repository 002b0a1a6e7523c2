"""One attempt: under the limits, counted, and a failed one names its key and redacted URL."""

from __future__ import annotations

import asyncio

import pytest

from service import CallError, ErrorClass
from service.calling.attempts import Attempts
from service.calling.circuit import CircuitBreaker
from service.calling.rate_limit import RateLimiter
from service.calling.redirects import Redirects, origin_of
from service.calling.requests import PreparedRequest, RequestBuilder
from service.calling.retry_policy import RetryPolicy
from service.calling.sending import RawResponse
from service.redact import Redactor
from service.stats import StatsRecorder
from service.testing import MockClock
from tests.helpers import make_spec


class ScriptedSender:
    """Answers each request with the next of ``answers`` (a RawResponse, or a CallError to raise)."""

    def __init__(self, *answers: RawResponse | CallError) -> None:
        self.answers = list(answers)
        self.sent: list[PreparedRequest] = []

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def send(self, request: PreparedRequest) -> RawResponse:
        self.sent.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, CallError):
            raise answer
        return answer


class HeldSender:
    """Answers 200 to each request once the test releases it (``held.get()``, then ``set()``)."""

    def __init__(self) -> None:
        self.held: asyncio.Queue[asyncio.Event] = asyncio.Queue()

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def send(self, request: PreparedRequest) -> RawResponse:
        released = asyncio.Event()
        self.held.put_nowait(released)
        await released.wait()
        return RawResponse(200, b"{}", None)


def attempts_for(
    sender: ScriptedSender | HeldSender, clock: MockClock, concurrency: int = 2
) -> tuple[Attempts, StatsRecorder, RateLimiter]:
    spec = make_spec('[api]\nurl = "http://api.test/v1/{k}?token=${TOKEN}"\n', TOKEN="s3cret")
    stats = StatsRecorder()
    limiter = RateLimiter(None, 1, clock)
    policy = RetryPolicy(spec.retry, random=lambda: 0.0, clock=clock)
    attempts = Attempts(
        sender,
        concurrency=concurrency,
        limiter=limiter,
        breaker=CircuitBreaker(spec.circuit),
        policy=policy,
        clock=clock,
        redact=Redactor(spec.secrets),
        redirects=Redirects("none", origin_of(spec.request.origin), Redactor(spec.secrets)),
    )
    return attempts, stats, limiter


def request_for(key: str) -> PreparedRequest:
    spec = make_spec('[api]\nurl = "http://api.test/v1/{k}?token=${TOKEN}"\n', TOKEN="s3cret")
    return RequestBuilder(spec.request, spec.key).build((key,))


@pytest.mark.asyncio
async def test_a_failed_attempt_names_its_key_and_its_url_without_the_secret(clock: MockClock) -> None:
    """The CallError of a 503 carries the key and the URL, the token in it redacted; it is counted."""
    attempts, stats, _ = attempts_for(ScriptedSender(RawResponse(503, b"busy", None)), clock)
    request = request_for("k 1")
    assert "s3cret" in request.url
    with pytest.raises(CallError) as raised:
        await attempts.attempt(request, stats)
    assert raised.value.key == ("k 1",)
    assert raised.value.url == "http://api.test/v1/k%201?token=***"
    assert (stats.requests, stats.outcomes) == (1, {"http_5xx": 1})


@pytest.mark.asyncio
async def test_a_sender_failure_is_counted_and_located_too(clock: MockClock) -> None:
    """A timeout raised by the sender is counted as an outcome and carries key and URL."""
    timeout = CallError(ErrorClass.TIMEOUT, "no answer within 5s")
    attempts, stats, _ = attempts_for(ScriptedSender(timeout), clock)
    with pytest.raises(CallError) as raised:
        await attempts.attempt(request_for("a"), stats)
    assert raised.value is timeout
    assert raised.value.key == ("a",)
    assert stats.outcomes == {"timeout": 1}


@pytest.mark.asyncio
async def test_a_429_pauses_every_request_for_its_retry_after(clock: MockClock) -> None:
    """After a 429 with Retry-After: 3, the next attempt waits 3 s on the limiter before sending."""
    sender = ScriptedSender(RawResponse(429, b"", "3"), RawResponse(200, b'{"name": "x"}', None))
    attempts, stats, limiter = attempts_for(sender, clock)
    with pytest.raises(CallError):
        await attempts.attempt(request_for("a"), stats)
    assert limiter.statistics().pauses == 1
    assert await attempts.attempt(request_for("b"), stats) == ({"name": "x"}, b'{"name": "x"}')
    assert clock.sleeps == [3.0]
    assert stats.outcomes == {"rate_limited": 1, "ok": 1}


@pytest.mark.asyncio
async def test_waits_for_a_slot_count_once_however_many_requests_wait(clock: MockClock) -> None:
    """With one slot held for 5 s while two more requests wait for it, the job and the call waited
    5 s of wall-clock time for a slot, not 10 (the sum over requests)."""
    sender = HeldSender()
    attempts, stats, _ = attempts_for(sender, clock, concurrency=1)
    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        for key in "abc":
            group.create_task(attempts.attempt(request_for(key), stats))
        first = await sender.held.get()  # "a" holds the slot; "b" and "c" wait for it from t=1000
        clock.t += 5
        first.set()
        (await sender.held.get()).set()  # "b" got the slot at t=1005
        (await sender.held.get()).set()  # and "c" after it, at the same time
    assert attempts.slot_waits.seconds(clock.now()) == 5.0
    assert stats.slot_waits.seconds(clock.now()) == 5.0
    assert stats.requests == 3
