"""The caller: one job's connection to the API, with its cache, limits, retries and breaker.

    Caller.outcomes(keys)            keys another frame has in flight, the job's answer log and the
                                     cache (KnownAnswers), then:
      RowFetch / BulkFetch           workers, retries on a schedule, bulk chunks split on failure
        Attempts.attempt(request)    a concurrency slot, a rate-limit slot, one send, counted
          Sender.send(request)       aiohttp or httpx, their errors translated
          answer_of(response)        the JSON, or a CallError classifying the answer

Each layer is a module of its own under ``service.calling``; this one only wires them together.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Sequence

import anyio
import httpx
import tenacity
from tenacity.wait import wait_base

from service.caches.answer_log import AnswerLog
from service.caches.store import AnswerStore
from service.calling.adaptive_limit import AdaptiveLimit
from service.calling.answer_conditions import judge_for
from service.calling.attempts import Attempts
from service.calling.bulk import BulkFetch
from service.calling.call_counts import CallCounts
from service.calling.circuit import CircuitBreaker
from service.calling.clock import Clock, SystemClock
from service.calling.fetch_tools import FetchTools
from service.calling.in_flight import InFlightKeys
from service.calling.known_answers import KnownAnswers
from service.calling.oauth import authorized
from service.calling.outcome import AnswerOutcomes, Outcome
from service.calling.rate_limit import RateLimiter
from service.calling.redirects import Redirects
from service.calling.requests import Key, RequestBuilder
from service.calling.retry_policy import RetryPolicy
from service.calling.row_fetch import RowFetch
from service.calling.sending import Sender
from service.calling.transport import TransportChoice, make_sender
from service.errors import ErrorClass
from service.redact import Redactor
from service.spec import Spec
from service.stats import EnrichStats, StatsRecorder
from service.tables.mapping import AnswerMapper

# Pace 2% under the rate: a busy event loop delays some sends by milliseconds and bunches them,
# and the server, which is what counts, saw 211 in a 1 s window for 200/s + burst 10.
RATE_HEADROOM = 0.02


class Caller:
    """Calls the API for keys, under the spec's limits; an async context manager. One ``Caller``
    may serve several ``enrich_frame`` calls at once: they share its connection pool, concurrency
    cap, rate limit, breaker and statistics, and a key already in flight for one of them is
    awaited by the others, not requested again."""

    def __init__(
        self,
        spec: Spec,
        *,
        transport: TransportChoice = None,
        auth: httpx.Auth | None = None,
        sender: Sender | None = None,
        clock: Clock | None = None,
        random: Callable[[], float] | None = None,
        cache: AnswerStore | None = None,
        answer_log: AnswerLog | None = None,
        retry: tenacity.retry_base | None = None,
        wait: wait_base | None = None,
    ) -> None:
        self.spec = spec
        self._clock = clock = clock or SystemClock()
        self._redact = Redactor(spec.secrets)
        sender = sender if sender is not None else make_sender(spec, transport, auth)
        self._sender = authorized(sender, spec, clock, self._redact, transport)
        self.limiter = RateLimiter.for_limits(spec.limits, clock, headroom=RATE_HEADROOM)
        self.breaker = CircuitBreaker(spec.circuit)  # a service may close it again (a cool-down)
        self.counts = CallCounts(clock, self.breaker, AdaptiveLimit.for_limits(spec.limits, clock.now()))
        self._known = KnownAnswers(answer_log, cache)
        self._policy = RetryPolicy.for_spec(
            spec, random=random or _random.random, clock=clock, retry=retry, wait=wait
        )
        self._builder = RequestBuilder(spec.request, spec.key)
        self._keys = InFlightKeys()
        self._tools = self._fetch_tools(spec.limits.concurrency)
        self._started = 0.0

    def _fetch_tools(self, concurrency: int) -> FetchTools:
        """The attempt gate, and what every fetch works with: all sharing this caller's pieces."""
        attempts = Attempts(
            self._sender,
            concurrency=concurrency,
            waits=self.counts,
            limiter=self.limiter,
            breaker=self.breaker,
            policy=self._policy,
            clock=self._clock,
            redact=self._redact,
            redirects=Redirects.for_request(self.spec.request, self._redact),
            judge=judge_for(self.spec.conditions, self._policy),
            pacing=self.spec.limits.pace_from_headers,
            reauthorizes=self.spec.oauth is not None,
            adaptive=self.counts.adaptive,
        )
        return FetchTools(
            attempt=attempts.attempt,
            policy=self._policy,
            breaker=self.breaker,
            clock=self._clock,
            answers=_answer_outcomes(self.spec, self._redact, keep_bodies=self._known.keeps_bodies),
            settle=self._settle,
            redact=self._redact,
        )

    async def __aenter__(self) -> Caller:
        await self._sender.open()
        self._started = self._clock.now()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with anyio.CancelScope(shield=True):  # cancelled (a deadline, a signal), it still closes
            await self._sender.aclose()

    def redact(self, text: str) -> str:
        """``text`` with the spec's secrets replaced."""
        return self._redact(text)

    def statistics(self) -> EnrichStats:
        """A frozen snapshot of everything this caller has done so far, calls still running
        included (their rows in proportion to their keys answered)."""
        return self.counts.statistics(started_s=self._started)

    async def outcomes(self, keys: Sequence[Key], stats: StatsRecorder | None = None) -> dict[Key, Outcome]:
        """Every key's outcome: from the job's answer log, from the cache, from a request another
        frame has in flight, or from the API (one key per request, or in bulk, as the spec says).

        If anything raises on the way, no key is settled by this call: the keys it had claimed and
        not answered are let go (a frame waiting for one raises too), so asking again asks again.
        What it did is counted in ``stats`` (from ``counts.counting()``), else in a call of its own.
        """
        if stats is None:
            with self.counts.counting() as call:
                return await self.outcomes(keys, call)
        sendable = [key for key in keys if None not in key] if self.spec.bulk else keys
        mine, waiting = self._keys.claim(sendable)
        try:
            results = await self._known.lookup(mine, stats)
            for key, outcome in results.items():
                self._keys.settle(key, outcome, results)
            stats.keys_settled += len(results)
            unknown = [key for key in mine if key not in results] if results else mine
            fetched = await (
                self._fetch_bulk(unknown, stats) if self.spec.bulk else self._fetch(unknown, stats)
            )
            await self._known.store(fetched, stats)
        except BaseException:
            self._keys.abandon(mine)
            raise
        self._keys.release(mine)
        results.update(fetched)
        if len(sendable) < len(keys):  # a null cannot go in a request: those keys fail unsent
            self._fail_unsendable(keys, results)
        collected = await self._keys.collect(waiting, results)
        stats.keys_settled += len(waiting) + len(keys) - len(sendable)
        return collected

    def _fail_unsendable(self, keys: Sequence[Key], results: dict[Key, Outcome]) -> None:
        invalid = Outcome(None, 0, ErrorClass.INVALID_KEY, "key has a null value")
        for key in keys:
            if None in key:
                results[key] = invalid
                self._known.remember(key, invalid)  # logged: the job's distinct keys are its log's

    def _settle(self, key: Key, outcome: Outcome, results: dict[Key, Outcome]) -> None:
        """``key``'s final outcome: to every frame waiting for it, and into the job's answer log."""
        self._keys.settle(key, outcome, results)
        self._known.remember(key, outcome)

    async def _fetch(self, keys: list[Key], stats: StatsRecorder) -> dict[Key, Outcome]:
        # This many keys awaiting a retry (enough for every worker) means the API fails: no fresh key.
        most_waiting = max(256, 4 * self.spec.limits.concurrency)
        fetch = RowFetch(
            keys, self._tools, stats, build=self._builder.build, max_waiting_retries=most_waiting
        )
        await fetch.run(min(self.spec.limits.concurrency, len(keys)))
        self._settle_unanswered(keys, fetch.results)
        return fetch.results

    async def _fetch_bulk(self, keys: list[Key], stats: StatsRecorder) -> dict[Key, Outcome]:
        bulk = self.spec.bulk
        assert bulk is not None
        fetch = BulkFetch(keys, bulk, self._tools, stats, build=self._builder.build_bulk)
        chunks = (len(keys) + bulk.size - 1) // bulk.size
        await fetch.run(min(self.spec.limits.concurrency, chunks))
        self._settle_unanswered(keys, fetch.results)
        return fetch.results

    def _settle_unanswered(self, mine: list[Key], results: dict[Key, Outcome]) -> None:
        reason = self.breaker.reason or "the job stopped before this key was requested"
        self._keys.settle_unanswered(mine, results, reason)


def _answer_outcomes(spec: Spec, redact: Callable[[str], str], *, keep_bodies: bool) -> AnswerOutcomes:
    """Keys' outcomes of their answers, mapped to ``spec``'s columns as they arrive (bulk results'
    bodies written for the cache and the answer log when ``keep_bodies``)."""
    return AnswerOutcomes(AnswerMapper(spec.columns, redact), keep_bodies=keep_bodies)
