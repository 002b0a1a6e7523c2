"""The caller: one job's connection to the API, with every limit, retry and the circuit breaker.

Hot path (a first attempt that succeeds): a concurrency slot, a rate-limit slot, one send, one
``orjson.loads``. Retry bookkeeping only starts once an attempt has failed: a key waiting out its
backoff waits in a schedule (``service.retry_schedule``) that the same workers serve, so it never
holds a worker back from the next keys and costs no task or timer of its own.
"""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import orjson

from service.circuit import CircuitBreaker
from service.clock import Clock, SystemClock
from service.errors import CallError, ErrorClass
from service.outcome import Outcome
from service.rate_limit import RateLimiter
from service.redact import Redactor
from service.request_builder import (
    Key,
    PreparedRequest,
    RequestBuilder,
    request_headers,
    value_text,
)
from service.response_cache import AnswerStore
from service.retry_policy import is_retryable, retry_delay
from service.retry_schedule import RetrySchedule
from service.spec import Spec
from service.stats import EnrichStats, StatsRecorder
from service.transport import AiohttpSender, HttpxSender, RawResponse, Sender

TransportChoice = httpx.AsyncBaseTransport | str | None

RATE_HEADROOM = 0.02


def make_sender(spec: Spec, transport: TransportChoice = None, auth: httpx.Auth | None = None) -> Sender:
    """The sender for ``transport``: None or "aiohttp" (default), "httpx", or an httpx transport."""
    builder_headers = request_headers(spec.request)
    concurrency = spec.limits.concurrency
    timeout = spec.request.timeout_s
    if (transport is None and auth is None) or transport == "aiohttp":
        if auth is not None:
            raise ValueError("auth needs the httpx sender: pass transport='httpx'")
        return AiohttpSender(builder_headers, concurrency, timeout)
    if transport is None or transport == "httpx":
        return HttpxSender(builder_headers, concurrency, timeout, auth=auth)
    if isinstance(transport, httpx.AsyncBaseTransport):
        return HttpxSender(builder_headers, concurrency, timeout, transport=transport, auth=auth)
    raise ValueError(f"unknown transport {transport!r}: use 'aiohttp', 'httpx' or an httpx transport")


