"""Where a flow's own cost goes: `enrich run` over the same file with and without its flow, and
over 10 rows each way (the start-ups), each timed as wall time and as CPU of the job's process and
of the temporary Prefect server it starts.

    .venv/bin/python -m benchmarks.flow_cpu [--rows 1000000] [--rounds 2]

The jobs are the jobs scenario's (bulk 100, the default batches, the mock API on its own core);
the job and its Prefect server share the other core, as the client's pinning passes to its
children. The flow's own cost is the flow's run less the run without it, less the same difference
at 10 rows: what the flow costs a job beyond starting up. CPU of the processes under the job (the
Prefect server) is sampled from /proc every 50 ms (what one spends after its last sample is
counted in the job's); the job's is the whole tree's, from ``getrusage``, less theirs.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.jobs import flow_environment, job_command, write_input
from benchmarks.paired import difference, paired_differences
from benchmarks.run import mock_api

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds_below(pid: int) -> dict[int, float]:
    """CPU seconds (user and system) so far of each process under ``pid``, ``pid`` excluded."""
    found: dict[int, float] = {}
    parents = [pid]
    while parents:
        parent = parents.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:  # ended since it was listed
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                parents.append(child)
                try:
                    stat = Path(f"/proc/{child}/stat").read_text()
                except OSError:
                    continue
                fields = stat[stat.rindex(")") + 2 :].split()  # after the command's name
                found[child] = (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime, stime
    return found


@dataclass(frozen=True)
class JobCosts:
    """One `enrich run`: seconds of wall time, of its process's CPU, of its Prefect server's."""

    wall: float
    job_cpu: float
    server_cpu: float


def timed_run(command: list[str], env: dict[str, str]) -> JobCosts:
    """Run ``command`` to its end (an error if it fails), sampling what its children spend."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    job = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    below: dict[int, float] = {}
    finished = threading.Event()

    def sample() -> None:
        while not finished.wait(0.05):
            below.update(cpu_seconds_below(job.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = job.communicate()
    wall = time.perf_counter() - started
    finished.set()
    sampler.join()
    if job.returncode != 0:
        raise RuntimeError(f"enrich run failed ({job.returncode}): {err[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tree = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    server = sum(below.values())
    return JobCosts(wall, tree - server, server)


def shown(name: str, costs: JobCosts, sign: str = "") -> str:
    return (
        f"{name:<28} wall {costs.wall:{sign}6.1f} s   job process CPU {costs.job_cpu:{sign}6.1f} s   "
        f"Prefect server CPU {costs.server_cpu:{sign}5.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.flow_cpu", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="distinct keys, one a row")
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args(argv)
    runs = {
        f"{rows:,} rows, {mode}": (rows, mode == "flow")
        for rows in (10, options.rows)
        for mode in ("no flow", "flow")
    }
    measured: dict[str, list[JobCosts]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as scratch, mock_api() as base:
        folder = Path(scratch)
        sources = {rows: write_input(folder, rows) for rows in (10, options.rows)}
        env = flow_environment(folder / "prefect-home")
        # Prefect's first run here makes its database: measured, it would read as start-up.
        timed_run(job_command(base, sources[10], folder, flow=True, bulk=100)[0], env)
        for _ in range(options.rounds):
            for name, (rows, flow) in runs.items():
                command, output = job_command(base, sources[rows], folder, flow=flow, bulk=100)
                measured[name].append(timed_run(command, env))
                output.unlink()
                print(shown(name, measured[name][-1]), flush=True)
    tiny_without, tiny_flow, without, with_flow = (measured[name] for name in runs)
    # Round by round: the flow's run less the run without it, less the same at 10 rows (start-up).
    beyond = [difference(flow, alone) for flow, alone in zip(with_flow, without, strict=True)]
    start_up = [difference(flow, alone) for flow, alone in zip(tiny_flow, tiny_without, strict=True)]
    print(shown("the flow's own (paired)", paired_differences(beyond, start_up), "+"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
