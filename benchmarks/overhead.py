"""The engine's own cost per request: ``enrich_frame`` against the bare aiohttp loop a user would
write, at 0 ms latency and 64 in flight (where the client's core is the bound), in paired rounds.

    .venv/bin/python -m benchmarks.overhead [--keys 30000] [--rounds 15] [--checkout PATH ...]

Each round runs the bare loop, then each engine, on the same keys against the same mock API (on its
own core, garbage collection as ``enrich run`` sets it). The machine's speed drifts by a fifth
between rounds here, so each round's engine is compared with that round's bare loop: the median
of those paired differences is the engine's cost per request, and of the paired ratios its speed.
Each engine runs in a process of its own each round, as a job does, so engines compare alike;
``--checkout`` adds the engine of another checkout (``git worktree add /tmp/before COMMIT``): a
change's before and after, measured in the same rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks import contenders
from benchmarks.run import mock_api
from enrich.cli.process import collect_garbage_less_often

IN_FLIGHT = 64
# One engine round in a process of its own, from any checkout: only what every checkout has, so an
# engine from before this module (an earlier commit's worktree) is measured beside today's.
_ONE_ROUND = """
import asyncio, sys
from benchmarks import contenders
from enrich.cli.process import collect_garbage_less_often
collect_garbage_less_often()
base, keys = sys.argv[1], sys.stdin.read().split()
asyncio.run(contenders.engine(base, keys[:1000], {in_flight}))
print(asyncio.run(contenders.engine(base, keys, {in_flight})) / len(keys) * 1e6)
"""
_THIS_CHECKOUT = Path(__file__).resolve().parents[1]
# Microseconds per request of one contender over ``keys`` against the mock API at ``base``.
Round = Callable[[str, list[str]], float]


class EngineRoundError(RuntimeError):
    """An engine's round ended without a figure (its checkout broken, or too old to run it)."""


def in_process(contender: Callable[[str, list[str], int], Awaitable[float]]) -> Round:
    def round_of(base: str, keys: list[str]) -> float:
        return asyncio.run(contender(base, keys, IN_FLIGHT)) / len(keys) * 1e6

    return round_of


def from_checkout(checkout: Path) -> Round:
    """The engine of ``checkout`` (this one, or another), in a process of its own each round."""

    def round_of(base: str, keys: list[str]) -> float:
        program = _ONE_ROUND.format(in_flight=IN_FLIGHT)
        done = subprocess.run(
            [sys.executable, "-c", program, base], input=" ".join(keys),
            cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
            raise EngineRoundError(f"the engine of {checkout} failed: {last}")
        return float(done.stdout.split()[-1])

    return round_of


def paired_rounds(
    base: str, keys: list[str], rounds: int, engines: dict[str, Round]
) -> dict[str, list[float]]:
    """Microseconds per request of the bare loop and of each engine, round by round."""
    contestants = {"bare": in_process(contenders.bare_aiohttp), **engines}
    # Imports, caches, the server; each engine warms up in its own process (``_ONE_ROUND``).
    asyncio.run(contenders.bare_aiohttp(base, keys[:1000], IN_FLIGHT))
    measured: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(rounds):
        for name, round_of in contestants.items():
            measured[name].append(round_of(base, keys))
    return measured


def summary(name: str, bare: list[float], engine: list[float]) -> str:
    """The paired medians, and each side's own median for scale."""
    extra = statistics.median(e - b for b, e in zip(bare, engine, strict=True))
    ratio = statistics.median(b / e for b, e in zip(bare, engine, strict=True))
    return (
        f"{name}: {extra:+.1f} us per request over the bare aiohttp loop, {ratio:.3f}x its speed "
        f"(medians of {len(bare)} paired rounds; bare {statistics.median(bare):.0f} us, "
        f"engine {statistics.median(engine):.0f} us per request)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=30_000)  # the default plan's 0 ms measurement
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--checkout", type=Path, action="append", default=[],
        help="also the engine of this checkout (e.g. a git worktree of an earlier commit)",
    )  # fmt: skip
    options = parser.parse_args(argv)
    for path in options.checkout:
        if not (path / "benchmarks" / "contenders.py").is_file():
            parser.error(f"--checkout {path}: not a checkout of Enrich (no benchmarks/contenders.py)")
    collect_garbage_less_often()
    keys = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(options.keys)]
    engines = {"engine": from_checkout(_THIS_CHECKOUT)}
    engines.update({f"engine of {path}": from_checkout(path.resolve()) for path in options.checkout})
    with mock_api("--latency-ms", "0") as base:
        try:
            measured = paired_rounds(base, keys, options.rounds, engines)
        except EngineRoundError as exc:
            print(f"{parser.prog}: error: {exc}", file=sys.stderr)
            return 1
    for name in engines:
        print(summary(name, measured["bare"], measured[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
