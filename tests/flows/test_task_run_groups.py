"""How batches are grouped into task runs, and which failures a batch is tried again for."""

from __future__ import annotations

import asyncio

import pytest

from flows.batch_task import crashed, innermost
from flows.task_runs import ROWS_PER_TASK_RUN, batches_per_task_run
from service import CircuitOpenError, InputError


@pytest.mark.parametrize(
    ("batch_size", "asked", "expected"),
    [
        (10_000, None, 10),  # the default batch size: 10 task runs for 1M rows
        (1, None, ROWS_PER_TASK_RUN),
        (ROWS_PER_TASK_RUN + 1, None, 1),  # never zero
        (10_000, 1, 1),  # asked: one task run per batch
        (10, 7, 7),
    ],
)
def test_a_task_run_covers_about_100000_rows_unless_asked(
    batch_size: int, asked: int | None, expected: int
) -> None:
    assert batches_per_task_run(batch_size, asked) == expected


@pytest.mark.parametrize(
    ("error", "tried_again"),
    [
        (RuntimeError("a bug"), True),
        (OSError("disk hiccup"), True),
        (ExceptionGroup("from a task group", [OSError("disk hiccup")]), True),
        (InputError("bad input"), False),
        (CircuitOpenError("the API keeps failing"), False),
        (ExceptionGroup("from a task group", [InputError("bad input")]), False),
        (ExceptionGroup("mixed", [OSError("disk"), CircuitOpenError("open")]), False),
        (asyncio.CancelledError(), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_only_a_crash_is_tried_again(error: BaseException, tried_again: bool) -> None:
    """Bad input or an open circuit would meet the same error again; a cancellation is obeyed."""
    assert crashed(error) is tried_again


def test_a_group_of_one_error_is_told_as_that_error() -> None:
    leaf = OSError("disk hiccup")
    assert innermost(ExceptionGroup("outer", [ExceptionGroup("inner", [leaf])])) is leaf
    two = ExceptionGroup("two", [leaf, RuntimeError("another")])
    assert innermost(two) is two
