"""The HTTP clients a sender could be built on, each as the bare loop a user would write with it.

Each loop GETs every key with at most ``in_flight`` requests at once (a semaphore, a client whose
pool holds as many connections) and decodes each JSON answer with the library's own ``json()``.
Run one per process (``python -m benchmarks.senders LIBRARY BASE IN_FLIGHT`` with the keys on
stdin, one per line; ``engine:SENDER`` for the engine on that sender) on uvloop, with the garbage
collector set as ``enrich run`` sets it, every contender alike: it prints ``{"seconds",
"peak_rss_mb"}``, so a contender's memory is its own. httpx is not here: the sweep measures its
loop on a tenth of the keys (it is about 20x slower).
aiohttp and pyreqwest are in the lock; the others are measured where installed
(``pip install rnet curl_cffi niquests aiosonic``), else reported as not installed.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import uvloop

# As ``enrich.cli.process.collect_garbage_less_often`` sets them (a test holds the two together).
# Set here, not imported: that module brings polars into each bare loop's peak memory. A bare
# aiohttp loop on the defaults did 13,280 rows/s against 18,371 on these (0 ms, 64 in flight).
JOB_GC_THRESHOLDS = (50_000, 50, 100)


def collect_garbage_as_jobs_do() -> None:
    """The garbage collector as ``enrich run`` sets it (what is imported so far frozen), so each
    contender is measured alike."""
    gc.set_threshold(*JOB_GC_THRESHOLDS)
    gc.freeze()


def installed(library: str) -> bool:
    """Whether ``library`` (each is imported by its own name) can be measured here."""
    return importlib.util.find_spec(library) is not None


async def _gather(keys: list[str], in_flight: int, one: Callable[[str], Awaitable[None]]) -> float:
    semaphore = asyncio.Semaphore(in_flight)

    async def bounded(key: str) -> None:
        async with semaphore:
            await one(key)

    collect_garbage_as_jobs_do()  # once the library is imported: it is frozen with the rest
    started = time.perf_counter()
    await asyncio.gather(*(bounded(k) for k in keys))
    return time.perf_counter() - started


async def aiohttp_loop(base: str, keys: list[str], in_flight: int) -> float:
    # benchmarks.contenders.bare_aiohttp is the same loop, but importing that module brings polars
    # and the engine into the process whose peak memory this one's is compared with.
    import aiohttp

    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(key: str) -> None:
            async with session.get(f"{base}/v1/lookup/{key}") as response:
                await response.json()

        return await _gather(keys, in_flight, one)


async def pyreqwest_loop(base: str, keys: list[str], in_flight: int) -> float:
    from pyreqwest.client import ClientBuilder

    builder = ClientBuilder().max_connections(in_flight).timeout(timedelta(seconds=30))
    async with builder.build() as client:

        async def one(key: str) -> None:
            response = await client.get(f"{base}/v1/lookup/{key}").build().send()
            await response.json()

        return await _gather(keys, in_flight, one)


async def rnet_loop(base: str, keys: list[str], in_flight: int) -> float:
    import rnet

    client = rnet.Client(pool_max_size=in_flight, pool_max_idle_per_host=in_flight, timeout=30)

    async def one(key: str) -> None:
        response = await client.get(f"{base}/v1/lookup/{key}")
        await response.json()

    return await _gather(keys, in_flight, one)


async def curl_cffi_loop(base: str, keys: list[str], in_flight: int) -> float:
    from curl_cffi.requests import AsyncSession

    async with AsyncSession(max_clients=in_flight, timeout=30) as session:

        async def one(key: str) -> None:
            (await session.get(f"{base}/v1/lookup/{key}")).json()

        return await _gather(keys, in_flight, one)


async def niquests_loop(base: str, keys: list[str], in_flight: int) -> float:
    import niquests

    async with niquests.AsyncSession(pool_connections=1, pool_maxsize=in_flight) as session:

        async def one(key: str) -> None:
            (await session.get(f"{base}/v1/lookup/{key}", timeout=30)).json()

        return await _gather(keys, in_flight, one)


async def aiosonic_loop(base: str, keys: list[str], in_flight: int) -> float:
    import aiosonic

    client = aiosonic.HTTPClient(aiosonic.TCPConnector(pool_configs={":default": {"size": in_flight}}))

    async def one(key: str) -> None:
        await (await client.get(f"{base}/v1/lookup/{key}")).json()

    return await _gather(keys, in_flight, one)


async def engine_loop(base: str, keys: list[str], in_flight: int, transport: str) -> float:
    from benchmarks import contenders

    collect_garbage_as_jobs_do()  # once the engine is imported, as `enrich run` does
    return await contenders.engine(base, keys, in_flight, transport=transport)


LOOPS: dict[str, Callable[[str, list[str], int], Awaitable[float]]] = {
    "aiohttp": aiohttp_loop,
    "pyreqwest": pyreqwest_loop,
    "rnet": rnet_loop,
    "curl_cffi": curl_cffi_loop,
    "niquests": niquests_loop,
    "aiosonic": aiosonic_loop,
}
# The engine on each of its fast senders, measured the same way.
ENGINES = ("aiohttp", "pyreqwest")


def main(argv: list[str]) -> int:
    """``LIBRARY BASE IN_FLIGHT`` (a bare loop) or ``engine:SENDER BASE IN_FLIGHT``."""
    contender, base, in_flight = argv[0], argv[1], int(argv[2])
    keys = sys.stdin.read().split()
    if contender.startswith("engine:"):
        seconds = uvloop.run(engine_loop(base, keys, in_flight, contender.removeprefix("engine:")))
    else:
        seconds = uvloop.run(LOOPS[contender](base, keys, in_flight))
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb()}))
    return 0


def peak_rss_mb() -> float:
    """This process's peak resident memory. ``ru_maxrss`` outlives ``execve`` on Linux (it would
    report the parent's peak, as measured here: 131 MB for every library), the mm's VmHWM not."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # macOS: bytes


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
