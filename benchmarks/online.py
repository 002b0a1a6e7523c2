"""The online endpoint (``enrich api``) measured as its callers see it, against the mock API at 20 ms.

- latency: p50 and p99 of one-row requests through the endpoint, and of the same requests sent
  straight to the API, at 1, 64 and 512 callers (the plan's counts), each sending one request
  after another;
- the server alone: ``GET /healthz`` per second at 64 callers (what uvicorn and Starlette cost);
- throughput: rows/s through the endpoint with 100-row requests, 64 callers;
- dedup: 16 callers asking the same keys in their own orders; the API counts its requests.

Every key is fresh (no cache), so every row costs a request unless another caller asked it.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx

from benchmarks.figures import Figure
from service.testing.child_process import running_until_stopped

ROWS_PER_REQUEST = 100
DEDUP_CALLERS = 16


def write_lookup_spec(api: str, path: Path) -> Path:
    """A spec at ``path`` looking each row's ip up on the mock API at ``api``, 1,024 in flight."""
    path.write_text(
        f'[api]\nurl = "{api}/v1/lookup/{{ip}}"\n[input]\nkey = "ip"\n[limits]\nconcurrency = 1024\n'
        '[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n'
    )
    return path


@contextmanager
def online_endpoint(api: str, folder: Path, port: int, cache: Path | None = None) -> Iterator[str]:
    """``enrich api`` in a process of its own serving a lookup spec as "ip" (with a response
    cache in ``cache``, else none); its base URL."""
    spec = write_lookup_spec(api, folder / "online-spec.toml")
    caching = ["--no-cache"] if cache is None else ["--cache-dir", str(cache)]
    command = [sys.executable, "-m", "enrich", "api", "--spec", f"ip={spec}", "--port", str(port), *caching]
    base = f"http://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with running_until_stopped(command, lambda: _ready(base), "enrich api", **quiet):
        yield base


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


Ask = Callable[[aiohttp.ClientSession, int], Awaitable[None]]


async def _callers(callers: int, requests_each: int, ask: Ask) -> tuple[list[float], float]:
    """``callers`` tasks, each making ``requests_each`` requests one after another: every
    request's latency (seconds) and the whole run's duration."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=callers)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def caller(number: int) -> None:
            for index in range(requests_each):
                started = time.perf_counter()
                await ask(session, number * requests_each + index)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(caller(n) for n in range(callers)))
        return latencies, time.perf_counter() - started


def _through(base: str, tag: str, rows: int = 1) -> Ask:
    async def ask(session: aiohttp.ClientSession, n: int) -> None:
        body = {"rows": [{"ip": f"{tag}-{n}-{i}"} for i in range(rows)]}
        async with session.post(f"{base}/v1/enrich/ip", json=body) as response:
            answer = await response.json()
            if response.status != 200 or len(answer["rows"]) != rows:
                raise RuntimeError(f"enrich api answered {response.status}: {answer}")

    return ask


def _direct(api: str, tag: str) -> Ask:
    async def ask(session: aiohttp.ClientSession, n: int) -> None:
        async with session.get(f"{api}/v1/lookup/{tag}-{n}") as response:
            await response.json()

    return ask


def _healthz(base: str) -> Ask:
    async def ask(session: aiohttp.ClientSession, n: int) -> None:
        async with session.get(f"{base}/healthz") as response:
            await response.read()

    return ask


def _quantile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_figures(
    api: str, base: str, requests: int, repeats: int, caller_counts: tuple[int, ...]
) -> list[Figure]:
    """p50 and p99 (ms) through the endpoint and straight to the API at each of ``caller_counts``
    callers, interleaved per repeat."""
    figures: list[Figure] = []
    for callers in caller_counts:
        each = max(5, requests // callers)
        found: dict[tuple[str, str], list[float]] = {}
        for repeat in range(repeats):
            for name, ask in (
                ("through enrich api", _through(base, f"lat{callers}.{repeat}")),
                ("direct to the API", _direct(api, f"dir{callers}.{repeat}")),
            ):
                latencies, _ = asyncio.run(_callers(callers, each, ask))
                for label, fraction in (("p50", 0.5), ("p99", 0.99)):
                    found.setdefault((name, label), []).append(1000 * _quantile(latencies, fraction))
        for (name, label), values in found.items():
            params = {"latency_ms": 20, "callers": callers, "quantile": label}
            figures.append(Figure("online", name, params, callers * each, values, callers * each, unit="ms"))
    return figures


def rate_figures(base: str, requests: int, repeats: int) -> list[Figure]:
    """Rows/s through the endpoint with 100-row requests at 64 callers; /healthz requests/s."""
    rows, health = [], []
    each = max(2, requests // 640)  # default plan: 6 requests of 100 rows per caller
    for repeat in range(repeats):
        _, seconds = asyncio.run(_callers(64, each, _through(base, f"thr{repeat}", ROWS_PER_REQUEST)))
        rows.append(64 * each * ROWS_PER_REQUEST / seconds)
        _, seconds = asyncio.run(_callers(64, 10 * each, _healthz(base)))
        health.append(64 * 10 * each / seconds)
    return [
        Figure("online", "through enrich api", {"latency_ms": 20, "callers": 64, "rows_per_request": 100},
               64 * each * ROWS_PER_REQUEST, rows, 64 * each),
        Figure("online", "GET /healthz", {"callers": 64}, 64 * 10 * each, health, 0, unit="requests/s"),
    ]  # fmt: skip


def dedup_figure(api: str, base: str, keys: int, name: str) -> Figure:
    """16 callers asking the same ``keys`` keys, each in its own order, 100 rows a request: the
    API's request count against the distinct keys."""
    httpx.post(f"{api}/_reset", timeout=10)
    names = [f"dedup-{name}-{i}" for i in range(keys)]
    orders = [random.Random(n).sample(names, len(names)) for n in range(DEDUP_CALLERS)]

    async def ask(session: aiohttp.ClientSession, n: int) -> None:
        caller, chunk = divmod(n, keys // ROWS_PER_REQUEST)
        rows = orders[caller][chunk * ROWS_PER_REQUEST : (chunk + 1) * ROWS_PER_REQUEST]
        async with session.post(f"{base}/v1/enrich/ip", json={"rows": [{"ip": k} for k in rows]}) as response:
            assert response.status == 200, await response.text()

    asyncio.run(_callers(DEDUP_CALLERS, keys // ROWS_PER_REQUEST, ask))
    asked = int(httpx.get(f"{api}/_stats?totals", timeout=10).json()["requests"])
    return Figure(
        "online-dedup", name, {"callers": DEDUP_CALLERS, "distinct_keys": keys},
        DEDUP_CALLERS * keys, [float(asked)], asked, unit="API requests",
    )  # fmt: skip


def summary(figures: list[Figure]) -> str:
    """One line per caller count: the endpoint's added p50 and p99."""
    lines = []
    for callers in sorted({f.params["callers"] for f in figures if "quantile" in f.params}):
        medians = {
            (f.name, f.params["quantile"]): statistics.median(f.values)
            for f in figures
            if f.scenario == "online" and f.params.get("callers") == callers and "quantile" in f.params
        }
        if len(medians) == 4:
            added = [
                medians["through enrich api", q] - medians["direct to the API", q] for q in ("p50", "p99")
            ]
            lines.append(f"  {callers} callers: +{added[0]:.1f} ms p50, +{added[1]:.1f} ms p99")
    return "\n".join(lines)
