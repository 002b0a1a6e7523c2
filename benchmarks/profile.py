"""Where the engine's time goes: ``enrich_frame`` against the mock API under pyinstrument.

    .venv/bin/python -m benchmarks.profile [--keys 100000] [--latency-ms 0] [--in-flight 64] [--bulk 0]
                                           [--transport aiohttp] [--python-gc] [--no-profiler]

Runs as the benchmark's engine contender does (the mock API on its own core, the job processes'
garbage collector settings), prints rows/s and the share of the time spent in each of the engine's
own functions and in the HTTP sender, and writes the whole profile as HTML next to the results.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from pyinstrument import Profiler

from benchmarks import contenders
from benchmarks.run import mock_api
from enrich.cli.process import collect_garbage_less_often
from service import SENDER_NAMES

# The engine's modules (its sender among them: time inside it is aiohttp's, as in the bare loop).
_SHOWN = ("service/", "benchmarks/contenders.py")


def _own_shares(profiler: Profiler) -> list[str]:
    """Lines of the flat profile (time including callees) for the engine's functions."""
    text = profiler.output_text(flat=True, flat_time="total", time="percent_of_total", show_all=True)
    return [line for line in text.splitlines() if any(part in line for part in _SHOWN)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--bulk", type=int, default=0, help="keys per request (0: one key per request)")
    parser.add_argument(
        "--transport", choices=SENDER_NAMES, default=None, help="the sender (the spec's default)"
    )
    parser.add_argument("--python-gc", action="store_true", help="keep Python's collector defaults")
    parser.add_argument("--no-profiler", action="store_true", help="only the rows/s, at full speed")
    parser.add_argument("--out", default="benchmarks/results", help="where the HTML profile goes")
    args = parser.parse_args(argv)
    if not args.python_gc:
        collect_garbage_less_often()
    keys = [f"p{i}" for i in range(args.keys)]
    profiler = None if args.no_profiler else Profiler(async_mode="disabled")
    with mock_api("--latency-ms", str(args.latency_ms)) as base:
        run = contenders.engine(base, keys, args.in_flight, args.bulk, transport=args.transport)
        if profiler is None:
            seconds = asyncio.run(run)
        else:
            with profiler:
                seconds = asyncio.run(run)
    if profiler is None:
        print(f"{args.keys / seconds:,.0f} rows/s")
        return 0
    print(f"{args.keys / seconds:,.0f} rows/s (under the profiler)")
    print("\n".join(_own_shares(profiler)[:30]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    html = out / "engine-profile.html"
    html.write_text(profiler.output_html())
    print(f"wrote {html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
