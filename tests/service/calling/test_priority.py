"""Concurrency slots go to the oldest batch's requests first: batches finish in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service import JobOptions, load_spec, run_job
from service.calling.priority import PrioritySlots, in_order_of
from tests.helpers import server_stats, write_lookup_job


@pytest.mark.asyncio
async def test_a_free_slot_goes_to_the_lowest_priority_number_then_the_longest_waiting() -> None:
    slots = PrioritySlots(1)
    await slots.acquire()
    served: list[str] = []

    async def wait(name: str, priority: int) -> None:
        with in_order_of(priority):
            await slots.acquire()
        served.append(name)

    waiters = []
    for name, priority in [("5a", 5), ("3a", 3), ("5b", 5), ("3b", 3), ("4", 4)]:
        waiters.append(asyncio.create_task(wait(name, priority)))
        await asyncio.sleep(0)  # each queued before the next: arrival order is known
    for _ in waiters:
        slots.release()
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    assert served == ["3a", "3b", "4", "5a", "5b"]


@pytest.mark.asyncio
async def test_a_cancelled_waiter_takes_no_slot() -> None:
    slots = PrioritySlots(1)
    await slots.acquire()
    cancelled = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    slots.release()
    assert not slots.locked()  # the slot went back to the pool, not to the cancelled waiter
    await asyncio.wait_for(slots.acquire(), timeout=5)
    assert slots.locked()


@pytest.mark.asyncio
async def test_growing_wakes_waiters_at_once_and_shrinking_waits_for_holders() -> None:
    slots = PrioritySlots(1)
    await slots.acquire()
    waiters = [asyncio.create_task(slots.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    slots.resize(3)  # two more: two waiters go now, the third still waits
    await asyncio.sleep(0)
    assert [w.done() for w in waiters] == [True, True, False]
    assert slots.held == 3
    slots.resize(1)  # three out, one allowed: the next two releases free nothing
    slots.release()
    slots.release()
    await asyncio.sleep(0)
    assert not waiters[2].done()
    assert slots.held == 1
    slots.release()  # now below the count: the last waiter gets the slot
    await asyncio.wait_for(waiters[2], timeout=5)
    assert slots.held == 1
    assert slots.locked()


@pytest.mark.asyncio
async def test_batches_of_a_job_are_requested_oldest_first(tmp_path: Path, server: str) -> None:
    """Six batches of 200 new keys, three in flight, 8 requests at once: a batch's keys are
    requested before the batch two behind it starts (with a plain semaphore the three batches
    take turns, and about a third of each batch comes after the next-but-one has begun)."""
    batch, batches, concurrency = 200, 6, 8
    keys = [f"k{i}" for i in range(batch * batches)]
    source, spec_path = write_lookup_job(tmp_path, server, keys, f"[limits]\nconcurrency = {concurrency}\n")
    output = tmp_path / "out.parquet"
    await run_job(source, load_spec(spec_path, environ={}), output, JobOptions(batch_size=batch))
    order = [int(key[1:]) // batch for key in server_stats(server)["per_key"]]
    assert len(order) == len(keys)  # each key once
    for index in range(batches - 2):
        starts = order.index(index + 2)
        late = sum(1 for b in order[starts:] if b == index)
        assert late <= 2 * concurrency, (index, late)
