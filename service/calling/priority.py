"""Concurrency slots handed out oldest batch first, so batches finish in order, not in lockstep.

Frames of one job share a caller's slots. With a plain semaphore, three batches in flight each
get a third of the slots and finish together; a kill then finds none of them recorded. Here a
waiting request of batch 3 goes before one of batch 5: the oldest batch finishes as soon as its
own keys are answered, and parts are recorded one after another. The batch a request belongs to
is a context variable (``in_order_of``), inherited by every task the frame's fetch starts.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_priority: ContextVar[int] = ContextVar("enrich_request_priority", default=0)


@contextmanager
def in_order_of(priority: int) -> Iterator[None]:
    """Requests made in this block wait for a slot behind those of lower ``priority`` numbers."""
    token = _priority.set(priority)
    try:
        yield
    finally:
        _priority.reset(token)


class PrioritySlots:
    """At most ``slots`` holders (``resize`` changes how many); a free slot goes to the waiter of
    lowest priority, then the longest waiting. Uncontended, ``acquire`` costs what a semaphore's
    does."""

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._free = slots  # below 0 after a shrink: holders beyond the new count, still out
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @property
    def held(self) -> int:
        """Slots taken now."""
        return self._slots - self._free

    def locked(self) -> bool:
        """True when an ``acquire`` now would wait."""
        return self._free <= 0

    def resize(self, slots: int) -> None:
        """Hand out at most ``slots`` from now on: more wake waiters at once; fewer take effect as
        holders release (none is interrupted)."""
        self._free += slots - self._slots
        self._slots = slots
        while self._free > 0 and self._waiters:
            future = heapq.heappop(self._waiters)[2]
            if not future.done():
                self._free -= 1
                future.set_result(None)

    def take(self) -> bool:
        """Take a free slot if there is one, without waiting: whether one was taken."""
        if self._free > 0:
            self._free -= 1
            return True
        return False

    async def acquire(self) -> None:
        """Take a slot, waiting behind every waiter of lower priority number."""
        if self._free > 0:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (_priority.get(), next(self._arrivals), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # handed a slot as it was cancelled
                self.release()
            raise

    def release(self) -> None:
        """Give the slot back: to the first waiter still waiting, or to the pool."""
        if self._free < 0:  # one fewer beyond a shrunk count
            self._free += 1
            return
        waiters = self._waiters
        while waiters:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
