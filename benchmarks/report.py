"""A benchmark run's figures: the results JSON, the markdown table, the targets, the plots."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.figures import Figure, by_rows, find, mapped_part
from benchmarks.plan import Plan
from benchmarks.plots import plot_all
from service import DEFAULT_BATCH_SIZE


@dataclass(frozen=True)
class Target:
    goal: str
    measured: str
    met: bool | None  # None: not measured in this plan


def steady_rate(stamps: list[float], edge_s: float = 1.0) -> float:
    """Requests per second between ``edge_s`` after the first request and ``edge_s`` before the
    last (a job's start and its tail are not its pace); NaN when the job is too short for that."""
    if not stamps:
        return math.nan
    start, end = min(stamps) + edge_s, max(stamps) - edge_s
    if end - start < edge_s:
        return math.nan
    return sum(1 for t in stamps if start <= t < end) / (end - start)


def _ratio_target(goal: str, top: Figure | None, bottom: Figure | float | None, least: float) -> Target:
    if top is None or bottom is None:
        return Target(goal, "not measured in this plan", None)
    below = bottom if isinstance(bottom, float) else bottom.median
    ratio = top.median / below
    return Target(goal, f"{ratio:.2f}x", ratio >= least)


def evaluate(figures: list[Figure]) -> list[Target]:
    """Each target of the benchmarks issue against this run's figures."""
    return [
        *_throughput_targets(figures),
        *_sender_targets(figures),
        *_duplicates_target(figures),
        _ratio_target(
            "the job's answer log: >= 0.97x a job without it (0 ms, 64 in flight)",
            find(figures, "answer-log", "job, answer log"),
            find(figures, "answer-log", "job, no answer log"),
            0.97,
        ),
        _ratio_target(
            "10% 503: >= 0.85x fault-free",
            find(figures, "faults", "10% 503"),
            find(figures, "faults", "no faults"),
            0.85,
        ),
        _auto_target(figures),
        *_rate_targets(figures),
        *_memory_targets(figures),
        _flow_overhead(figures),
    ]


def _rate_targets(figures: list[Figure]) -> list[Target]:
    """A rate is kept (steady state >= 0.97 of it) and never exceeded (rate + burst in any second)."""
    steady = find(figures, "rate", "steady state")
    most = find(figures, "rate", "most in any second")
    if steady is None or most is None:
        return [
            Target(
                "rate 500/s kept (>= 0.97) and never above rate + burst", "not measured in this plan", None
            )
        ]
    rate = float(str(steady.params["rate"]).removesuffix("/s"))
    ceiling = rate + steady.params["burst"]
    kept = steady.min / rate
    whole = find(figures, "rate", "whole job")
    whole_text = "" if whole is None else f"; whole job {whole.median / rate:.3f}, its start included"
    return [
        Target(
            f"rate {rate:,.0f}/s: steady state >= 0.97 of it (lowest of the repeats)",
            "not measured: too short a job" if math.isnan(kept) else f"{kept:.3f}{whole_text}",
            None if math.isnan(kept) else kept >= 0.97,
        ),
        Target(
            f"rate {rate:,.0f}/s: never above rate + burst ({ceiling:,.0f}) in any second",
            f"{most.max:,.0f} at most",
            most.max <= ceiling,
        ),
    ]


def _auto_target(figures: list[Figure]) -> Target:
    fixed = [figure for figure in figures if figure.scenario == "auto" and figure.name.startswith("fixed")]
    best = max(fixed, key=lambda figure: figure.median, default=None)
    goal = 'concurrency = "auto": >= 0.9x the best fixed concurrency (capacity 32, 40 ms)'
    return _ratio_target(goal, find(figures, "auto", "auto (max 256)"), best, 0.9)


def _throughput_targets(figures: list[Figure]) -> list[Target]:
    engine = "enrich engine"
    zero_latency = find(figures, "sweep", engine, latency_ms=0, in_flight=64)
    targets = [
        _ratio_target(
            "per row, 0 ms, 64 in flight: >= 1.0x bare aiohttp",
            zero_latency,
            find(figures, "sweep", "bare aiohttp", latency_ms=0, in_flight=64),
            1.0,
        )
    ]
    for in_flight, least in ((100, 0.95), (500, 0.8)):
        targets.append(
            _ratio_target(
                f"50 ms, {in_flight} in flight: >= {least} of the bound ({in_flight / 0.05:,.0f}/s)",
                find(figures, "sweep", engine, latency_ms=50, in_flight=in_flight),
                in_flight / 0.05,
                least,
            )
        )
    targets.append(
        _ratio_target(
            ">= 50x the naive Prefect pattern (0 ms, 64 in flight)",
            zero_latency,
            find(figures, "baselines", "naive Prefect (task per row)"),
            50,
        )
    )
    targets.append(
        _ratio_target(
            "bulk K=100: >= 20x per-row rows/s (20 ms, 64 in flight)",
            find(figures, "bulk", engine, per_request=100),
            find(figures, "bulk", engine, per_request=1),
            20,
        )
    )
    return targets


def _sender_targets(figures: list[Figure]) -> list[Target]:
    """The engine on the fast sender against the loop a user would write, and against the bound."""
    fast = "engine, pyreqwest sender"
    return [
        _ratio_target(
            "pyreqwest sender, per row, 0 ms, 64 in flight: >= 1.5x bare aiohttp",
            find(figures, "senders", fast, latency_ms=0, in_flight=64),
            find(figures, "senders", "bare aiohttp", latency_ms=0, in_flight=64),
            1.5,
        ),
        _ratio_target(
            f"pyreqwest sender, 50 ms, 500 in flight: >= 0.9 of the bound ({500 / 0.05:,.0f}/s)",
            find(figures, "senders", fast, latency_ms=50, in_flight=500),
            500 / 0.05,
            0.9,
        ),
    ]


def _duplicates_target(figures: list[Figure]) -> list[Target]:
    once = find(figures, "duplicates", "enrich engine", dup=1)
    tenfold = find(figures, "duplicates", "enrich engine", dup=10)
    if not (once and tenfold):
        return []
    distinct = max(1, tenfold.rows // 10)
    ratio = tenfold.median / once.median
    return [
        Target(
            "10x duplicate keys: requests == distinct keys, rows/s >= 5x",
            f"{tenfold.requests:,.0f} requests for {distinct:,} keys, {ratio:.2f}x",
            tenfold.requests == distinct and ratio >= 5,
        )
    ]


def _memory_targets(figures: list[Figure]) -> list[Target]:
    targets = []
    for name, mode, most in (("peak RSS", "--no-flow", 300), ("peak RSS, flow", "flow", 350)):
        grown = by_rows(figures, "memory", name)
        if not grown:
            continue
        highest = max(grown, key=lambda f: f.max)
        rows = ", ".join(f"{f.rows:,}" for f in grown)
        apart = " (its Prefect server apart)" if mode == "flow" else ""
        goal = f"peak memory, {mode}, {rows} rows{apart}: <= {most} MB"
        measured = f"{highest.max:,.0f} MB"
        mapped = find(figures, "memory", mapped_part(name), rows=highest.rows)
        if mapped is not None:
            measured += f" ({mapped.max:,.0f} MB of it mapped from files)"
        targets.append(Target(goal, measured, highest.max <= most))
    grown = by_rows(figures, "memory", "peak RSS")
    if len(grown) > 1:
        steps = [later.max / earlier.max for earlier, later in itertools.pairwise(grown)]
        goal = f"memory growth {' -> '.join(f'{f.rows:,}' for f in grown)} rows, --no-flow: <= 1.15x a step"
        targets.append(Target(goal, ", ".join(f"{step:.2f}x" for step in steps), max(steps) <= 1.15))
    hostile = find(figures, "memory", "peak RSS, hostile answers")
    if hostile is not None:
        goal = f"peak memory with hostile answers ({hostile.params['hostile_keys']} of each kind) <= 300 MB"
        targets.append(Target(goal, f"{hostile.max:,.0f} MB", hostile.max <= 300))
    return targets


def _flow_overhead(figures: list[Figure]) -> Target:
    up_flow, up_alone = find(figures, "jobs", "start-up, flow"), find(figures, "jobs", "start-up, no flow")
    runs = {
        batch: (
            find(figures, "jobs", "enrich run (flow)", batch_rows=batch),
            find(figures, "jobs", "enrich run --no-flow", batch_rows=batch),
        )
        for batch in sorted({f.params["batch_rows"] for f in figures if "batch_rows" in f.params})
    }
    default = runs.get(DEFAULT_BATCH_SIZE, (None, None))
    if not (default[0] and default[1] and up_flow and up_alone):
        return Target("flow overhead <= 1.1x the engine alone", "not measured in this plan", None)
    prefect_start = up_flow.median - up_alone.median

    def overhead(flow: Figure, alone: Figure) -> float:
        return (flow.median - prefect_start) / alone.median

    ratio = overhead(*default)
    measured = f"{ratio:.2f}x (Prefect start-up {prefect_start:.1f} s apart)"
    if ratio <= 0:  # the job took less than the start-up measured alone: noise, not a result
        return Target(_flow_goal(default[0]), f"{measured}: inconsistent, rerun", None)
    for batch, (flow, alone) in runs.items():
        if batch != DEFAULT_BATCH_SIZE and flow and alone:
            measured += f"; {overhead(flow, alone):.2f}x with {batch:,}-row batches"
    return Target(_flow_goal(default[0]), measured, ratio <= 1.1)


def _flow_goal(job: Figure) -> str:
    """The flow-overhead target's wording for a job of ``job.rows`` rows."""
    return f"flow overhead on {job.rows:,} rows ({DEFAULT_BATCH_SIZE:,}-row batches) <= 1.1x the engine alone"


def machine() -> dict[str, Any]:
    versions = {}
    for package in ("prefect", "aiohttp", "httpx", "polars", "pyarrow", "anyio", "uvloop"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
    }


def caption(about: dict[str, Any], day: str) -> str:
    """The machine and the day, as each plot and the table's head show them."""
    versions = ", ".join(f"{name} {version}" for name, version in about["versions"].items() if version)
    return f"{day}; {about['cpus']} CPUs, Python {about['python']}, {about['platform']}; {versions}"


def markdown(figures: list[Figure], targets: list[Target], plan: Plan, elapsed_s: float, head: str) -> str:
    """The targets first, then every figure; ``head`` names the machine and the day."""
    verdict = {True: "yes", False: "**no**", None: "-"}
    lines = [
        f"Plan `{plan.name}` ({plan.repeats} repeat(s) per figure, median [min-max]), {elapsed_s:.0f} s.",
        "",
        f"Machine: {head}.",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *(f"| {t.goal} | {t.measured} | {verdict[t.met]} |" for t in targets),
        "",
        "| scenario | contender | parameters | rows | median | min-max | requests |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for f in figures:
        params = ", ".join(f"{k}={v}" for k, v in f.params.items())
        lines.append(
            f"| {f.scenario} | {f.name} | {params} | {f.rows:,} | {f.median:,.1f} {f.unit} "
            f"| {f.min:,.1f}-{f.max:,.1f} | {f.requests:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_report(figures: list[Figure], plan: Plan, elapsed_s: float, out: Path) -> list[Path]:
    """Write results.json, results.md and the plots into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    targets = evaluate(figures)
    about, day = machine(), datetime.now(UTC).date().isoformat()
    head = caption(about, day)
    results = {
        "plan": dataclasses.asdict(plan),
        "machine": about,
        "date": day,
        "elapsed_s": elapsed_s,
        "figures": [dataclasses.asdict(f) for f in figures],
        "targets": [dataclasses.asdict(t) for t in targets],
    }
    json_path, md_path = out / "results.json", out / "results.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(markdown(figures, targets, plan, elapsed_s, head))
    print("\n" + md_path.read_text())
    return [json_path, md_path, *plot_all(figures, out, head)]
