"""Following the quota an API announces: which answer's word counts, and what it leaves.

An answer's quota counts the requests the API had seen when it answered: not those sent after
it, nor those waiting for their start. ``QuotaFollower`` keeps those counts for ``Attempts`` and
hands the limiter the newest answer's word (an older answer arriving late is stale: ignored).

Until the first answer has come back, one request goes at a time: a job does not know the quota
before the API's first word, and one starting in a window others already used (the job before
it, another process) would otherwise send a whole burst past what is left of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from service.calling.clock import Clock
from service.calling.rate_headers import quota_of
from service.calling.rate_limit import RateLimiter


class QuotaFollower:
    """Counts requests as they reserve a start (``reserving``/``reserved``) and go (``sending``),
    and paces ``limiter`` by each newer answer's quota (``heard``); holds last at most
    ``hold_cap_s``."""

    def __init__(self, limiter: RateLimiter, clock: Clock, hold_cap_s: float) -> None:
        self._limiter = limiter
        self._clock = clock
        self._hold_cap_s = hold_cap_s
        self._sent = 0
        self._heard_from = 0  # the request whose answer last told the quota
        self._reserved = 0
        self._asking = False  # the first request is out
        self._answered = asyncio.Event()  # it came back, however
        self.answered = False  # the same, read on every request (the event costs a call)

    async def first_word(self) -> None:
        """Return at once for the first request and after its end for the others."""
        if self.answered:
            return
        if not self._asking:
            self._asking = True
            return
        await self._answered.wait()

    def ended(self) -> None:
        """A request ended (answered, failed or given up): the first word is in."""
        if not self.answered:
            self.answered = True
            self._answered.set()

    def reserving(self) -> None:
        """A request reserved a start: quota it will spend."""
        self._reserved += 1

    def reserved(self) -> None:
        """It stopped waiting for its start (it goes, or gave up)."""
        self._reserved -= 1

    def sending(self) -> int:
        """A request goes: its number in the order sent."""
        self._sent += 1
        return self._sent

    def heard(self, headers: Mapping[str, str], sent: int) -> None:
        """The answer to the ``sent``-th request came with ``headers``."""
        if sent <= self._heard_from:
            return
        quota = quota_of(headers, self._clock.wall())
        if quota is not None:
            self._heard_from = sent
            uncounted = self._sent - sent
            self._limiter.follow_quota(quota, uncounted, self._reserved, self._hold_cap_s)
