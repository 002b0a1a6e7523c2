"""Where the job's answer log's cost goes, by thread: the answer-log scenario's two jobs (0 ms,
64 in flight, keys in random order: the client's one core is the bound), each round timed as wall
time, the CPU of the thread running the event loop, and the CPU of every other thread (the log's
flushes and lookups, the files' reads and writes), per row.

    .venv/bin/python -m benchmarks.answer_log_threads [--keys 120000] [--rounds 3]

``python -m benchmarks --only answer-log`` reads the ratio of the jobs' speeds; this splits the
difference. The jobs alternate (a noisy spell hits both) and are compared round by round, in one
process, the mock API on its own core, garbage collection as ``enrich run`` sets it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks import contenders
from benchmarks.paired import medians, paired_differences
from benchmarks.run import mock_api
from enrich.cli.process import collect_garbage_less_often


@dataclass(frozen=True)
class RowCosts:
    """One job's µs a row: wall time, the event loop's thread's CPU, every other thread's CPU."""

    wall: float
    event_loop: float
    other_threads: float


def timed_job(base: str, keys: list[str], folder: Path, *, answer_log: bool) -> RowCosts:
    """One job over ``keys`` (run on this thread's own event loop)."""
    wall, own, process = time.perf_counter(), time.thread_time(), time.process_time()
    asyncio.run(contenders.job(base, keys, folder, 64, answer_log=answer_log))
    wall, own, process = time.perf_counter() - wall, time.thread_time() - own, time.process_time() - process
    per_row = 1e6 / len(keys)
    return RowCosts(wall * per_row, own * per_row, (process - own) * per_row)


def shown(name: str, costs: RowCosts, sign: str = "") -> str:
    return (
        f"{name:<26} wall {costs.wall:{sign}7.1f}   event loop {costs.event_loop:{sign}7.1f}   "
        f"other threads {costs.other_threads:{sign}6.1f}   µs a row"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.answer_log_threads", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--keys", type=int, default=120_000, help="distinct keys, in random order")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    collect_garbage_less_often()
    keys = [f"k{i}" for i in range(options.keys)]
    random.Random(17).shuffle(keys)  # as the scenario sends them
    with_log: list[RowCosts] = []
    without: list[RowCosts] = []
    with tempfile.TemporaryDirectory() as folder, mock_api() as base:
        for round_number in range(options.rounds):
            for answer_log, costs in ((True, with_log), (False, without)):
                fresh = [f"{round_number}.{answer_log:d}-{key}" for key in keys]  # nothing logged yet
                httpx.post(f"{base}/_reset", timeout=10)
                costs.append(timed_job(base, fresh, Path(folder), answer_log=answer_log))
            print(shown(f"round {round_number + 1}, with the log", with_log[-1]), flush=True)
            print(shown(f"round {round_number + 1}, without", without[-1]), flush=True)
    print(shown("median, with the log", medians(with_log)))
    print(shown("median, without", medians(without)))
    print(shown("the log's cost (paired)", paired_differences(with_log, without), "+"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
