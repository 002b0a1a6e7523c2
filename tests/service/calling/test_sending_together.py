"""Answers that arrive together are all handled before any worker sends again: the requests then
go out together too, and the event loop and the API's server wake once for several (sending at
once cost 18 us more per request at 0 ms, 64 in flight: docs/architecture.md)."""

from __future__ import annotations

import asyncio
import itertools

import polars as pl
import pytest

from service import Caller, enrich_frame
from service.calling.requests import PreparedRequest
from service.calling.sending import RawResponse
from service.testing import MockClock
from tests.helpers import make_spec

IN_FLIGHT = 8


class RoundsSender:
    """An API answering in rounds: once every request it can expect is in, all of them are
    answered at once. The first request comes alone (the engine waits for the first answer's word
    on the API's quota before sending more), then ``IN_FLIGHT`` at a time, or the keys left. Logs
    each request sent and each answer handed back."""

    def __init__(self, keys: int) -> None:
        self.left = keys
        self.events: list[str] = []
        self._round: asyncio.Future[None] | None = None
        self._waiting = 0
        self._round_size = 1

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def send(self, request: PreparedRequest) -> RawResponse:
        self.events.append("sent")
        if self._round is None:
            self._round = asyncio.get_running_loop().create_future()
        this_round = self._round
        self._waiting += 1
        if self._waiting == min(self._round_size, self.left):
            self.left -= self._waiting
            self._round, self._waiting, self._round_size = None, 0, IN_FLIGHT
            this_round.set_result(None)
        await this_round
        self.events.append("answered")
        return RawResponse(200, b'{"name": "x"}', None)


@pytest.mark.asyncio
async def test_answers_that_came_together_are_handled_before_the_next_requests_go(clock: MockClock) -> None:
    """The first request, then three rounds of eight: each round's answers are all taken before
    its workers send the next round's requests (sending at once alternates: an answer, a request)."""
    keys = 1 + 3 * IN_FLIGHT
    sender = RoundsSender(keys)
    spec = make_spec(f"[limits]\nconcurrency = {IN_FLIGHT}\n")
    async with Caller(spec, sender=sender, clock=clock) as caller:
        frame = pl.DataFrame({"k": [f"k{i}" for i in range(keys)]})
        result = await asyncio.wait_for(enrich_frame(frame, spec, caller=caller), timeout=30)
    assert result.stats.rows_ok == keys
    runs = [(event, len(list(group))) for event, group in itertools.groupby(sender.events)]
    assert runs == [("sent", 1), ("answered", 1), *[("sent", IN_FLIGHT), ("answered", IN_FLIGHT)] * 3]
