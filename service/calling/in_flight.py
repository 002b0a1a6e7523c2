"""Keys being requested by some fetch of a caller: another fetch asking for one waits for its
answer instead of requesting it again (frames of one job overlap, and share keys)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from service.calling.outcome import Outcome
from service.calling.requests import Key
from service.errors import ErrorClass

Waiting = list[tuple[Key, "asyncio.Future[Outcome]"]]


class FetchAbandonedError(RuntimeError):
    """The fetch that claimed a key failed before settling it: whoever waited for it asks again."""


class _Claimed:
    """A key claimed by a fetch that nobody waits for yet: its future is made only when someone
    does (most keys are asked by one fetch only, and a future per key cost a microsecond)."""


_CLAIMED = _Claimed()
# Per key: claimed, a future someone waits on, or the outcome kept until the key is released.
_Entry = _Claimed | asyncio.Future[Outcome] | Outcome


class InFlightKeys:
    """Claims on keys: the first fetch to claim a key requests it and settles it for everyone.

    A settled key stays claimed until ``release``, called once its answer is where later fetches
    look (the answer log, the cache): a fetch starting meanwhile gets it here instead of asking
    again. A fetch that fails ``abandon``s its claims instead: nothing it did not settle is.
    """

    def __init__(self) -> None:
        self._entries: dict[Key, _Entry] = {}

    def claim(self, keys: Sequence[Key]) -> tuple[list[Key], Waiting]:
        """Split ``keys`` into those this fetch must request and those it waits for."""
        mine: list[Key] = []
        waiting: Waiting = []
        entries = self._entries
        for key in keys:
            entry = entries.get(key)
            if entry is None:
                entries[key] = _CLAIMED
                mine.append(key)
            else:
                waiting.append((key, self._future_of(key, entry)))
        return mine, waiting

    def _future_of(self, key: Key, entry: _Entry) -> asyncio.Future[Outcome]:
        if isinstance(entry, asyncio.Future):
            return entry
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        if isinstance(entry, Outcome):  # settled, not yet released: the answer is here already
            future.set_result(entry)
        else:
            self._entries[key] = future
        return future

    def settle(self, key: Key, outcome: Outcome, results: dict[Key, Outcome]) -> None:
        """``outcome`` is ``key``'s: into ``results``, and to every fetch waiting for it."""
        results[key] = outcome
        entries = self._entries
        entry = entries.get(key)
        if entry is _CLAIMED:
            entries[key] = outcome
        elif isinstance(entry, asyncio.Future) and not entry.done():
            entry.set_result(outcome)

    def settle_unanswered(self, mine: list[Key], results: dict[Key, Outcome], reason: str) -> None:
        """Keys claimed but never answered (the breaker opened, or the fetch was cancelled) end as
        ``circuit_open`` with ``reason``, so no fetch waits for them forever."""
        for key in mine:
            if key not in results:
                self.settle(key, Outcome(None, 0, ErrorClass.CIRCUIT_OPEN, reason), results)

    def release(self, keys: Iterable[Key]) -> None:
        """Forget settled keys (their outcomes are where later fetches look now)."""
        entries = self._entries
        for key in keys:
            entry = entries.get(key)
            if isinstance(entry, Outcome) or (isinstance(entry, asyncio.Future) and entry.done()):
                del entries[key]

    def abandon(self, keys: Iterable[Key]) -> None:
        """Let go of a failed fetch's claims: a key it did not settle fails its waiters with
        ``FetchAbandonedError``, and is requested again by the next fetch that asks for it."""
        entries = self._entries
        for key in keys:
            entry = entries.pop(key, None)
            if isinstance(entry, asyncio.Future) and not entry.done():
                entry.set_exception(FetchAbandonedError(f"the fetch requesting {key!r} failed"))
                entry.exception()  # nobody may be waiting: not an "exception never retrieved"

    @staticmethod
    async def collect(waiting: Waiting, results: dict[Key, Outcome]) -> dict[Key, Outcome]:
        """``results`` with the outcomes of the keys this fetch waited for."""
        for key, future in waiting:
            results[key] = await future
        return results
