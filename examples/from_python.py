"""Enrich from Python: a script (or a notebook cell), then a service sharing one session.

Run it from the repository's root after set-up:

    .venv/bin/python examples/from_python.py

It starts Enrich's mock API on a free loopback port and calls that; point the spec's URL at your
own API instead. CI runs this file (tests/test_examples.py).
"""

from __future__ import annotations

import asyncio
import tempfile

import polars as pl

import enrich
from service.testing import start_mock_api, stop_mock_api


def spec_for(api_url: str) -> str:
    """A spec as TOML text; a path to a .toml file, or a dict of the same shape, work alike."""
    return f"""
        [api]
        url = "{api_url}/v1/lookup/{{ip}}"
        [input]
        key = "ip"
        [output.columns]
        country = {{ path = "country.iso_code", type = "str" }}
        asn     = {{ path = "asn", type = "i64" }}
        [limits]
        concurrency = 16
        rate = "500/s"
    """


def in_a_script(spec: str, cache_dir: str) -> None:
    """The sync call: blocks until every row is enriched (in a notebook too)."""
    frame = pl.DataFrame({"ip": ["1.1.1.1", "8.8.8.8", "1.1.1.1", "404-nowhere"]})
    result = enrich.enrich(frame, spec, cache=cache_dir)
    print(result.frame.select("ip", "country", "asn", "_enrich_status", "_enrich_error"))
    stats = result.stats
    print(f"{stats.rows} rows, {stats.distinct_keys} distinct keys, {stats.requests} requests")
    # The polars namespace: the same, returning the frame. The second call asks nothing again:
    # its answers come from the cache the first one filled.
    again = frame.enrich(spec, cache=cache_dir)
    print(f"again: {again.height} rows, {again['_enrich_status'].eq('ok').sum()} ok, from the cache")


async def in_a_service(spec: str, cache_dir: str) -> None:
    """The async API: one session shared by many requests (one connection pool, one rate limit,
    one cache); a LazyFrame works as a DataFrame does. The two calls below share keys 25-49:
    each is requested once, the second call waiting for the first one's answers."""
    async with enrich.Session(spec, cache=cache_dir) as session:
        first, second = await asyncio.gather(
            session.enrich(pl.DataFrame({"ip": [f"10.0.0.{i}" for i in range(50)]})),
            session.enrich(pl.LazyFrame({"ip": [f"10.0.0.{i}" for i in range(25, 75)]})),
        )
        for name, result in (("first", first), ("second", second)):
            stats = result.stats
            print(f"{name}: {stats.rows} rows, {stats.requests} requests, {stats.cache_hits} from the cache")
        total = session.statistics()
        print(f"session: {total.rows} rows, {total.requests} requests for 75 distinct keys")


def main() -> None:
    process, api_url = start_mock_api("--latency-ms", "2")
    try:
        spec = spec_for(api_url)
        with tempfile.TemporaryDirectory() as cache_dir:
            in_a_script(spec, cache_dir)
            asyncio.run(in_a_service(spec, cache_dir))
    finally:
        stop_mock_api(process)


if __name__ == "__main__":
    main()
