"""A requests/s rate shared by several processes, taken from a shared bucket in blocks.

The shared bucket (a Prefect limit with slot decay, in ``flows.global_limits``) costs a server
round trip per acquisition, so a process takes one second's worth of requests at a time and hands
them out locally. Two rules keep the processes together within the rate:

- a block's requests may start only within ``window_s`` of its acquisition; the rest are dropped,
  so a slow holder cannot spend old tokens while the next holder spends fresh ones;
- the bucket drains a little slower than the rate (``SHARED_RATE_MARGIN``), so the next block is
  granted only after the previous one's window has closed, even counting the round trip; and a
  process asks again only once the bucket has drained, because the server answers an early ask by
  restarting its drain clock.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import anyio

from service.clock import Clock

SHARED_RATE_MARGIN = 0.05
BLOCK_S = 1.0  # how much of the rate one acquisition takes


class SharedRate(Protocol):
    """A rate shared with other processes: ``take()`` returns when one more request may start."""

    async def take(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SharedRatePlan:
    """How a rate is shared: the bucket's size and drain rate, and how long a block stays usable."""

    block: int
    decay_per_s: float
    window_s: float


def plan_shared_rate(rate: float) -> SharedRatePlan:
    """The shared bucket for ``rate`` requests/s: blocks of about ``BLOCK_S`` seconds' worth."""
    if not rate > 0 or not math.isfinite(rate):
        raise ValueError(f"a shared rate must be a positive number of requests/s, not {rate!r}")
    block = max(1, round(rate * BLOCK_S))
    return SharedRatePlan(block=block, decay_per_s=rate * (1 - SHARED_RATE_MARGIN), window_s=block / rate)


class BlockRate:
    """Hands out a shared rate's requests one at a time, taking ``plan.block`` of them at once.

    ``take_block(n)`` waits until the shared bucket grants ``n`` requests.
    """

    def __init__(
        self, take_block: Callable[[int], Awaitable[None]], plan: SharedRatePlan, clock: Clock
    ) -> None:
        self._take_block = take_block
        self._plan = plan
        self._clock = clock
        self._lock = anyio.Lock()
        self._left = 0
        self._usable_until = 0.0
        self._next_ask = 0.0
        self.blocks = 0
        self.dropped = 0

    async def take(self) -> None:
        async with self._lock:
            now = self._clock.now()
            if self._left and now >= self._usable_until:
                self.dropped += self._left
                self._left = 0
            if not self._left:
                if now < self._next_ask:
                    await self._clock.sleep(self._next_ask - now)
                await self._take_block(self._plan.block)
                granted = self._clock.now()
                self.blocks += 1
                self._left = self._plan.block
                self._usable_until = granted + self._plan.window_s
                self._next_ask = granted + self._plan.block / self._plan.decay_per_s
            self._left -= 1
