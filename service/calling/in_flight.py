"""Keys being requested by some fetch of a caller: another fetch asking for one waits for its
answer instead of requesting it again (frames of one job overlap, and share keys)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from service.calling.outcome import Outcome
from service.calling.requests import Key
from service.errors import ErrorClass

Waiting = list[tuple[Key, "asyncio.Future[Outcome]"]]


class InFlightKeys:
    """Claims on keys: the first fetch to claim a key requests it and settles it for everyone.

    With ``keep_settled`` (a caller with a cache), a settled key stays claimed until ``release``,
    called once its answer is in the cache: a fetch starting meanwhile, whose cache lookup came too
    early to see the answer, gets it here instead of asking again.
    """

    def __init__(self, *, keep_settled: bool) -> None:
        self._futures: dict[Key, asyncio.Future[Outcome]] = {}
        self._keep_settled = keep_settled

    def claim(self, keys: Sequence[Key]) -> tuple[list[Key], Waiting]:
        """Split ``keys`` into those this fetch must request and those it waits for."""
        loop = asyncio.get_running_loop()
        mine: list[Key] = []
        waiting: Waiting = []
        futures = self._futures
        for key in keys:
            future = futures.get(key)
            if future is None:
                futures[key] = loop.create_future()
                mine.append(key)
            else:
                waiting.append((key, future))
        return mine, waiting

    def settle(self, key: Key, outcome: Outcome, results: dict[Key, Outcome]) -> None:
        """``outcome`` is ``key``'s: into ``results``, and to every fetch waiting for it."""
        results[key] = outcome
        futures = self._futures
        future = futures.get(key) if self._keep_settled else futures.pop(key, None)
        if future is not None and not future.done():
            future.set_result(outcome)

    def settle_unanswered(self, mine: list[Key], results: dict[Key, Outcome], reason: str) -> None:
        """Keys claimed but never answered (the breaker opened, or the fetch was cancelled) end as
        ``circuit_open`` with ``reason``, so no fetch waits for them forever."""
        for key in mine:
            if key not in results:
                self.settle(key, Outcome(None, 0, ErrorClass.CIRCUIT_OPEN, reason), results)

    def release(self, keys: Iterable[Key]) -> None:
        """Forget settled keys (their answers are in the cache now)."""
        futures = self._futures
        for key in keys:
            future = futures.get(key)
            if future is not None and future.done():
                del futures[key]

    @staticmethod
    async def collect(waiting: Waiting, results: dict[Key, Outcome]) -> dict[Key, Outcome]:
        """``results`` with the outcomes of the keys this fetch waited for."""
        for key, future in waiting:
            results[key] = await future
        return results
