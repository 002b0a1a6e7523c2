"""The engine's own cost per request: ``enrich_frame`` against the bare aiohttp loop a user would
write, at 0 ms latency and 64 in flight (where the client's core is the bound), in paired rounds.

    .venv/bin/python -m benchmarks.overhead [--keys 10000] [--rounds 15]

Each round runs the bare loop, then the engine, on the same keys against the same mock API (on its
own core, garbage collection as ``enrich run`` sets it). The machine's speed drifts by a fifth
between rounds here, so each round's engine is compared with that round's bare loop: the median
of those paired differences is the engine's cost per request, and of the paired ratios its speed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys

from benchmarks import contenders
from benchmarks.run import mock_api
from enrich.cli.process import collect_garbage_less_often

IN_FLIGHT = 64


def paired_rounds(base: str, keys: list[str], rounds: int) -> tuple[list[float], list[float]]:
    """Microseconds per request of the bare loop and of the engine, round by round."""
    bare: list[float] = []
    engine: list[float] = []
    for warm_up in (contenders.bare_aiohttp, contenders.engine):  # imports, caches, the server
        asyncio.run(warm_up(base, keys[:1000], IN_FLIGHT))
    for _ in range(rounds):
        for contender, into in ((contenders.bare_aiohttp, bare), (contenders.engine, engine)):
            into.append(asyncio.run(contender(base, keys, IN_FLIGHT)) / len(keys) * 1e6)
    return bare, engine


def summary(bare: list[float], engine: list[float]) -> str:
    """The paired medians, and each side's own median for scale."""
    extra = statistics.median(e - b for b, e in zip(bare, engine, strict=True))
    ratio = statistics.median(b / e for b, e in zip(bare, engine, strict=True))
    return (
        f"engine: {extra:+.1f} us per request over the bare aiohttp loop, {ratio:.3f}x its speed "
        f"(medians of {len(bare)} paired rounds; bare {statistics.median(bare):.0f} us, "
        f"engine {statistics.median(engine):.0f} us per request)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args(argv)
    collect_garbage_less_often()
    keys = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(options.keys)]
    with mock_api("--latency-ms", "0") as base:
        bare, engine = paired_rounds(base, keys, options.rounds)
    print(summary(bare, engine))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
