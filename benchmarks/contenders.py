"""What is measured, in process: the bare loops a user would write, and the engine.

Each contender enriches ``keys`` against the mock API at ``base`` and returns the seconds it took;
the caller counts requests on the server.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import polars as pl

from service import OnThisLoop, enrich_frame, parse_spec, run_job


async def bare_aiohttp(base: str, keys: list[str], in_flight: int) -> float:
    """A semaphore and one aiohttp ClientSession."""
    semaphore = asyncio.Semaphore(in_flight)
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(key: str) -> None:
            async with semaphore, session.get(f"{base}/v1/lookup/{key}") as response:
                await response.json()

        started = time.perf_counter()
        await asyncio.gather(*(one(k) for k in keys))
        return time.perf_counter() - started


async def bare_httpx(base: str, keys: list[str], in_flight: int) -> float:
    """A semaphore and one httpx AsyncClient with its default transport."""
    semaphore = asyncio.Semaphore(in_flight)
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(key: str) -> None:
            async with semaphore:
                (await client.get(f"{base}/v1/lookup/{key}")).json()

        started = time.perf_counter()
        await asyncio.gather(*(one(k) for k in keys))
        return time.perf_counter() - started


def engine_spec(base: str, in_flight: int | str, bulk: int = 0, limits: str = "") -> str:
    """The spec the engine runs with: per row, or ``bulk`` keys per request; ``limits``: more
    ``[limits]`` lines; ``in_flight`` "auto": the concurrency found by the engine."""
    columns = '[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n'
    columns += 'asn = { path = "asn", type = "i64" }\n'
    # Short backoff: a fault-injected retry should not turn a 2 s measurement into a tail wait.
    tail = (
        f"[limits]\nconcurrency = {json.dumps(in_flight)}\n{limits}"
        "[retry]\nbackoff = { initial_s = 0.05, max_s = 1 }\n"
    )
    if bulk:
        head = f'[api]\nmethod = "POST"\nurl = "{base}/v1/lookup"\nbody = {{ keys = "{{@keys}}" }}\n'
        head += f'[input]\nkey = "k"\n[bulk]\nsize = {bulk}\nresults = "results"\nmatch = "key"\n'
    else:
        head = f'[api]\nurl = "{base}/v1/lookup/{{k}}"\n[input]\nkey = "k"\n'
    return head + columns + tail


async def engine(
    base: str,
    keys: list[str],
    in_flight: int | str,
    bulk: int = 0,
    transport: str | None = None,
    limits: str = "",
) -> float:
    """``enrich_frame`` over the keys (the engine alone: no files, no Prefect); ``transport``
    "httpx" sends through httpx instead of the default aiohttp sender."""
    spec = parse_spec(engine_spec(base, in_flight, bulk, limits), environ={})
    frame = pl.DataFrame({"k": keys})
    started = time.perf_counter()
    result = await enrich_frame(frame, spec, transport=transport)
    elapsed = time.perf_counter() - started
    if result.stats.rows_ok < 0.999 * len(keys):  # faults may exhaust a retry budget, rarely
        raise RuntimeError(f"the engine left rows unenriched: {result.stats}")
    return elapsed


async def job(base: str, keys: list[str], folder: Path, in_flight: int, *, answer_log: bool) -> float:
    """``run_job`` from a Parquet file to a Parquet file (batches of 10,000, no response cache),
    with or without the job's answer log; the input is written before the clock starts."""
    spec = parse_spec(engine_spec(base, in_flight), environ={})
    work = Path(tempfile.mkdtemp(dir=folder))
    source = work / "in.parquet"
    pl.DataFrame({"k": keys}).write_parquet(source)
    started = time.perf_counter()
    stats = await run_job(source, spec, work / "out.parquet", batches=OnThisLoop(answer_log=answer_log))
    elapsed = time.perf_counter() - started
    shutil.rmtree(work)
    if stats.rows_ok < 0.999 * len(keys):
        raise RuntimeError(f"the job left rows unenriched: {stats}")
    return elapsed