class Caller:
    """Calls the API for keys, under the spec's limits; an async context manager.

    One ``Caller`` may serve several ``enrich_frame`` calls at once: they share its connection
    pool, concurrency cap, rate limit, breaker and statistics, and a key already in flight for one
    of them is awaited by the others, not requested again.
    """

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
    ) -> None:
        self.spec = spec
        self.cache = cache
        self._builder = RequestBuilder(spec.request, spec.key)
        self._sender = sender if sender is not None else make_sender(spec, transport, auth)
        self._clock = clock or SystemClock()
        self._random = random or _random.random
        self._limit = spec.limits.concurrency
        self._slots = asyncio.Semaphore(self._limit)
        # Pace 2% under the rate: a busy event loop delays some sends by milliseconds and bunches
        # them, and the server, which is what counts, saw 211 in a 1 s window for 200/s + burst 10.
        self.limiter = RateLimiter(
            spec.limits.rate, spec.limits.effective_burst, self._clock, headroom=RATE_HEADROOM
        )
        self.breaker = CircuitBreaker(spec.circuit)
        self.stats = StatsRecorder()
        self._redact = Redactor(spec.secrets)
        self._in_flight: dict[Key, asyncio.Future[Outcome]] = {}
        self._max_waiting_retries = max(256, 4 * self._limit)
        self._started = 0.0

    async def __aenter__(self) -> Caller:
        await self._sender.open()
        self._started = self._clock.now()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._sender.aclose()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the caller opened."""
        return self._clock.now() - self._started

    def redact(self, text: str) -> str:
        """``text`` with the spec's secrets replaced."""
        return self._redact(text)

    def statistics(self) -> EnrichStats:
        """A frozen snapshot of everything this caller has done so far."""
        return self.stats.snapshot(
            throttled_s=self.limiter.statistics().throttled_s,
            elapsed_s=self.elapsed_s,
            circuit_open=self.breaker.reason,
        )

    async def fetch(self, keys: Sequence[Key]) -> dict[Key, Outcome]:
        """Call the API once per distinct key (one key per request); every key gets an outcome."""
        mine, waiting = self._claim(keys)
        run = _RowFetch(self, mine)
        try:
            async with anyio.create_task_group() as group:
                for _ in range(min(self._limit, len(mine))):
                    group.start_soon(run.worker)
        finally:
            run.settle_waiting_retries()
            self._release_unsettled(mine, run.results)
        return await self._collect(waiting, run.results)

    async def fetch_bulk(self, keys: Sequence[Key]) -> dict[Key, Outcome]:
        """Call the API with up to ``bulk.size`` keys per request; every key gets an outcome."""
        bulk = self.spec.bulk
        if bulk is None:
            raise ValueError("the spec has no [bulk] section")
        results: dict[Key, Outcome] = {}
        sendable = []
        for key in keys:
            if any(value is None for value in key):
                results[key] = Outcome(None, 0, ErrorClass.INVALID_KEY, "key has a null value")
            else:
                sendable.append(key)
        mine, waiting = self._claim(sendable)
        chunks = iter([mine[i : i + bulk.size] for i in range(0, len(mine), bulk.size)])
        try:
            async with anyio.create_task_group() as group:

                async def worker() -> None:
                    for chunk in chunks:
                        if self.breaker.is_open:
                            return
                        for key, outcome in (await self._bulk_chunk(chunk)).items():
                            self._settle(key, outcome, results)

                for _ in range(min(self._limit, (len(mine) + bulk.size - 1) // bulk.size)):
                    group.start_soon(worker)
        finally:
            self._release_unsettled(mine, results)
        return await self._collect(waiting, results)

    def _claim(self, keys: Sequence[Key]) -> tuple[list[Key], list[tuple[Key, asyncio.Future[Outcome]]]]:
        loop = asyncio.get_running_loop()
        mine: list[Key] = []
        waiting: list[tuple[Key, asyncio.Future[Outcome]]] = []
        in_flight = self._in_flight
        for key in keys:
            future = in_flight.get(key)
            if future is None:
                in_flight[key] = loop.create_future()
                mine.append(key)
            else:
                waiting.append((key, future))
        return mine, waiting

    def _settle(self, key: Key, outcome: Outcome, results: dict[Key, Outcome]) -> None:
        results[key] = outcome
        self.stats.keys_done += 1
        # With a cache, the settled future stays until release(): a frame starting meanwhile
        # (whose cache lookup came too early to see this answer) gets it instead of asking again.
        future = self._in_flight.get(key) if self.cache is not None else self._in_flight.pop(key, None)
        if future is not None and not future.done():
            future.set_result(outcome)

    def release(self, keys: Iterable[Key]) -> None:
        """Forget settled keys once their answers are in the cache."""
        in_flight = self._in_flight
        for key in keys:
            future = in_flight.get(key)
            if future is not None and future.done():
                del in_flight[key]

    def _release_unsettled(self, mine: list[Key], results: dict[Key, Outcome]) -> None:
        """Keys never finished (the breaker opened, or the job was cancelled) end as circuit_open."""
        reason = self.breaker.reason or "the job stopped before this key was requested"
        for key in mine:
            if key not in results:
                self._settle(key, Outcome(None, 0, ErrorClass.CIRCUIT_OPEN, reason), results)

    async def _collect(
        self, waiting: list[tuple[Key, asyncio.Future[Outcome]]], results: dict[Key, Outcome]
    ) -> dict[Key, Outcome]:
        for key, future in waiting:
            results[key] = await future
        return results

    async def _retry(self, request: PreparedRequest, first_error: CallError) -> Outcome:
        """Attempts 2..N in a row for one request whose first attempt failed retryably (bulk chunks:
        few, and each worth the wait; keys of a per-row fetch go through ``_RowFetch``'s schedule)."""
        error, attempts = first_error, 1
        while True:
            next_step = self._after_failure(error, attempts)
            if isinstance(next_step, Outcome):
                return next_step
            await self._clock.sleep(next_step)
            if self.breaker.is_open:
                return Outcome(None, attempts, ErrorClass.CIRCUIT_OPEN, self.breaker.reason)
            attempts += 1
            self.stats.retries += 1
            try:
                return Outcome(await self._attempt(request), attempts)
            except CallError as exc:
                error = _without_traceback(exc)

    def _after_failure(self, error: CallError, attempts: int) -> Outcome | float:
        """After ``attempts`` attempts, the last failing with ``error``: the final outcome, or the
        seconds to wait before the next attempt."""
        policy = self.spec.retry
        if attempts >= policy.attempts or not is_retryable(error, policy):
            return self._failed(error, attempts)
        return self._delay(error, attempts)

    def _delay(self, error: CallError, attempt: int) -> float:
        return retry_delay(error, attempt, self.spec.retry, random=self._random, wall_now=self._clock.wall())

    def _failed(self, error: CallError, attempts: int) -> Outcome:
        return Outcome(None, attempts, error.error_class, self._redact(error.message), error.status)

    async def _attempt(self, request: PreparedRequest) -> Any:
        """One request under the concurrency cap and the rate limit; the parsed answer or CallError."""
        slots = self._slots
        if slots.locked():
            waited_from = time.perf_counter()
            await slots.acquire()
            self.stats.concurrency_wait_s += time.perf_counter() - waited_from
        else:
            await slots.acquire()
        try:
            wait = self.limiter.reserve()
            if wait:
                await self._clock.sleep(wait)
            self.stats.requests += 1
            started = time.perf_counter()
            try:
                response = await self._sender.send(request)
            except CallError as exc:
                self._record(exc.error_class, started)
                raise
        finally:
            slots.release()
        return self._interpret(response, started)

    def _record(self, error_class: ErrorClass | None, started: float) -> None:
        self.stats.record_latency(time.perf_counter() - started)
        self.stats.record_outcome(error_class)
        self.breaker.record(error_class)

    def _interpret(self, response: RawResponse, started: float) -> Any:
        status = response.status
        if 200 <= status < 300:
            try:
                answer = orjson.loads(response.body) if response.body.strip() else None
            except orjson.JSONDecodeError as exc:
                self._record(ErrorClass.INVALID_JSON, started)
                raise CallError(
                    ErrorClass.INVALID_JSON, f"answer is not JSON ({exc})", status=status
                ) from None
            self._record(None, started)
            return answer
        if status == 429:
            error_class = ErrorClass.RATE_LIMITED
        elif status >= 500:
            error_class = ErrorClass.HTTP_5XX
        else:
            error_class = ErrorClass.HTTP_4XX
        self._record(error_class, started)
        error = CallError(
            error_class,
            _http_message(status, response.body),
            status=status,
            retry_after=response.retry_after,
        )
        if status == 429:
            self.limiter.pause(self._delay(error, 1))
        try:
            raise error
        finally:
            # This frame, in the error's traceback, would otherwise hold the error: a reference
            # cycle per failed attempt, left for the cyclic garbage collector.
            del error

    async def _bulk_chunk(self, keys: list[Key]) -> dict[Key, Outcome]:
        """One bulk request for ``keys``, retried; after a final failure, each half on its own."""
        request = self._builder.build_bulk(keys)
        try:
            answer = await self._attempt(request)
            attempts = 1
        except CallError as exc:
            outcome = await self._retry(request, _without_traceback(exc))
            if outcome.ok:
                answer, attempts = outcome.answer, outcome.attempts
            elif len(keys) == 1 or outcome.error is ErrorClass.CIRCUIT_OPEN or self.breaker.is_open:
                return dict.fromkeys(keys, outcome)
            else:
                middle = len(keys) // 2
                first = await self._bulk_chunk(keys[:middle])
                return first | await self._bulk_chunk(keys[middle:])
        return self._match_bulk(keys, answer, attempts)

    def _match_bulk(self, keys: list[Key], answer: Any, attempts: int) -> dict[Key, Outcome]:
        bulk = self.spec.bulk
        assert bulk is not None
        items = bulk.results.search(answer)
        if not isinstance(items, list):
            failure = Outcome(
                None,
                attempts,
                ErrorClass.MAPPING,
                "bulk answer has no list of results where [bulk].results points",
            )
            return dict.fromkeys(keys, failure)
        # Hot with big chunks: text forms are computed once per value, keys of one column unwrapped.
        match = bulk.match
        by_text: dict[Any, Any] = {}
        if len(match) == 1:
            path = match[0]
            for item in items:
                value = path.search(item)
                if value is not None:
                    by_text.setdefault(_text(value), item)
            found = [by_text.get(_text(key[0]), _MISSING) for key in keys]
        else:
            for item in items:
                matched = tuple(m.search(item) for m in match)
                if all(v is not None for v in matched):
                    by_text.setdefault(tuple(_text(v) for v in matched), item)
            found = [by_text.get(tuple(_text(v) for v in key), _MISSING) for key in keys]
        missing = Outcome(None, attempts, ErrorClass.MAPPING, "key missing from the bulk answer")
        return {
            key: missing if item is _MISSING else Outcome(item, attempts)
            for key, item in zip(keys, found, strict=True)
        }


@dataclass(frozen=True, slots=True)
class _WaitingRetry:
    key: Key
    request: PreparedRequest
    attempts: int


class _RowFetch:
    """One ``fetch``: workers that take a due retry first, else a fresh key, else wait.

    A failed key goes into a schedule of retries instead of a task of its own; the workers (as
    many as the concurrency allows) drain it before taking fresh keys, and take no fresh key while
    ``_max_waiting_retries`` keys are already waiting (the API is failing: no need to pile on).
    """

    def __init__(self, caller: Caller, keys: list[Key]) -> None:
        self.caller = caller
        self.fresh = iter(keys)
        self.fresh_left = bool(keys)
        self.retries: RetrySchedule[_WaitingRetry] = RetrySchedule()
        self.results: dict[Key, Outcome] = {}
        self.waiting_workers = 0

    async def worker(self) -> None:
        caller = self.caller
        clock = caller._clock
        retries = self.retries
        while not caller.breaker.is_open:
            due = retries.pop_due(clock.now())
            if due is not None:
                caller.stats.retries += 1
                await self._attempt(due.key, due.request, due.attempts + 1)
                continue
            if self.fresh_left and len(retries) < caller._max_waiting_retries:
                key = next(self.fresh, None)
                if key is not None:
                    await self._first_attempt(key)
                    continue
                self.fresh_left = False
            next_due = retries.next_due
            # With no fresh key left, workers beyond one per waiting retry would only wake to
            # find someone else took it.
            if next_due is None or (not self.fresh_left and self.waiting_workers >= len(retries)):
                return
            self.waiting_workers += 1
            try:
                await clock.sleep(max(0.0, next_due - clock.now()))
            finally:
                self.waiting_workers -= 1

    async def _first_attempt(self, key: Key) -> None:
        try:
            request = self.caller._builder.build(key)
        except CallError as exc:
            self.caller._settle(key, Outcome(None, 0, exc.error_class, exc.message), self.results)
            return
        await self._attempt(key, request, 1)

    async def _attempt(self, key: Key, request: PreparedRequest, attempts: int) -> None:
        caller = self.caller
        try:
            outcome = Outcome(await caller._attempt(request), attempts)
        except CallError as exc:
            next_step = caller._after_failure(exc, attempts)
            if not isinstance(next_step, Outcome):
                self.retries.push(caller._clock.now() + next_step, _WaitingRetry(key, request, attempts))
                return
            outcome = next_step
        caller._settle(key, outcome, self.results)

    def settle_waiting_retries(self) -> None:
        """Keys still waiting for a retry when the workers stopped (the breaker opened, or the
        job was cancelled) end as circuit_open, with the attempts they had."""
        caller = self.caller
        reason = caller.breaker.reason or "the job stopped before this key was retried"
        for waiting in self.retries.drain():
            outcome = Outcome(None, waiting.attempts, ErrorClass.CIRCUIT_OPEN, reason)
            caller._settle(waiting.key, outcome, self.results)


def _without_traceback(error: CallError) -> CallError:
    """``error`` holding no frames: kept past its ``except`` block, its traceback would tie it to
    the frame that holds it, a reference cycle only the cyclic garbage collector frees."""
    return error.with_traceback(None)


def _text(value: Any) -> str:
    return value if type(value) is str else value_text(value)


_MISSING = object()


def _http_message(status: int, body: bytes) -> str:
    snippet = body[:200].decode("utf-8", "replace").strip().replace("\n", " ")
    if len(snippet) > 120:
        snippet = snippet[:117] + "..."
    return f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
