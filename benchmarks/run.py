"""One benchmark run: every contender and scenario against the mock API, on this machine, now.

    .venv/bin/python -m benchmarks [--quick | --full | --smoke] [--only SCENARIO ...] [--out FOLDER]

Only the whole default plan writes ``benchmarks/results`` unless told otherwise; another plan or
``--only`` writes ``benchmarks/results-PLAN-SCENARIO...`` (``--only memory``: ``results-memory``).

The mock API runs in its own process, pinned to the last core where the OS allows (the client
and the jobs it starts stay on the others). Every figure is rows/s (median, min, max over the
plan's repeats; repeats interleave the contenders compared); ratios compare figures of this run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks import contenders, jobs, online, senders
from benchmarks.figures import Figure, mapped_part
from benchmarks.plan import PLANS, Plan
from benchmarks.report import steady_rate, write_report
from enrich.cli.process import collect_garbage_less_often
from flows.local_server import start_local_server, stop_local_server
from service import DEFAULT_BATCH_SIZE
from service.testing import start_mock_api, stop_mock_api

Contender = Callable[[str, list[str]], Awaitable[float]]


# Every core this process may use, read once: nested mock APIs must all go to the last one.
CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


@contextmanager
def mock_api(*options: str) -> Iterator[str]:
    """The mock API on the last core (the client keeps the others); yields its URL."""
    server, base = start_mock_api(*options)
    if len(CORES) > 1:
        os.sched_setaffinity(server.pid, {CORES[-1]})
        os.sched_setaffinity(0, set(CORES[:-1]))
    try:
        yield base
    finally:
        stop_mock_api(server)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_tree_peak_mb(pid: int) -> float:
    """The peak RSS (VmHWM) of ``pid`` and of its children, summed (Linux /proc)."""
    total_kib = 0
    for each in (pid, *_children(pid)):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{each}/status").read_text()
            total_kib += int(
                next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]
            )
    return total_kib / 1024


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *_children(int(child))]
    return found


def requests_on(base: str) -> int:
    return int(httpx.get(f"{base}/_stats", timeout=10).json()["requests"])


class Bench:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.figures: list[Figure] = []
        self.runs = 0

    def measure(
        self, scenario: str, params: dict[str, Any], keys: list[str], runs: dict[str, tuple[str, Contender]]
    ) -> list[Figure]:
        """Run each of ``runs`` (name: (mock API URL, contender)) over fresh copies of ``keys``.

        Repeats interleave the contenders, so a noisy spell on the machine hits them alike.
        """
        values: dict[str, list[float]] = {name: [] for name in runs}
        requests: dict[str, list[int]] = {name: [] for name in runs}
        for repeat in range(self.plan.repeats):
            for name, (base, run) in runs.items():
                self.runs += 1
                fresh = [f"{self.runs}.{repeat}-{key}" for key in keys]  # nothing cached on either side
                httpx.post(f"{base}/_reset", timeout=10)
                seconds = asyncio.run(run(base, fresh))
                values[name].append(len(keys) / seconds)
                requests[name].append(requests_on(base))
        figures = []
        for name in runs:
            figure = Figure(
                scenario, name, params, len(keys), values[name], statistics.median(requests[name])
            )
            self.figures.append(figure)
            figures.append(figure)
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            print(f"  {scenario:<11} {name:<20} {shown:<36} {figure.median:>10,.0f} rows/s", flush=True)
        return figures


def _bound(loop: Callable[[str, list[str], int], Awaitable[float]], in_flight: int) -> Contender:
    return lambda base, keys: loop(base, keys, in_flight)


def engine_at(in_flight: int, bulk: int = 0) -> Contender:
    return lambda base, keys: contenders.engine(base, keys, in_flight, bulk)


def engine_on_httpx(in_flight: int) -> Contender:
    return lambda base, keys: contenders.engine(base, keys, in_flight, transport="httpx")


def sweep(bench: Bench) -> None:
    """Throughput vs in-flight at each latency: the engine against a bare aiohttp loop."""
    for latency in bench.plan.latencies_ms:
        with mock_api("--latency-ms", str(latency)) as base:
            for in_flight in bench.plan.in_flights:
                keys = [f"k{i}" for i in range(bench.plan.keys_for(latency, in_flight))]
                runs = {
                    "bare aiohttp": (base, _bound(contenders.bare_aiohttp, in_flight)),
                    "enrich engine": (base, engine_at(in_flight)),
                }
                params = {"latency_ms": latency, "in_flight": in_flight}
                bench.measure("sweep", params, keys, runs)
                if latency == 0 and in_flight == 64:  # about 15x slower: a tenth of the keys
                    httpx_loop: dict[str, tuple[str, Contender]] = {
                        "bare httpx": (base, _bound(contenders.bare_httpx, in_flight)),
                        "engine, httpx sender": (base, engine_on_httpx(in_flight)),
                    }
                    bench.measure("sweep", params, keys[: max(200, len(keys) // 10)], httpx_loop)


def faults(bench: Bench) -> None:
    """The same job against a fault-free API and, at the same time, one answering 10% with 503."""
    # Four times the usual length: the retries' backoff tail (a few hundred ms) is not the figure.
    keys = [f"k{i}" for i in range(4 * bench.plan.keys_for(0, 64))]
    with mock_api() as clean, mock_api("--rate-503", "0.1") as flaky:
        runs = {"no faults": (clean, engine_at(64)), "10% 503": (flaky, engine_at(64))}
        bench.measure("faults", {"in_flight": 64}, keys, runs)
    # Each 429 pauses the whole job for its Retry-After (1 s): a few hundred rows show the cost.
    mix = keys[: max(100, int(bench.plan.seconds * 100))]
    with mock_api("--rate-503", "0.1", "--rate-429", "0.05", "--retry-after", "1") as base:
        bench.measure("faults", {"in_flight": 64}, mix, {"10% 503 + 5% 429": (base, engine_at(64))})


def pacing(bench: Bench) -> None:
    """A quota-limited API (told in RateLimit headers, 429 past it): the engine paced by the
    headers against the same engine running into the wall. The requests column shows the 429s."""
    # Three windows' worth of keys. Quotas announce whole seconds: a 1 s window (the smoke plan's,
    # only to run the scenario) would be paced on resets rounded up to twice their length.
    window_s = 1 if bench.plan.seconds < 1 else 5
    # Well above the 64 in flight: the unpaced job would otherwise trip the breaker on 429s.
    quota = max(200, int(bench.plan.seconds * 500)) * window_s
    keys = [f"k{i}" for i in range((3 if window_s > 1 else 1) * quota)]  # the smoke plan: one window
    with mock_api("--quota", str(quota), "--quota-window-s", str(window_s), "--retry-after", "1") as base:
        runs: dict[str, tuple[str, Contender]] = {
            "paced by headers": (base, lambda url, fresh: contenders.engine(url, fresh, 64)),
            "not paced": (
                base,
                lambda url, fresh: contenders.engine(url, fresh, 64, limits="pace_from_headers = false\n"),
            ),
        }
        bench.measure("pacing", {"in_flight": 64, "quota": f"{quota}/{window_s}s"}, keys, runs)


def rate_kept(bench: Bench) -> None:
    """Against a fast API, `rate = "500/s"`: the whole job's rows/s (start included), the rate the
    server saw in steady state (its first and last second left out), and the most requests it saw
    in any one second, never to pass rate + burst."""
    rate, burst = 500, 25  # burst: the spec's default, 50 ms worth
    keys = [f"k{i}" for i in range(int(rate * max(4.0, 5 * bench.plan.seconds)))]  # 1 s each end, 2 s between
    whole, steady, most = [], [], []
    with mock_api() as base:
        for repeat in range(bench.plan.repeats):
            httpx.post(f"{base}/_reset", timeout=10)
            fresh = [f"rate{repeat}-{key}" for key in keys]
            seconds = asyncio.run(contenders.engine(base, fresh, 64, limits=f'rate = "{rate}/s"\n'))
            seen = httpx.get(f"{base}/_stats", timeout=30).json()
            whole.append(len(keys) / seconds)
            steady.append(steady_rate([t for stamps in seen["times"].values() for t in stamps]))
            most.append(float(seen["most_per_second"]))
    params = {"rate": f"{rate}/s", "burst": burst, "in_flight": 64}
    for name, values, unit in (
        ("whole job", whole, "rows/s"),
        ("steady state", steady, "requests/s"),
        ("most in any second", most, "requests"),
    ):
        bench.figures.append(Figure("rate", name, params, len(keys), values, len(keys), unit=unit))
        print(f"  rate        {name:<20} {statistics.median(values):>10,.0f} {unit}", flush=True)


def adaptive_concurrency(bench: Bench) -> None:
    """An API of 32 workers (the mock's capacity mode: past 32 in flight its 40 ms grow with the
    queue, past 64 it answers 503): concurrency = "auto" against fixed levels around the capacity.
    The requests column shows the 503s."""
    capacity, latency_ms = 32, 40
    keys = [f"k{i}" for i in range(bench.plan.keys_for(latency_ms, capacity))]
    with mock_api("--capacity", str(capacity), "--latency-ms", str(latency_ms)) as base:
        runs: dict[str, tuple[str, Contender]] = {
            "auto (max 256)": (base, lambda url, fresh: contenders.engine(url, fresh, "auto")),
        }
        for fixed in (16, 32, 48, 64):  # past 64 in flight, 503s (at 128, half: the breaker stops it)
            runs[f"fixed {fixed}"] = (base, engine_at(fixed))
        bench.measure("auto", {"capacity": capacity, "latency_ms": latency_ms}, keys, runs)


def duplicates_and_bulk(bench: Bench) -> None:
    """10x duplicate keys at 0 ms; bulk (100 keys per request) against per row at 20 ms."""
    n = bench.plan.keys_for(0, 64)
    with mock_api() as base:
        engine = {"enrich engine": (base, engine_at(64))}
        bench.measure("duplicates", {"dup": 1}, [f"k{i}" for i in range(n)], engine)
        bench.measure("duplicates", {"dup": 10}, [f"k{i % max(1, n // 10)}" for i in range(n)], engine)
    with mock_api("--latency-ms", "20") as base:
        per_row = [f"k{i}" for i in range(bench.plan.keys_for(20, 64))]
        bench.measure("bulk", {"per_request": 1}, per_row, {"enrich engine": (base, engine_at(64))})
        bulk = [f"k{i}" for i in range(bench.plan.keys_for(20, 64, per_request=100))]
        bench.measure("bulk", {"per_request": 100}, bulk, {"enrich engine": (base, engine_at(64, 100))})


def _in_a_process_of_its_own(contender: str, in_flight: int, peaks_mb: list[float]) -> Contender:
    """``benchmarks.senders``'s ``contender`` run in a fresh process; its peak memory kept."""

    async def run(base: str, keys: list[str]) -> float:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.senders",
            contender,
            base,
            str(in_flight),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(child.communicate("\n".join(keys).encode()), timeout=600)
        if child.returncode != 0:
            raise RuntimeError(f"{contender} failed (exit {child.returncode})")
        report = json.loads(out)
        peaks_mb.append(report["peak_rss_mb"])
        return float(report["seconds"])

    return run


