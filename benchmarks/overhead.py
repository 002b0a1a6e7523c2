"""The engine's own cost per request: ``enrich_frame`` against the bare aiohttp loop a user would
write, at 0 ms latency and 64 in flight (where the client's core is the bound), in paired rounds.

    .venv/bin/python -m benchmarks.overhead [--keys 30000] [--rounds 15] [--checkout PATH ...]
    .venv/bin/python -m benchmarks.overhead --without-http [--keys 30000] [--rounds 15] [--checkout ...]

``--without-http``: the same loop and engines with a sender that answers at once (after one
suspension, as a real send has at least one): no network, no server, no HTTP library, so the
figure is the engine's own Python alone: two runs of the same two engines here agreed within
about a microsecond, where against HTTP they differed by five.

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
import contextlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks import contenders
from benchmarks.checkouts import THIS_CHECKOUT, CheckoutError, add_checkout_option, checked, run_in
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
# The sender that answers at once, as program text: each checkout's engine runs it in its own
# process, so it may use only what every checkout has (``Caller(sender=...)``, ``RawResponse``).
_INSTANT_SENDER = """
import asyncio, orjson
from service.calling.sending import RawResponse
ANSWER = orjson.dumps({"ip": "10.0.0.1", "country": {"iso_code": "DE", "name": "Germany"}, "asn": 3320})
HEADERS = {"Content-Type": "application/json", "Content-Length": str(len(ANSWER))}
class InstantSender:
    async def open(self): pass
    async def aclose(self): pass
    async def send(self, request, extra_headers=None):
        await asyncio.sleep(0)
        return RawResponse(200, ANSWER, None, None, HEADERS)
"""
_ONE_ROUND_WITHOUT_HTTP = (
    _INSTANT_SENDER
    + """
import sys, time
import polars as pl
from benchmarks import contenders
from enrich.cli.process import collect_garbage_less_often
from service import Caller, enrich_frame, parse_spec
async def engine(keys):
    spec = parse_spec(contenders.engine_spec("http://127.0.0.1:9", IN_FLIGHT), environ={})
    async with Caller(spec, sender=InstantSender()) as caller:
        started = time.perf_counter()
        result = await enrich_frame(pl.DataFrame({"k": keys}), spec, caller=caller)
        elapsed = time.perf_counter() - started
    if result.stats.rows_ok != len(keys):
        raise RuntimeError(f"the engine left rows unenriched: {result.stats}")
    return elapsed
collect_garbage_less_often()
keys = sys.stdin.read().split()
asyncio.run(engine(keys[:1000]))
print(asyncio.run(engine(keys)) / len(keys) * 1e6)
"""
)
# Microseconds per request of one contender over ``keys`` against the mock API at ``base``.
Round = Callable[[str, list[str]], float]


def in_process(contender: Callable[[str, list[str], int], Awaitable[float]]) -> Round:
    def round_of(base: str, keys: list[str]) -> float:
        return asyncio.run(contender(base, keys, IN_FLIGHT)) / len(keys) * 1e6

    return round_of


async def bare_without_http(base: str, keys: list[str], in_flight: int) -> float:
    """The bare aiohttp loop's shape (a semaphore, a task per key, the JSON parsed) around the
    sender that answers at once (``base`` unused)."""
    sender = _instant_sender()
    semaphore = asyncio.Semaphore(in_flight)

    async def one(key: str) -> None:
        async with semaphore:
            orjson.loads((await sender.send(key)).body)

    started = time.perf_counter()
    await asyncio.gather(*(one(k) for k in keys))
    return time.perf_counter() - started


def _instant_sender() -> Any:
    namespace: dict[str, Any] = {}
    exec(_INSTANT_SENDER, namespace)  # the very sender the engines' rounds use
    return namespace["InstantSender"]()


@dataclass(frozen=True)
class Measure:
    """What the rounds run against: the bare loop, each engine's round (program text), the
    server (a context giving its URL) and the bare loop's name in the summary."""

    bare: Callable[[str, list[str], int], Awaitable[float]]
    engine_round: str
    server: Callable[[], contextlib.AbstractContextManager[str]]
    baseline: str


AGAINST_HTTP = Measure(
    contenders.bare_aiohttp,
    _ONE_ROUND.format(in_flight=IN_FLIGHT),
    lambda: mock_api("--latency-ms", "0"),
    "the bare aiohttp loop",
)
WITHOUT_HTTP = Measure(
    bare_without_http,
    f"IN_FLIGHT = {IN_FLIGHT}\n{_ONE_ROUND_WITHOUT_HTTP}",
    lambda: contextlib.nullcontext(""),
    "the bare loop without HTTP",
)


def from_checkout(checkout: Path, program: str = AGAINST_HTTP.engine_round) -> Round:
    """The engine of ``checkout`` (this one, or another), in a process of its own each round,
    running ``program`` (a ``Measure``'s ``engine_round``)."""

    def round_of(base: str, keys: list[str]) -> float:
        return float(run_in(checkout, "the engine", program, base, stdin=" ".join(keys)).split()[-1])

    return round_of


def paired_rounds(
    base: str,
    keys: list[str],
    rounds: int,
    engines: dict[str, Round],
    bare: Callable[[str, list[str], int], Awaitable[float]] = contenders.bare_aiohttp,
) -> dict[str, list[float]]:
    """Microseconds per request of the ``bare`` loop and of each engine, round by round."""
    contestants = {"bare": in_process(bare), **engines}
    # Imports, caches, the server; each engine warms up in its own process (``_ONE_ROUND``).
    asyncio.run(bare(base, keys[:1000], IN_FLIGHT))
    measured: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(rounds):
        for name, round_of in contestants.items():
            measured[name].append(round_of(base, keys))
    return measured


def summary(
    name: str, bare: list[float], engine: list[float], baseline: str = "the bare aiohttp loop"
) -> str:
    """The paired medians, and each side's own median for scale."""
    extra = statistics.median(e - b for b, e in zip(bare, engine, strict=True))
    ratio = statistics.median(b / e for b, e in zip(bare, engine, strict=True))
    return (
        f"{name}: {extra:+.1f} us per request over {baseline}, {ratio:.3f}x its speed "
        f"(medians of {len(bare)} paired rounds; bare {statistics.median(bare):.0f} us, "
        f"engine {statistics.median(engine):.0f} us per request)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=30_000)  # the default plan's 0 ms measurement
    parser.add_argument(
        "--without-http", action="store_true",
        help="a sender that answers at once instead of the mock API: the engine's own Python alone",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=15)
    add_checkout_option(parser, "the engine")
    options = parser.parse_args(argv)
    checkouts = checked(parser, options.checkout, "benchmarks/contenders.py")
    collect_garbage_less_often()
    keys = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(options.keys)]
    measure = WITHOUT_HTTP if options.without_http else AGAINST_HTTP
    engines = {"engine": from_checkout(THIS_CHECKOUT, measure.engine_round)}
    engines.update({f"engine of {path}": from_checkout(path, measure.engine_round) for path in checkouts})
    with measure.server() as base:
        try:
            measured = paired_rounds(base, keys, options.rounds, engines, measure.bare)
        except CheckoutError as exc:
            print(f"{parser.prog}: error: {exc}", file=sys.stderr)
            return 1
    for name in engines:
        print(summary(name, measured["bare"], measured[name], measure.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
