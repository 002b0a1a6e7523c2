"""A clock for tests: time moves only when someone sleeps, and every sleep is recorded.

Pass it as ``clock=`` to ``Caller`` or ``enrich_frame``: backoff, ``Retry-After`` waits, rate-limit
pacing and 429 pauses then take no real time, and a test can assert the exact waits
(``clock.sleeps``), as with trio's ``trio.testing.MockClock``.
"""

from __future__ import annotations

import asyncio


class MockClock:
    """A ``Clock`` whose sleeps return at once and move its time forward by what was asked."""

    def __init__(self, start: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self.t = start
        self.wall_offset = wall - start
        self.sleeps: list[float] = []

    def now(self) -> float:
        """Monotonic seconds: ``start`` plus every sleep so far."""
        return self.t

    def wall(self) -> float:
        """Seconds since the Unix epoch, moving with ``now``."""
        return self.t + self.wall_offset

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, move time forward, and let other tasks run once."""
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)
