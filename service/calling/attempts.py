"""One attempt at a request, under the caller's limits, counted.

The hot path (an attempt that gets a usable answer): a concurrency slot, a rate-limit slot, one
send, one JSON parse (and the answer's judge, when there is one), three counters. Nothing
else runs until an attempt fails: retry decisions belong to whoever asked for the attempt
(``service.calling.row_fetch``, ``service.calling.bulk``). A redirect the spec follows is a further
request within the same attempt, under the same limits.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.calling.adaptive_limit import AdaptiveLimit
from service.calling.answer_conditions import AnswerJudge
from service.calling.answers import answer_of
from service.calling.circuit import CircuitBreaker
from service.calling.clock import Clock
from service.calling.priority import PrioritySlots
from service.calling.quota_follower import QuotaFollower
from service.calling.rate_limit import RateLimiter
from service.calling.redirects import FOLLOWED_UP, FollowUp, Redirects
from service.calling.requests import PreparedRequest
from service.calling.retry_policy import RetryPolicy
from service.calling.sending import RawResponse, Sender
from service.errors import CallError, ErrorClass
from service.stats import StatsRecorder, WaitSpans


class JobWaits(Protocol):
    """Where the time any attempt waited goes (``CallCounts``): for the rate limit, for a slot."""

    rate_waits: WaitSpans
    slot_waits: WaitSpans


@dataclass
class _OwnWaits:
    rate_waits: WaitSpans = field(default_factory=WaitSpans)
    slot_waits: WaitSpans = field(default_factory=WaitSpans)


class Attempts:
    """Makes attempts through ``sender``: at most ``concurrency`` in flight, or what ``adaptive``
    finds below it (the oldest batch's first, ``service.calling.priority``), paced by ``limiter``.

    Every attempt's latency and outcome go to the asking call's ``StatsRecorder`` and to
    ``breaker``; a 429 pauses ``limiter`` for the API's ``Retry-After`` (or the backoff), so the
    whole job slows, not only that key. With ``pacing``, every answer's announced quota paces
    ``limiter`` (``service.calling.quota_follower``), and a 503's ``Retry-After`` holds it. With
    ``reauthorizes`` (an OAuth2 sender), a 401 is asked once more, with a fresh token.
    ``rate_waits`` and ``slot_waits`` (``waits``'s) hold the wall-clock time any attempt waited for
    the rate limit and for a slot (a call's own are in its recorder).
    """

    def __init__(
        self,
        sender: Sender,
        *,
        concurrency: int,
        waits: JobWaits | None = None,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        policy: RetryPolicy,
        clock: Clock,
        redact: Callable[[str], str],
        redirects: Redirects,
        judge: AnswerJudge | None = None,
        pacing: bool = False,
        reauthorizes: bool = False,
        adaptive: AdaptiveLimit | None = None,
    ) -> None:
        self._send, self._adaptive, self._judge = sender.send, adaptive, judge
        self._quota = QuotaFollower(limiter, clock, policy.retry_after_cap_s) if pacing else None
        self._follow_up = functools.partial(FollowUp, redirects, reauthorizes=reauthorizes)
        self._slots = PrioritySlots(adaptive.limit if adaptive is not None else concurrency)
        self._limiter, self._breaker, self._policy, self._budget = limiter, breaker, policy, policy.budget
        self._clock, self._redact = clock, redact
        waits = waits or _OwnWaits()
        self.rate_waits, self.slot_waits = waits.rate_waits, waits.slot_waits

    async def attempt(
        self, request: PreparedRequest, stats: StatsRecorder, number: int = 1
    ) -> tuple[Any, bytes]:
        """Send ``request`` once (following redirects as the spec allows, each hop a request of
        its own), counted in ``stats``: the parsed answer and its body as received, or
        ``CallError`` (carrying the key and the redacted URL). ``number`` is which attempt for
        this request it is (the retry condition may read it). One coroutine, and a plain call
        for every step that need not wait: this runs once per request."""
        slots, quota = self._slots, self._quota
        follow_up: FollowUp | None = None
        while True:
            if not slots.take():
                await _waiting(self._clock, slots.acquire(), self.slot_waits, stats.slot_waits)
            try:
                if quota is not None and not quota.answered:
                    await quota.first_word()
                wait = self._limiter.reserve()
                if wait:
                    await self._start_reserved(wait, stats)
                stats.requests += 1
                self._budget.attempted()
                started = time.perf_counter()
                sent = 0 if quota is None else quota.sending()
                response = await self._send(request)
                if quota is not None and response.headers is not None:
                    quota.heard(response.headers, sent)
            except CallError as exc:
                self._failed(exc, request, started, stats)
                raise
            finally:
                slots.release()
                if quota is not None and not quota.answered:
                    quota.ended()
            if response.status in FOLLOWED_UP:
                follow_up = follow_up or self._follow_up()
                following = self._following(follow_up, request, response, started, stats)
                if following is not None:
                    request = following
                    continue
            return self._answer(request, response, started, stats, number)

    def _answer(
        self,
        request: PreparedRequest,
        response: RawResponse,
        started: float,
        stats: StatsRecorder,
        number: int,
    ) -> tuple[Any, bytes]:
        """The parsed answer of the final ``response`` and its body, counted; or its ``CallError``
        (a 429 slows the whole job down, and a 503 saying when to come back holds it)."""
        try:
            answer = answer_of(response)
            if self._judge is not None:
                self._judge.judge(answer, number, response.status, response.retry_after)
        except CallError as exc:
            self._failed(exc, request, started, stats)
            if exc.error_class is ErrorClass.RATE_LIMITED:
                self._limiter.pause(self._policy.delay(exc, 1))
            elif self._quota is not None and exc.status == 503 and exc.retry_after is not None:
                self._limiter.hold(self._policy.delay(exc, 1))  # unavailable, and said until when
            raise
        self._record(None, started, stats)
        return answer, response.body

    def _following(
        self,
        follow_up: FollowUp,
        request: PreparedRequest,
        response: RawResponse,
        started: float,
        stats: StatsRecorder,
    ) -> PreparedRequest | None:
        """``follow_up``'s next request after ``response`` (which is counted then), or None."""
        try:
            following = follow_up.next_request(request, response.status, response.location)
        except CallError as exc:
            self._failed(exc, request, started, stats)
            raise
        if following is not None:  # the server answered: it is up (a 401 is an answer too)
            self._record(ErrorClass.HTTP_4XX if response.status == 401 else None, started, stats)
        return following

    async def _start_reserved(self, wait: float, stats: StatsRecorder) -> None:
        """Wait ``wait`` seconds for the start the rate limit reserved (and for a hold that began
        meanwhile: the quota ran out). Meanwhile the request counts as reserved quota."""
        quota = self._quota
        if quota is not None:
            quota.reserving()
        try:
            while wait:
                await _waiting(self._clock, self._clock.sleep(wait), self.rate_waits, stats.rate_waits)
                wait = self._limiter.held_for()
        finally:
            if quota is not None:
                quota.reserved()

    def _failed(
        self, error: CallError, request: PreparedRequest, started: float, stats: StatsRecorder
    ) -> None:
        self._record(error.error_class, started, stats)
        error.key = request.key
        error.url = self._redact(request.url)

    def _record(self, error_class: ErrorClass | None, started: float, stats: StatsRecorder) -> None:
        latency = time.perf_counter() - started
        stats.record_attempt(latency, error_class)
        self._breaker.record(error_class)
        adaptive = self._adaptive
        if adaptive is not None and adaptive.observe(latency, error_class, self._slots.held):
            self._slots.resize(adaptive.limit_since(self._clock.now()))


async def _waiting(clock: Clock, wait: Awaitable[None], job: WaitSpans, call: WaitSpans) -> None:
    """Await ``wait``, counted as waiting time of the job and of the call."""
    now = clock.now
    started = now()
    job.begin(started)
    call.begin(started)
    try:
        await wait
    finally:
        ended = now()
        job.end(ended)
        call.end(ended)
