"""One attempt at a request, under the caller's limits, counted.

The hot path (an attempt that gets a usable answer): a concurrency slot, a rate-limit slot, one
send, one JSON parse, three counters. Nothing else runs until an attempt fails: retry decisions
belong to whoever asked for the attempt (``service.calling.row_fetch``, ``service.calling.bulk``).
A redirect the spec follows is a further request within the same attempt, under the same limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from service.calling.answers import answer_of
from service.calling.circuit import CircuitBreaker
from service.calling.clock import Clock
from service.calling.priority import PrioritySlots
from service.calling.rate_limit import RateLimiter
from service.calling.redirects import REDIRECT_STATUSES, Redirects
from service.calling.requests import PreparedRequest
from service.calling.retry_policy import RetryPolicy
from service.calling.transport import RawResponse, Sender
from service.errors import CallError, ErrorClass
from service.stats import StatsRecorder


class Attempts:
    """Makes attempts through ``sender``: at most ``concurrency`` in flight (the oldest batch's
    first, ``service.calling.priority``), paced by ``limiter``.

    Every attempt's latency and outcome go to ``stats`` and ``breaker``; a 429 pauses ``limiter``
    for the API's ``Retry-After`` (or the backoff), so the whole job slows, not only that key.
    """

    def __init__(
        self,
        sender: Sender,
        *,
        concurrency: int,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        stats: StatsRecorder,
        policy: RetryPolicy,
        clock: Clock,
        redact: Callable[[str], str],
        redirects: Redirects,
    ) -> None:
        self._send = sender.send
        self._redirects = redirects
        self._slots = PrioritySlots(concurrency)
        self._limiter = limiter
        self._breaker = breaker
        self._stats = stats
        self._policy = policy
        self._budget = policy.budget
        self._sleep = clock.sleep
        self._redact = redact

    async def attempt(self, request: PreparedRequest) -> tuple[Any, bytes]:
        """Send ``request`` once (following redirects as the spec allows, each hop a request of
        its own): the parsed answer and its body as received, or ``CallError`` (carrying the key
        and the redacted URL)."""
        stats, slots, hops = self._stats, self._slots, 0
        while True:
            if slots.locked():
                waited_from = time.perf_counter()
                await slots.acquire()
                stats.concurrency_wait_s += time.perf_counter() - waited_from
            else:
                await slots.acquire()
            try:
                wait = self._limiter.reserve()
                if wait:
                    await self._sleep(wait)
                stats.requests += 1
                self._budget.attempted()
                started = time.perf_counter()
                response = await self._send(request)
            except CallError as exc:
                self._failed(exc, request, started)
                raise
            finally:
                slots.release()
            if response.location is None or response.status not in REDIRECT_STATUSES:
                break
            request, hops = self._next_hop(request, response, started, hops), hops + 1
        try:
            answer = answer_of(response)
        except CallError as exc:
            self._failed(exc, request, started)
            if exc.error_class is ErrorClass.RATE_LIMITED:
                self._limiter.pause(self._policy.delay(exc, 1))
            raise
        self._record(None, started)
        return answer, response.body

    def _next_hop(
        self, request: PreparedRequest, response: RawResponse, started: float, hops: int
    ) -> PreparedRequest:
        """The request following ``response``'s redirect; ``CallError(redirect)`` (counted) when the
        spec's policy does not follow it."""
        assert response.location is not None
        try:
            following = self._redirects.next_hop(request, response.status, response.location, hops)
        except CallError as exc:
            self._failed(exc, request, started)
            raise
        self._record(None, started)  # the server answered this hop: it is up
        return following

    def _failed(self, error: CallError, request: PreparedRequest, started: float) -> None:
        self._record(error.error_class, started)
        error.key = request.key
        error.url = self._redact(request.url)

    def _record(self, error_class: ErrorClass | None, started: float) -> None:
        self._stats.record_latency(time.perf_counter() - started)
        self._stats.record_outcome(error_class)
        self._breaker.record(error_class)