def sender_libraries(bench: Bench) -> None:
    """The HTTP clients a sender could be built on, each as a bare loop, and the engine on each of
    its fast senders: every run in a process of its own, on uvloop, so its memory is its own."""
    absent = [library for library in senders.LOOPS if not senders.installed(library)]
    if absent:
        print(f"  senders        not installed, not measured: {', '.join(absent)}", flush=True)
    chosen = {f"bare {lib}": lib for lib in senders.LOOPS if lib not in absent}
    chosen |= {f"engine, {sender} sender": f"engine:{sender}" for sender in senders.ENGINES}
    for latency, in_flight in bench.plan.sender_points:
        keys = [f"k{i}" for i in range(bench.plan.keys_for(latency, in_flight))]
        peaks: dict[str, list[float]] = {name: [] for name in chosen}
        params = {"latency_ms": latency, "in_flight": in_flight}
        with mock_api("--latency-ms", str(latency)) as base:
            runs = {
                name: (base, _in_a_process_of_its_own(contender, in_flight, peaks[name]))
                for name, contender in chosen.items()
            }
            bench.measure("senders", params, keys, runs)
        for name, values in peaks.items():
            bench.figures.append(
                Figure("senders", f"{name}, peak RSS", params, len(keys), values, 0, unit="MB")
            )


