"""Claims on keys in flight: the first fetch requests a key, the others wait for its outcome."""

from __future__ import annotations

import asyncio

import pytest

from service import ErrorClass, Outcome
from service.calling.in_flight import FetchAbandonedError, InFlightKeys


@pytest.mark.asyncio
async def test_a_second_fetch_waits_for_the_first_ones_outcome() -> None:
    """Keys claimed by one fetch are waited for by the next; settling answers both."""
    keys = InFlightKeys()
    mine, waiting = keys.claim([("a",), ("b",)])
    theirs, their_waiting = keys.claim([("b",), ("c",)])
    assert (mine, waiting) == ([("a",), ("b",)], [])
    assert theirs == [("c",)]
    assert [key for key, _ in their_waiting] == [("b",)]
    results: dict[tuple[object, ...], Outcome] = {}
    answer = Outcome({"v": 1}, 1)
    keys.settle(("b",), answer, results)
    collected = await asyncio.wait_for(keys.collect(their_waiting, {}), timeout=5)
    assert collected == {("b",): answer}


@pytest.mark.asyncio
async def test_settled_keys_stay_until_released() -> None:
    """A fetch starting after a key settled but before its answer reached the log or the cache
    gets it; once released, the key is claimed afresh (then found where it was stored)."""
    keys = InFlightKeys()
    keys.claim([("a",)])
    keys.settle(("a",), Outcome({"v": 1}, 1), {})
    mine, waiting = keys.claim([("a",)])
    assert mine == []
    assert (await keys.collect(waiting, {}))[("a",)].answer == {"v": 1}
    keys.release([("a",)])
    assert keys.claim([("a",)])[0] == [("a",)]


@pytest.mark.asyncio
async def test_keys_never_answered_end_circuit_open_for_every_waiter() -> None:
    """A fetch cut short settles its unanswered keys, so no other fetch waits forever."""
    keys = InFlightKeys()
    mine, _ = keys.claim([("a",), ("b",)])
    _, waiting = keys.claim([("b",)])
    results = {("a",): Outcome({"v": 1}, 1)}
    keys.settle_unanswered(mine, results, "the API is down")
    assert results[("b",)].error is ErrorClass.CIRCUIT_OPEN
    waited = await asyncio.wait_for(keys.collect(waiting, {}), timeout=5)
    assert waited[("b",)].message == "the API is down"
    assert waited[("b",)].attempts == 0


@pytest.mark.asyncio
async def test_an_abandoned_claim_fails_its_waiters_and_is_claimed_afresh() -> None:
    """A fetch that failed settles nothing it had not answered: whoever waited raises, and the
    next fetch requests the key again (no outcome made up for it)."""
    keys = InFlightKeys()
    mine, _ = keys.claim([("a",), ("b",)])
    keys.settle(("a",), Outcome({"v": 1}, 1), {})
    _, waiting = keys.claim([("b",)])
    keys.abandon(mine)
    with pytest.raises(FetchAbandonedError):
        await asyncio.wait_for(keys.collect(waiting, {}), timeout=5)
    assert keys.claim([("a",), ("b",)])[0] == [("a",), ("b",)]
