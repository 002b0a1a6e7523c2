"""The plots of a benchmark run: every bar and point its median, a min-max bar over the repeats and
its value written beside it; every title names the machine and the day. A figure this plan did not
measure leaves its panel saying so, never empty or guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.figures import Figure, find, mapped_part

# The contenders of the senders scenario, in the order they are drawn.
SENDER_CONTENDERS = (
    "bare aiohttp",
    "bare pyreqwest",
    "bare rnet",
    "bare aiosonic",
    "bare curl_cffi",
    "bare niquests",
    "engine, aiohttp sender",
    "engine, pyreqwest sender",
)


def plot_all(figures: list[Figure], out: Path, caption: str) -> list[Path]:
    """Every plot this run has figures for into ``out``; ``caption`` (the machine and the day)
    heads each. A plot with nothing to show is not drawn, and one left in ``out`` by an earlier
    run is removed: the folder's plots are this run's and its results.json's."""
    import matplotlib

    matplotlib.use("Agg")
    drawings: list[tuple[str, Callable[[list[Figure], Any], bool]]] = [
        ("throughput.png", _throughput),
        ("contenders.png", _contenders),
        ("senders.png", _senders),
        ("memory.png", _memory),
        ("flow-overhead.png", _flow_overhead),
    ]
    drawn = [out / name for name, draw in drawings if _drawn(out / name, draw, figures, caption)]
    for name, _ in drawings:
        if out / name not in drawn:
            (out / name).unlink(missing_ok=True)
    return drawn


def _drawn(
    path: Path, draw: Callable[[list[Figure], Any], bool], figures: list[Figure], caption: str
) -> bool:
    """Whether ``draw`` found anything to draw (then it is saved at ``path``)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 4.5))
    try:
        if not draw(figures, fig):
            return False
        fig.suptitle(caption, fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        return True
    finally:
        plt.close(fig)


def _spread(figures: Sequence[Figure]) -> list[list[float]]:
    """Error bars from the median down to the min and up to the max."""
    return [[f.median - f.min for f in figures], [f.max - f.median for f in figures]]


def _shown(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _labelled_bars(ax: Any, labels: list[str], figures: list[Figure], unit: str) -> None:
    bars = ax.bar(labels, [f.median for f in figures], yerr=_spread(figures), capsize=3)
    ax.bar_label(bars, labels=[_shown(f.median) for f in figures], fontsize=7, padding=2)
    ax.set_ylabel(unit)
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)


def _throughput(figures: list[Figure], fig: Any) -> bool:
    """Rows/s against in flight per latency, the engine and the bare aiohttp loop, with the bound.
    The 0 ms panel is linear: there the two differ by tens of percent, which a log axis hides."""
    sweep = [f for f in figures if f.scenario == "sweep" and f.name in ("enrich engine", "bare aiohttp")]
    latencies = sorted({f.params["latency_ms"] for f in sweep})
    if not latencies:
        return False
    axes = fig.subplots(1, len(latencies), squeeze=False)[0]
    for ax, latency in zip(axes, latencies, strict=True):
        in_flights = sorted({f.params["in_flight"] for f in sweep if f.params["latency_ms"] == latency})
        for name, style in (("enrich engine", "o-"), ("bare aiohttp", "s--")):
            points = sorted(
                (f for f in sweep if f.name == name and f.params["latency_ms"] == latency),
                key=lambda f: f.params["in_flight"],
            )
            xs = [f.params["in_flight"] for f in points]
            ax.errorbar(
                xs, [f.median for f in points], yerr=_spread(points), fmt=style, capsize=3, label=name
            )
            for x, f in zip(xs, points, strict=True):
                ax.annotate(
                    f"{f.median:,.0f}", (x, f.median), fontsize=6, xytext=(3, 3), textcoords="offset points"
                )
        if latency:
            ax.plot(in_flights, [x / (latency / 1000) for x in in_flights], ":", color="grey", label="bound")
            ax.set(yscale="log")
        ax.set(title=f"{latency:g} ms", xlabel="in flight", ylabel="rows/s", xscale="log")
        ax.set_xticks(in_flights, [str(x) for x in in_flights])
        ax.minorticks_off()
        ax.legend(fontsize=7)
    return True


def _contenders(figures: list[Figure], fig: Any) -> bool:
    """Enrich against the baselines at 0 ms and 64 in flight (log: they differ by 100x and more)."""
    picks = [
        ("naive Prefect", find(figures, "baselines", "naive Prefect (task per row)")),
        ("bare httpx", find(figures, "sweep", "bare httpx", latency_ms=0, in_flight=64)),
        ("bare aiohttp", find(figures, "sweep", "bare aiohttp", latency_ms=0, in_flight=64)),
        ("enrich engine", find(figures, "sweep", "enrich engine", latency_ms=0, in_flight=64)),
        ("enrich, 10x dup", find(figures, "duplicates", "enrich engine", dup=10)),
    ]
    bars = [(label, figure) for label, figure in picks if figure is not None]
    if not bars:
        return False
    ax = fig.add_subplot()
    _labelled_bars(ax, [label for label, _ in bars], [f for _, f in bars], "rows/s (log)")
    ax.set(title="rows/s at 0 ms latency, 64 in flight", yscale="log")
    return True


def _senders(figures: list[Figure], fig: Any) -> bool:
    """Each HTTP client's bare loop and the engine on its senders, per (latency, in flight)."""
    points = sorted(
        {(f.params["latency_ms"], f.params["in_flight"]) for f in figures if f.scenario == "senders"}
    )
    if not points:
        return False
    for ax, (latency, in_flight) in zip(fig.subplots(1, len(points), squeeze=False)[0], points, strict=True):
        found = [
            (name.removeprefix("bare "), figure)
            for name in SENDER_CONTENDERS
            if (figure := find(figures, "senders", name, latency_ms=latency, in_flight=in_flight))
        ]
        _labelled_bars(ax, [label for label, _ in found], [f for _, f in found], "rows/s")
        ax.set(title=f"{latency:g} ms, {in_flight} in flight")
    return True