def naive_prefect(bench: Bench, home: Path) -> None:
    """The tutorial's one task per row (in its own process; Prefect's start-up not counted)."""
    with mock_api() as base:
        values = []
        for _ in range(bench.plan.repeats):
            env = jobs.flow_environment(home / "naive")
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.naive_prefect", base, str(bench.plan.naive_rows)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
                timeout=600,
            )
            report = json.loads(done.stdout.strip().splitlines()[-1])
            values.append(report["rows"] / report["seconds"])
        figure = Figure(
            "baselines",
            "naive Prefect (task per row)",
            {"in_flight": "task runner"},
            bench.plan.naive_rows,
            values,
            requests_on(base),
        )
        bench.figures.append(figure)
        print(f"  baselines      naive Prefect                {figure.median:>12,.0f} rows/s", flush=True)


def whole_jobs(bench: Bench, folder: Path) -> None:
    """`enrich run` with and without the flow on the same file, and their start-up."""
    with mock_api() as base:
        tiny = jobs.write_input(folder, 10)
        # The first flow run in a new PREFECT_HOME also creates Prefect's database, once per
        # machine: paid here, untimed, or it would count as every job's start-up.
        if bench.plan.warm_prefect_first:
            jobs.run_job(base, tiny, folder, flow=True, bulk=100)
        for flow in (False, True):
            runs = [jobs.run_job(base, tiny, folder, flow=flow, bulk=100) for _ in range(bench.plan.repeats)]
            name = "start-up, flow" if flow else "start-up, no flow"
            bench.figures.append(
                Figure("jobs", name, {"rows": 10}, 10, [r.seconds for r in runs], 0, unit="s")
            )
        source = jobs.write_input(folder, bench.plan.flow_rows)
        for batch_rows in (DEFAULT_BATCH_SIZE, bench.plan.large_batch_rows):
            if batch_rows is not None:
                _flow_against_engine(bench, base, source, folder, batch_rows)


