"""Per-request throughput of the engine on each sender against a bare aiohttp loop, same run.

    .venv/bin/python -m benchmarks.transports [--keys 20000] [--in-flight 64] [--latency-ms 0]

The server runs in another process (pinned to core 1 where the OS allows, the client on core 0).
Each figure is the median of --repeats runs; ratios are against the bare loop of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import aiohttp
import polars as pl

from service import enrich_frame, parse_spec
from service.demo import start_mock_api, stop_mock_api


async def bare_aiohttp(base: str, keys: list[str], in_flight: int) -> float:
    """What a user would write: a semaphore and one ClientSession."""
    semaphore = asyncio.Semaphore(in_flight)
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(key: str) -> None:
            async with semaphore, session.get(f"{base}/v1/lookup/{key}") as response:
                await response.json()

        started = time.perf_counter()
        await asyncio.gather(*(one(k) for k in keys))
        return len(keys) / (time.perf_counter() - started)


async def engine(base: str, keys: list[str], in_flight: int, transport: str) -> float:
    """enrich_frame with every key distinct, so requests == rows."""
    spec = parse_spec(
        f"""
[api]
url = "{base}/v1/lookup/{{k}}"
[input]
key = "k"
[output.columns]
country = {{ path = "country.iso_code", type = "str" }}
asn = {{ path = "asn", type = "i64" }}
[limits]
concurrency = {in_flight}
""",
        environ={},
    )
    frame = pl.DataFrame({"k": keys})
    started = time.perf_counter()
    result = await enrich_frame(frame, spec, transport=transport)
    elapsed = time.perf_counter() - started
    assert result.stats.rows_ok == len(keys), result.stats
    return len(keys) / elapsed


def main() -> None:
    """Run each contender --repeats times, print a markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=20000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    server, base = start_mock_api("--latency-ms", str(args.latency_ms))
    try:
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(server.pid, {1})
            os.sched_setaffinity(0, {0})
        contenders = {
            "bare aiohttp loop": lambda keys: bare_aiohttp(base, keys, args.in_flight),
            "engine, aiohttp sender (default)": lambda keys: engine(base, keys, args.in_flight, "aiohttp"),
            "engine, httpx sender": lambda keys: engine(base, keys, args.in_flight, "httpx"),
        }
        results: dict[str, list[float]] = {name: [] for name in contenders}
        for repeat in range(args.repeats):
            for name, run in contenders.items():
                keys = [f"r{repeat}-{name[:6]}-{i}" for i in range(args.keys)]
                results[name].append(asyncio.run(run(keys)))
        baseline = statistics.median(results["bare aiohttp loop"])
        print(
            f"\n{args.keys} distinct keys, {args.in_flight} in flight, "
            f"{args.latency_ms:g} ms latency, median of {args.repeats}\n"
        )
        print("| contender | requests/s | x bare aiohttp |")
        print("|---|---:|---:|")
        for name, values in results.items():
            median = statistics.median(values)
            print(f"| {name} | {median:,.0f} | {median / baseline:.2f} |")
    finally:
        stop_mock_api(server)


if __name__ == "__main__":
    main()
