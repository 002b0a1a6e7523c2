"""Requests for keys, one key each, by a fixed pool of workers (no task per key).

A worker takes a due retry first, else a fresh key, else waits for the next retry to fall due. A
failed key waits out its backoff in a schedule (``service.calling.retry_schedule``) instead of a
task or a timer of its own, so it never holds a worker back from the next keys; and no fresh key
is taken while ``max_waiting_retries`` keys already wait (the API is failing: no need to pile on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio

from service.calling.fetch_tools import FetchTools
from service.calling.outcome import Outcome, failed_outcome
from service.calling.requests import Key, PreparedRequest
from service.calling.retry_schedule import RetrySchedule
from service.errors import CallError, ErrorClass
from service.stats import StatsRecorder


@dataclass(frozen=True, slots=True)
class _WaitingRetry:
    request: PreparedRequest
    key: Key
    attempts: int


class RowFetch:
    """One fetch of ``keys``, counted in ``stats``; ``run(workers)`` returns when every key has its
    outcome in ``results``."""

    def __init__(
        self,
        keys: Sequence[Key],
        tools: FetchTools,
        stats: StatsRecorder,
        *,
        build: Callable[[Key], PreparedRequest],
        max_waiting_retries: int,
    ) -> None:
        self._fresh = iter(keys)
        self._fresh_left = bool(keys)
        self._tools = tools
        self._stats = stats
        self._attempt = tools.attempt
        self._answered = tools.answers.of_answer
        self._build = build
        self._max_waiting_retries = max_waiting_retries
        self._retries: RetrySchedule[_WaitingRetry] = RetrySchedule()
        self._waiting_workers = 0
        self.results: dict[Key, Outcome] = {}

    async def run(self, workers: int) -> dict[Key, Outcome]:
        """Fetch with ``workers`` workers; keys still waiting for a retry when they stop (the breaker
        opened) end as ``circuit_open``, with the attempts they had."""
        async with anyio.create_task_group() as group:
            for _ in range(workers):
                group.start_soon(self._worker)
        # Not after a failure or a cancellation: what was not answered then is asked again.
        reason = self._tools.breaker.reason or "the job stopped before this key was retried"
        for waiting in self._retries.drain():
            self._settle(waiting.key, Outcome(None, waiting.attempts, ErrorClass.CIRCUIT_OPEN, reason))
        return self.results

    def _settle(self, key: Key, outcome: Outcome) -> None:
        self._tools.settle(key, outcome, self.results)
        self._stats.keys_settled += 1

    async def _worker(self) -> None:
        breaker, attempt, answered, stats = self._tools.breaker, self._attempt, self._answered, self._stats
        while breaker.reason is None:  # not is_open: this loop turns once per request
            picked = self._next_request()
            if picked is None:
                if await self._waited_for_retry():
                    continue
                return
            request, key, attempts = picked
            try:
                answer, raw = await attempt(request, stats, attempts)
            except CallError as exc:
                self._failed(request, key, attempts, exc)
            else:
                self._settle(key, answered(answer, attempts, raw))
            # Answers that came in meanwhile are read before the next request goes, so requests
            # go out together: the loop and the API's server each wake once for several. Sending
            # at once cost 18 us more per request at 0 ms / 64 in flight (docs/architecture.md).
            await asyncio.sleep(0)

    def _next_request(self) -> tuple[PreparedRequest, Key, int] | None:
        """A due retry, else a fresh key's request (keys that cannot be sent settled on the way),
        with its attempt number; None when neither is there."""
        retries = self._retries
        if retries:
            due = retries.pop_due(self._tools.clock.now())
            if due is not None:
                self._stats.retries += 1
                return due.request, due.key, due.attempts + 1
        while self._fresh_left and len(retries) < self._max_waiting_retries:
            key = next(self._fresh, None)
            if key is None:
                self._fresh_left = False
                break
            try:
                return self._build(key), key, 1
            except CallError as exc:  # a key that cannot be sent (a null, an empty path segment)
                self._settle(key, Outcome(None, 0, exc.error_class, exc.message))
        return None

    async def _waited_for_retry(self) -> bool:
        """Wait until the next retry is due; False (at once) when this worker is not needed: no
        retry waits, or no fresh key is left and other workers wait for every retry already."""
        retries, clock = self._retries, self._tools.clock
        next_due = retries.next_due
        if next_due is None or (not self._fresh_left and self._waiting_workers >= len(retries)):
            return False
        self._waiting_workers += 1
        try:
            await clock.sleep(max(0.0, next_due - clock.now()))
        finally:
            self._waiting_workers -= 1
        return True

    def _failed(self, request: PreparedRequest, key: Key, attempts: int, error: CallError) -> None:
        """After a failed attempt: the key waits for its retry, or its outcome is the failure."""
        tools = self._tools
        delay = tools.policy.next_delay(error, attempts, self._stats)
        if delay is not None:
            self._retries.push(tools.clock.now() + delay, _WaitingRetry(request, key, attempts))
        else:
            self._settle(key, failed_outcome(error, attempts, tools.redact))