def memory_growth(bench: Bench, folder: Path) -> None:
    """Peak RSS of the job process on inputs of the memory targets' shape (``jobs.write_wide_input``),
    without and with the flow; the flows report to one Prefect server started for them, whose own
    peak is reported apart (a temporary server of each job's own would count in its process tree)."""
    with mock_api() as base, _prefect_server(folder / "prefect-memory-home") as (api_url, server_peak_mb):
        for rows in bench.plan.memory_rows:
            source = jobs.write_wide_input(folder, rows)
            for flow, name in ((False, "peak RSS"), (True, "peak RSS, flow")):
                run = jobs.run_job(base, source, folder, flow=flow, bulk=100, prefect_api=api_url)
                params = {"rows": rows, "distinct_keys": jobs.WIDE_DISTINCT_KEYS}
                bench.figures.append(Figure("memory", name, params, rows, [run.peak_mb], 0, unit="MB"))
                shown = f"{rows:,} rows{', flow' if flow else ''}"
                mapped = ""
                if run.mapped_files_mb is not None:
                    values = [run.mapped_files_mb]
                    bench.figures.append(
                        Figure("memory", mapped_part(name), params, rows, values, 0, unit="MB")
                    )
                    mapped = f" ({run.mapped_files_mb:.0f} MB of it mapped from files)"
                print(f"  memory         {shown:<24} {run.peak_mb:>10.0f} MB peak{mapped}", flush=True)
        peak = server_peak_mb()
    if peak is not None:
        bench.figures.append(Figure("memory", "Prefect server peak RSS", {}, 0, [peak], 0, unit="MB"))
        print(f"  memory         Prefect server (apart)   {peak:>10.0f} MB peak", flush=True)