def _memory(figures: list[Figure], fig: Any) -> bool:
    """Peak RSS of `enrich run` as rows grow, without and with the flow (its Prefect server
    apart), and of the job against hostile answers."""
    labelled = []
    for name, suffix in (("peak RSS", ""), ("peak RSS, flow", ", flow")):
        grown = sorted(
            (f for f in figures if f.scenario == "memory" and f.name == name), key=lambda f: f.rows
        )
        labelled += [(f"{f.rows:,} rows{suffix}", f) for f in grown]
    for name, label in (
        ("Prefect server peak RSS", "Prefect server"),
        ("peak RSS, hostile answers", "hostile answers"),
    ):
        if (figure := find(figures, "memory", name)) is not None:
            labelled.append((label, figure))
    if not labelled:
        return False
    ax = fig.add_subplot()
    labels = [label for label, _ in labelled]
    _labelled_bars(ax, labels, [f for _, f in labelled], "MB (peak RSS)")
    mapped = {
        label: part
        for label, figure in labelled
        if (part := find(figures, "memory", mapped_part(figure.name), rows=figure.rows)) is not None
    }
    if mapped:
        parts = ax.bar(list(mapped), [f.median for f in mapped.values()], fill=False, hatch="//")
        shown = [_shown(f.median) for f in mapped.values()]
        legible = {"facecolor": "white", "edgecolor": "none", "pad": 1}
        ax.bar_label(parts, labels=shown, fontsize=7, label_type="center", bbox=legible)
        parts.set_label("of it mapped from files (the libraries' code)")
    ax.axhline(300, linestyle=":", color="grey", label="300 MB (--no-flow)")
    ax.axhline(350, linestyle="--", color="grey", label="350 MB (flow)")
    ax.set(title="peak memory of a job (enrich run)")
    ax.legend(fontsize=7)
    return True


def _flow_overhead(figures: list[Figure], fig: Any) -> bool:
    """The same job's seconds with and without the flow, per batch size, and Prefect's start-up."""
    batches = sorted({f.params["batch_rows"] for f in figures if "batch_rows" in f.params})
    labelled = []
    for batch in batches:
        for name, short in (("enrich run --no-flow", "no flow"), ("enrich run (flow)", "flow")):
            figure = find(figures, "jobs", name, batch_rows=batch)
            if figure is not None:
                labelled.append((f"{short}, {batch:,}-row batches", figure))
    for name in ("start-up, no flow", "start-up, flow"):
        if (figure := find(figures, "jobs", name)) is not None:
            labelled.append((name, figure))
    if not labelled:
        return False
    ax = fig.add_subplot()
    _labelled_bars(ax, [label for label, _ in labelled], [f for _, f in labelled], "seconds")
    rows = next((f.rows for _, f in labelled if f.rows > 10), 0)
    ax.set(title=f"a job of {rows:,} rows with and without its Prefect flow (start-ups: 10-row jobs)")
    return True
