"""Handing out a shared rate block by block: when blocks are taken, when tokens expire."""

from __future__ import annotations

import pytest

from service.shared_rate import SHARED_RATE_MARGIN, BlockRate, plan_shared_rate
from tests.conftest import FakeClock


class Bucket:
    """Stands for the shared bucket: records when each block was asked for, and of what size."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.asked: list[tuple[float, int]] = []

    async def take_block(self, requests: int) -> None:
        self.asked.append((self.clock.now(), requests))


def test_plan_takes_a_second_of_the_rate_and_drains_a_little_slower() -> None:
    plan = plan_shared_rate(20.0)
    assert plan.block == 20
    assert plan.window_s == pytest.approx(1.0)
    assert plan.decay_per_s == pytest.approx(20.0 * (1 - SHARED_RATE_MARGIN))
    slow = plan_shared_rate(0.5)  # 30/min: one request per block, usable for 2 s
    assert (slow.block, slow.window_s) == (1, pytest.approx(2.0))
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="positive number"):
            plan_shared_rate(bad)


@pytest.mark.asyncio
async def test_one_block_serves_block_requests(clock: FakeClock) -> None:
    bucket = Bucket(clock)
    gate = BlockRate(bucket.take_block, plan_shared_rate(10.0), clock)
    for _ in range(10):
        await gate.take()
    assert bucket.asked == [(1000.0, 10)]
    await gate.take()  # the 11th needs a new block, asked only once the bucket has drained
    assert len(bucket.asked) == 2
    assert bucket.asked[1][0] == pytest.approx(1000.0 + 10 / (10.0 * (1 - SHARED_RATE_MARGIN)))
    assert gate.blocks == 2
    assert gate.dropped == 0


@pytest.mark.asyncio
async def test_tokens_left_after_the_window_are_dropped(clock: FakeClock) -> None:
    """A holder that was slow may not spend an old block while the next holder spends a new one."""
    bucket = Bucket(clock)
    gate = BlockRate(bucket.take_block, plan_shared_rate(10.0), clock)
    for _ in range(3):
        await gate.take()
    clock.t += 1.5  # the window (1 s) has closed with 7 tokens unused
    await gate.take()
    assert gate.dropped == 7
    assert [size for _, size in bucket.asked] == [10, 10]
    assert bucket.asked[1][0] == pytest.approx(1001.5)  # already drained: no wait before asking