@contextmanager
def _prefect_server(home: Path) -> Iterator[tuple[str | None, Callable[[], float | None]]]:
    """A Prefect server for the memory scenario's flows and what reads its processes' peak RSS
    (summed); the shared one when the run was given one (its peak then not measured)."""
    if os.environ.get(jobs.SHARED_PREFECT_API):
        yield None, lambda: None
        return
    server, url = start_local_server(free_port(), home=home)
    try:
        yield url, lambda: process_tree_peak_mb(server.pid)
    finally:
        stop_local_server(server)


def _flow_against_engine(bench: Bench, base: str, source: Path, folder: Path, batch_rows: int) -> None:
    """The same job with and without the flow, interleaved so a noisy spell hits both alike."""
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(bench.plan.repeats):
        for flow in (False, True):
            run = jobs.run_job(base, source, folder, flow=flow, bulk=100, batch_rows=batch_rows)
            seconds[flow].append(run.seconds)
    params = {"rows": bench.plan.flow_rows, "per_request": 100, "batch_rows": batch_rows}
    for flow, values in seconds.items():
        name = "enrich run (flow)" if flow else "enrich run --no-flow"
        bench.figures.append(Figure("jobs", name, params, bench.plan.flow_rows, values, 0, unit="s"))
        shown = f"{name}, batches of {batch_rows:,}"
        print(f"  jobs           {shown:<44} {statistics.median(values):>10.1f} s", flush=True)


def hostile_answers(bench: Bench, folder: Path) -> None:
    """Peak memory of a job (64 in flight, the default 16 MiB cap) whose API answers some keys with
    gzip bombs inflating to 1 GiB, 2 GiB bodies (chunked or announced) and bodies that never end."""
    with mock_api() as base:
        per_kind = bench.plan.hostile_keys
        source = jobs.write_hostile_input(folder, per_kind)
        run = jobs.run_job(base, source, folder, flow=False, bulk=0)
        rows = per_kind * len(jobs.HOSTILE_KINDS) + 1000
        bench.figures.append(
            Figure(
                "memory",
                "peak RSS, hostile answers",
                {"hostile_keys": per_kind},
                rows,
                [run.peak_mb],
                0,
                unit="MB",
            )
        )
        print(
            f"  memory         hostile answers ({per_kind} of each kind) {run.peak_mb:>10.0f} MB peak",
            flush=True,
        )


def answer_log(bench: Bench, folder: Path) -> None:
    """What the job's answer log costs: whole jobs (files, batches, no cache) at 0 ms / 64 in
    flight, with and without it, interleaved."""
    with mock_api() as base:
        keys = [f"k{i}" for i in range(4 * bench.plan.keys_for(0, 64))]
        # In the order of a user's table, not sorted: a log kept in key order paid per page then.
        random.Random(17).shuffle(keys)
        runs = {
            "job, answer log": (base, lambda b, k: contenders.job(b, k, folder, 64, answer_log=True)),
            "job, no answer log": (base, lambda b, k: contenders.job(b, k, folder, 64, answer_log=False)),
        }
        bench.measure("answer-log", {"latency_ms": 0, "in_flight": 64}, keys, runs)


