"""Bulk requests: up to ``[bulk].size`` keys per request, answers matched back to keys by a field.

A chunk whose request keeps failing is split in halves until the failing keys stand alone, so one
bad key costs its neighbours a few requests, not their answers. Matching an answer back to keys
(``match_bulk``) is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio

from service.calling.answers import may_hold_big_integers, parse_exact
from service.calling.fetch_tools import FetchTools
from service.calling.outcome import Outcome, failed_outcome
from service.calling.requests import Key, PreparedRequest
from service.errors import CallError, ErrorClass
from service.spec import BulkSpec
from service.spec.templates import value_text
from service.stats import StatsRecorder


class BulkFetch:
    """One fetch of ``keys`` in chunks, counted in ``stats``; ``run(workers)`` returns when every
    key has its outcome."""

    def __init__(
        self,
        keys: Sequence[Key],
        bulk: BulkSpec,
        tools: FetchTools,
        stats: StatsRecorder,
        *,
        build: Callable[[Sequence[Key]], PreparedRequest],
    ) -> None:
        self._chunks = iter([list(keys[i : i + bulk.size]) for i in range(0, len(keys), bulk.size)])
        self._bulk = bulk
        self._tools = tools
        self._stats = stats
        self._build = build
        self.results: dict[Key, Outcome] = {}

    async def run(self, workers: int) -> dict[Key, Outcome]:
        """Fetch the chunks with ``workers`` workers (no new chunk once the breaker is open)."""
        async with anyio.create_task_group() as group:
            for _ in range(workers):
                group.start_soon(self._worker)
        return self.results

    async def _worker(self) -> None:
        breaker, settle, results = self._tools.breaker, self._tools.settle, self.results
        for chunk in self._chunks:
            if breaker.is_open:
                return
            outcomes = await self._chunk(chunk)
            for key, outcome in outcomes.items():
                settle(key, outcome, results)
            self._stats.keys_settled += len(outcomes)

    async def _chunk(self, keys: list[Key]) -> dict[Key, Outcome]:
        """One bulk request for ``keys``, retried; after a final failure, each half on its own."""
        request = self._build(keys)
        try:
            answer, attempts = _exact(*await self._tools.attempt(request, self._stats, 1)), 1
        except CallError as exc:
            outcome = await self._retry(request, exc.with_traceback(None))
            if outcome.ok:
                answer, attempts = outcome.answer, outcome.attempts
            elif len(keys) == 1 or outcome.error is ErrorClass.CIRCUIT_OPEN or self._tools.breaker.is_open:
                return dict.fromkeys(keys, outcome)
            else:
                middle = len(keys) // 2
                first = await self._chunk(keys[:middle])
                return first | await self._chunk(keys[middle:])
        # Mapped as the chunk comes: its answer is let go, not kept to the end.
        return match_bulk(keys, answer, attempts, self._bulk, self._tools.answers.of_results)

    async def _retry(self, request: PreparedRequest, first_error: CallError) -> Outcome:
        """Attempts 2..N in a row (a chunk's retries are few, and each worth the wait)."""
        tools, stats = self._tools, self._stats
        error, attempts = first_error, 1
        while True:
            delay = tools.policy.next_delay(error, attempts, stats)
            if delay is None:
                return failed_outcome(error, attempts, tools.redact)
            await tools.clock.sleep(delay)
            if tools.breaker.is_open:
                return Outcome(None, attempts, ErrorClass.CIRCUIT_OPEN, tools.breaker.reason)
            attempts += 1
            stats.retries += 1
            try:
                return Outcome(_exact(*await tools.attempt(request, stats, attempts)), attempts)
            except CallError as exc:
                # Kept across the next sleep: without its traceback it ties up no frame.
                error = exc.with_traceback(None)


_MISSING = object()


def _exact(answer: Any, body: bytes) -> Any:
    """``answer``, read again exactly when its body may hold an integer orjson could not keep: a
    bulk result has no body of its own to be read again later (``service.tables.mapping``)."""
    if not may_hold_big_integers(body):
        return answer
    try:
        return parse_exact(body)
    except (ValueError, RecursionError):  # orjson read it: the same document, as orjson has it
        return answer


def match_bulk(
    keys: list[Key],
    answer: Any,
    attempts: int,
    bulk: BulkSpec,
    answered: Callable[[list[Any], int], list[Outcome]] | None = None,
) -> dict[Key, Outcome]:
    """Each key's outcome of its result in a bulk ``answer`` (found by ``bulk.match``; the
    outcomes made by ``answered`` from the keys' results and ``attempts``; by default each holds
    its result as it is), or a ``mapping`` failure."""
    items = bulk.results.search(answer)
    if not isinstance(items, list):
        reason = "bulk answer has no list of results where [bulk].results points"
        failure = Outcome(None, attempts, ErrorClass.MAPPING, reason)
        return dict.fromkeys(keys, failure)
    found = _results_of(keys, items, bulk)
    results = [item for item in found if item is not _MISSING]
    answered_keys = iter(
        answered(results, attempts) if answered else [Outcome(result, attempts) for result in results]
    )
    missing = Outcome(None, attempts, ErrorClass.MAPPING, "key missing from the bulk answer")
    return {
        key: missing if item is _MISSING else next(answered_keys)
        for key, item in zip(keys, found, strict=True)
    }


def _results_of(keys: list[Key], items: list[Any], bulk: BulkSpec) -> list[Any]:
    """Each key's result among ``items`` (the first whose match fields read as the key's
    values), or ``_MISSING``. Hot with big chunks: text forms are computed once per value, keys
    of one column unwrapped."""
    match = bulk.match
    by_text: dict[Any, Any] = {}
    if len(match) == 1:
        path = match[0]
        for item in items:
            value = path.search(item)
            if value is not None:
                by_text.setdefault(_text(value), item)
        return [by_text.get(_text(key[0]), _MISSING) for key in keys]
    for item in items:
        matched = tuple(m.search(item) for m in match)
        if all(v is not None for v in matched):
            by_text.setdefault(tuple(_text(v) for v in matched), item)
    return [by_text.get(tuple(_text(v) for v in key), _MISSING) for key in keys]


def _text(value: Any) -> str:
    return value if type(value) is str else value_text(value)
