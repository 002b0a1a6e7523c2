"""A benchmark run's figures: the results JSON, the markdown table, the targets, the plots."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.plan import Plan
from service import DEFAULT_BATCH_SIZE


@dataclass
class Figure:
    scenario: str
    name: str
    params: dict[str, Any]
    rows: int
    values: list[float]
    requests: float
    unit: str = "rows/s"
    median: float = field(init=False)
    min: float = field(init=False)
    max: float = field(init=False)

    def __post_init__(self) -> None:
        self.median = statistics.median(self.values)
        self.min = min(self.values)
        self.max = max(self.values)


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


def _find(figures: list[Figure], scenario: str, name: str, **params: Any) -> Figure | None:
    for figure in figures:
        if (
            figure.scenario == scenario
            and figure.name == name
            and all(figure.params.get(k) == v for k, v in params.items())
        ):
            return figure
    return None


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
            _find(figures, "answer-log", "job, answer log"),
            _find(figures, "answer-log", "job, no answer log"),
            0.97,
        ),
        _ratio_target(
            "10% 503: >= 0.85x fault-free",
            _find(figures, "faults", "10% 503"),
            _find(figures, "faults", "no faults"),
            0.85,
        ),
        _auto_target(figures),
        *_rate_targets(figures),
        *_memory_targets(figures),
        _flow_overhead(figures),
    ]


def _rate_targets(figures: list[Figure]) -> list[Target]:
    """A rate is kept (steady state >= 0.97 of it) and never exceeded (rate + burst in any second)."""
    steady = _find(figures, "rate", "steady state")
    most = _find(figures, "rate", "most in any second")
    if steady is None or most is None:
        return [
            Target(
                "rate 500/s kept (>= 0.97) and never above rate + burst", "not measured in this plan", None
            )
        ]
    rate = float(str(steady.params["rate"]).removesuffix("/s"))
    ceiling = rate + steady.params["burst"]
    kept = steady.min / rate
    whole = _find(figures, "rate", "whole job")
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
    return _ratio_target(goal, _find(figures, "auto", "auto (max 256)"), best, 0.9)


def _throughput_targets(figures: list[Figure]) -> list[Target]:
    engine = "enrich engine"
    zero_latency = _find(figures, "sweep", engine, latency_ms=0, in_flight=64)
    targets = [
        _ratio_target(
            "per row, 0 ms, 64 in flight: >= 1.0x bare aiohttp",
            zero_latency,
            _find(figures, "sweep", "bare aiohttp", latency_ms=0, in_flight=64),
            1.0,
        )
    ]
    for in_flight, least in ((100, 0.95), (500, 0.8)):
        targets.append(
            _ratio_target(
                f"50 ms, {in_flight} in flight: >= {least} of the bound ({in_flight / 0.05:,.0f}/s)",
                _find(figures, "sweep", engine, latency_ms=50, in_flight=in_flight),
                in_flight / 0.05,
                least,
            )
        )
    targets.append(
        _ratio_target(
            ">= 50x the naive Prefect pattern (0 ms, 64 in flight)",
            zero_latency,
            _find(figures, "baselines", "naive Prefect (task per row)"),
            50,
        )
    )
    targets.append(
        _ratio_target(
            "bulk K=100: >= 20x per-row rows/s (20 ms, 64 in flight)",
            _find(figures, "bulk", engine, per_request=100),
            _find(figures, "bulk", engine, per_request=1),
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
            _find(figures, "senders", fast, latency_ms=0, in_flight=64),
            _find(figures, "senders", "bare aiohttp", latency_ms=0, in_flight=64),
            1.5,
        ),
        _ratio_target(
            f"pyreqwest sender, 50 ms, 500 in flight: >= 0.9 of the bound ({500 / 0.05:,.0f}/s)",
            _find(figures, "senders", fast, latency_ms=50, in_flight=500),
            500 / 0.05,
            0.9,
        ),
    ]


def _duplicates_target(figures: list[Figure]) -> list[Target]:
    once = _find(figures, "duplicates", "enrich engine", dup=1)
    tenfold = _find(figures, "duplicates", "enrich engine", dup=10)
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
    memory = sorted(
        (f for f in figures if f.scenario == "memory" and f.name == "peak RSS"), key=lambda f: f.rows
    )
    targets = []
    if memory:
        peak = max(f.max for f in memory)
        targets.append(Target("peak memory <= 500 MB", f"{peak:,.0f} MB", peak <= 500))
    if len(memory) > 1:
        growth = memory[-1].max / memory[-2].max
        goal = f"memory {memory[-2].rows:,} -> {memory[-1].rows:,} rows: <= 1.2x"
        targets.append(Target(goal, f"{growth:.2f}x", growth <= 1.2))
    hostile = _find(figures, "memory", "peak RSS, hostile answers")
    if hostile is not None:
        goal = f"peak memory with hostile answers ({hostile.params['hostile_keys']} of each kind) <= 300 MB"
        targets.append(Target(goal, f"{hostile.max:,.0f} MB", hostile.max <= 300))
    return targets


def _flow_overhead(figures: list[Figure]) -> Target:
    up_flow, up_alone = _find(figures, "jobs", "start-up, flow"), _find(figures, "jobs", "start-up, no flow")
    runs = {
        batch: (
            _find(figures, "jobs", "enrich run (flow)", batch_rows=batch),
            _find(figures, "jobs", "enrich run --no-flow", batch_rows=batch),
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


def markdown(figures: list[Figure], targets: list[Target], plan: Plan, elapsed_s: float) -> str:
    lines = [
        f"Plan `{plan.name}` ({plan.repeats} repeat(s) per figure, median [min-max]), {elapsed_s:.0f} s.",
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
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    verdict = {True: "yes", False: "**no**", None: "-"}
    lines += [f"| {t.goal} | {t.measured} | {verdict[t.met]} |" for t in targets]
    return "\n".join(lines) + "\n"


def plot(figures: list[Figure], out: Path) -> list[Path]:
    """Throughput vs in-flight per latency (with the bound), and Enrich against the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    return [
        _plot_throughput(figures, out / "throughput.png"),
        _plot_contenders(figures, out / "contenders.png"),
    ]


