"""The retry schedule: items leave when due, earliest first, ties in the order they came."""

from __future__ import annotations

from service.calling.retry_schedule import RetrySchedule


def test_nothing_leaves_before_it_is_due() -> None:
    """pop_due gives None until the earliest item's time, and reports when that is."""
    schedule: RetrySchedule[str] = RetrySchedule()
    assert schedule.next_due is None
    schedule.push(10.0, "a")
    assert schedule.pop_due(9.99) is None
    assert schedule.next_due == 10.0
    assert len(schedule) == 1
    assert schedule.pop_due(10.0) == "a"
    assert len(schedule) == 0


def test_items_leave_earliest_first_and_ties_in_arrival_order() -> None:
    """Whatever the push order, due items come out by due time, equal times first-come first."""
    schedule: RetrySchedule[str] = RetrySchedule()
    for due, item in ((3.0, "late"), (1.0, "first"), (2.0, "tie-1"), (2.0, "tie-2"), (2.0, "tie-3")):
        schedule.push(due, item)
    out = []
    while (item := schedule.pop_due(5.0)) is not None:
        out.append(item)
    assert out == ["first", "tie-1", "tie-2", "tie-3", "late"]


def test_items_that_cannot_be_compared_are_never_compared() -> None:
    """Items need no ordering of their own (dicts here): equal due times are ordered by arrival."""
    schedule: RetrySchedule[dict[str, int]] = RetrySchedule()
    schedule.push(1.0, {"n": 1})
    schedule.push(1.0, {"n": 2})
    assert [schedule.pop_due(1.0), schedule.pop_due(1.0)] == [{"n": 1}, {"n": 2}]


def test_drain_empties_earliest_first() -> None:
    """drain hands back everything left, due or not, earliest first."""
    schedule: RetrySchedule[str] = RetrySchedule()
    schedule.push(50.0, "b")
    schedule.push(20.0, "a")
    assert schedule.drain() == ["a", "b"]
    assert len(schedule) == 0
    assert schedule.pop_due(100.0) is None