def online_api(bench: Bench, folder: Path) -> None:
    """enrich api against the API straight, at 20 ms: latency, rows/s, dedup across callers."""
    requests = max(64, int(2000 * bench.plan.seconds))
    keys = online.ROWS_PER_REQUEST * max(2, min(10, requests // 200))
    with mock_api("--latency-ms", "20") as api:
        with online.online_endpoint(api, folder, free_port()) as base:
            plan = bench.plan
            figures = online.latency_figures(api, base, requests, plan.repeats, plan.online_callers)
            figures += online.rate_figures(base, requests, plan.repeats)
            figures.append(online.dedup_figure(api, base, keys, "no cache"))
        with online.online_endpoint(api, folder, free_port(), cache=folder / "online-cache") as base:
            figures.append(online.dedup_figure(api, base, keys, "with its cache"))
    bench.figures += figures
    for figure in figures:
        shown = ", ".join(f"{k}={v}" for k, v in figure.params.items())
        print(f"  {figure.scenario:<12} {figure.name:<20} {shown:<44} {figure.median:>10,.1f} {figure.unit}")
    print(online.summary(figures), flush=True)


SCENARIOS: dict[str, Callable[[Bench, Path], None]] = {
    "sweep": lambda bench, scratch: sweep(bench),
    "faults": lambda bench, scratch: faults(bench),
    "pacing": lambda bench, scratch: pacing(bench),
    "rate": lambda bench, scratch: rate_kept(bench),
    "auto": lambda bench, scratch: adaptive_concurrency(bench),
    "duplicates-bulk": lambda bench, scratch: duplicates_and_bulk(bench),
    "senders": lambda bench, scratch: sender_libraries(bench),
    "naive": naive_prefect,
    "jobs": whole_jobs,
    "memory": memory_growth,
    "hostile": hostile_answers,
    "answer-log": answer_log,
    "online": online_api,
}


def results_folder(plan: str, scenarios: list[str]) -> Path:
    """Where a run writes when not told: only the whole default plan writes ``benchmarks/results``
    (the committed figures README quotes); a smaller plan or a few scenarios must not replace them
    with a report of "not measured" targets."""
    suffix = ([] if plan == "default" else [plan]) + ([] if scenarios == list(SCENARIOS) else scenarios)
    return Path("benchmarks/" + "-".join(["results", *suffix]))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    for name in ("smoke", "quick", "full"):
        size.add_argument(f"--{name}", dest="plan", action="store_const", const=name)
    parser.add_argument(
        "--out",
        help="where results, table and plots go (default: benchmarks/results for the default plan,"
        " benchmarks/results-PLAN-SCENARIO... for another plan or --only)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable); targets needing others read 'not measured'",
    )
    parser.add_argument(
        "--prefect-api-url",
        help="flow runs report to this Prefect server instead of each starting a temporary one"
        " (their start-up figures then measure connecting to it)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.prefect_api_url:
        os.environ[jobs.SHARED_PREFECT_API] = args.prefect_api_url
    # Every contender runs in this process as `enrich run` runs jobs (the default asyncio loop for
    # all, though): a baseline retaining nothing barely notices; the engine, which keeps every
    # key's outcome until its frame is built, spent a fifth of its bulk time collecting garbage.
    collect_garbage_less_often()
    plan = PLANS[args.plan or "default"]
    chosen = [name for name in SCENARIOS if not args.only or name in args.only]
    out = Path(args.out) if args.out else results_folder(plan.name, chosen)
    bench = Bench(plan)
    started = time.perf_counter()
    print(f"benchmark plan {plan.name!r}: {', '.join(chosen)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="enrich-bench-") as scratch:
        for name in chosen:
            scenario_started = time.perf_counter()
            SCENARIOS[name](bench, Path(scratch))
            print(f"  ({name}: {time.perf_counter() - scenario_started:.0f} s)", flush=True)
    elapsed = time.perf_counter() - started
    paths = write_report(bench.figures, plan, elapsed, out)
    print(f"\nwrote {', '.join(str(p) for p in paths)} in {elapsed:.0f} s")
    return 0