def _plot_throughput(figures: list[Figure], path: Path) -> Path:
    import matplotlib.pyplot as plt

    sweep = [f for f in figures if f.scenario == "sweep" and f.name in ("enrich engine", "bare aiohttp")]
    latencies = sorted({f.params["latency_ms"] for f in sweep})
    in_flights = sorted({f.params["in_flight"] for f in sweep})
    fig, axes = plt.subplots(
        1, max(1, len(latencies)), figsize=(5 * max(1, len(latencies)), 4), squeeze=False
    )
    for ax, latency in zip(axes[0], latencies, strict=False):
        for name, style in (("enrich engine", "o-"), ("bare aiohttp", "s--")):
            points = sorted(
                (f.params["in_flight"], f.median)
                for f in sweep
                if f.name == name and f.params["latency_ms"] == latency
            )
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=name)
        if latency:
            bound = [x / (latency / 1000) for x in in_flights]
            ax.plot(in_flights, bound, ":", color="grey", label="bound in_flight/latency")
        ax.set(title=f"{latency:g} ms", xlabel="in flight", ylabel="rows/s", xscale="log", yscale="log")
        ax.set_xticks(in_flights, [str(x) for x in in_flights])
        ax.minorticks_off()
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_contenders(figures: list[Figure], path: Path) -> Path:
    import matplotlib.pyplot as plt

    picks: list[tuple[str, Callable[[], Figure | None]]] = [
        ("naive Prefect", lambda: _find(figures, "baselines", "naive Prefect (task per row)")),
        ("bare httpx", lambda: _find(figures, "sweep", "bare httpx", latency_ms=0, in_flight=64)),
        ("bare aiohttp", lambda: _find(figures, "sweep", "bare aiohttp", latency_ms=0, in_flight=64)),
        ("enrich engine", lambda: _find(figures, "sweep", "enrich engine", latency_ms=0, in_flight=64)),
        ("enrich, 10x dup", lambda: _find(figures, "duplicates", "enrich engine", dup=10)),
    ]
    bars = [(label, figure) for label, pick in picks if (figure := pick()) is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([label for label, _ in bars], [f.median for _, f in bars])
    ax.set(title="rows/s at 0 ms latency, 64 in flight", ylabel="rows/s (log)", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(figures: list[Figure], plan: Plan, elapsed_s: float, out: Path) -> list[Path]:
    """Write results.json, results.md and the plots into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    targets = evaluate(figures)
    results = {
        "plan": dataclasses.asdict(plan),
        "machine": machine(),
        "elapsed_s": elapsed_s,
        "figures": [dataclasses.asdict(f) for f in figures],
        "targets": [dataclasses.asdict(t) for t in targets],
    }
    json_path, md_path = out / "results.json", out / "results.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(markdown(figures, targets, plan, elapsed_s))
    print("\n" + md_path.read_text())
    return [json_path, md_path, *plot(figures, out)]
