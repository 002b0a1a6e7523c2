"""The mock API: a real HTTP server on loopback with fault injection and its own counters.

    GET  /v1/lookup/{key}   one key's document
    POST /v1/lookup         {"keys": [...]} -> {"results": [document, ...]}
    GET  /_stats            the server's counts (requests, per key, most in flight, most per second;
                            ?totals: without the per-key ones)
    POST /_reset            clears the counts
    POST /_release          lets the held- keys' requests (waiting until then) be answered

Used by the demo, the integration tests and the benchmarks. ``MockApi`` is an async context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import secrets
import signal
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from service.testing.hostile import HostileSizes, hostile_response, redirect_response
from service.testing.mock_answers import (
    HOSTILE_FAULTS,
    REDIRECT_FAULTS,
    FaultRates,
    answer_bytes,
    fault_for,
    unit_draw,
)
from service.testing.mock_oauth import TokenIssuer, oauth_routes
from service.testing.mock_quota import QuotaHeaders, QuotaWindows

_MAX_TIMES_PER_KEY = 16
_JSON = "application/json"
# Faults answered with a fixed status and body.
_PLAIN_ANSWERS = {
    "not_found": (404, b"no such key"),
    "bad_request": (400, b"malformed key"),
    "unauthorized": (401, b"invalid credentials"),
    "http_500": (500, b"internal error"),
    "http_503": (503, b"service unavailable"),
    "malformed": (200, b'{"key": "trunc'),
    "error_in_200": (200, orjson.dumps({"error": {"code": 17, "message": "quota exceeded for this key"}})),
}


@dataclass(frozen=True, slots=True)
class MockConfig:
    """How the mock API behaves."""

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0  # plus a uniform draw in [0, jitter)
    faults: FaultRates = field(default_factory=FaultRates)
    retry_after_s: int = 1
    retry_after_as_date: bool = False
    hang_s: float = 30.0
    hostile: HostileSizes = field(default_factory=HostileSizes)
    redirect_to: str | None = None  # the other origin redirect- keys point to
    pending_attempts: int = 2  # pending- keys answer "pending" to this many requests, then for real
    # Quota mode (0: off): this many requests per window, told in headers, 429 past it.
    quota: int = 0
    quota_window_s: float = 1.0
    quota_headers: QuotaHeaders = "ietf"
    # OAuth2 mode ("client_id:client_secret"; None: off): POST /oauth/token, lookups need a token.
    oauth_client: str | None = None
    token_ttl_s: float = 3600.0
    # Capacity mode (0: off): a server of this many workers. Past it in flight, requests queue (the
    # latency grows as in_flight / capacity); past twice as many, 503 at once.
    capacity: int = 0
    seed: int = 0


class _Counters:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.per_key: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.window: deque[float] = deque()
        self.most_per_second = 0
        self.faults: Counter[str] = Counter()
        self.received: dict[str, dict[str, Any]] = {}  # what landed- keys were sent

    def start(self, keys: list[str]) -> None:
        now = time.monotonic()
        wall = time.time()
        self.requests += 1
        for key in keys:
            self.per_key[key] += 1
            stamps = self.times.setdefault(key, [])
            if len(stamps) < _MAX_TIMES_PER_KEY:
                stamps.append(wall)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        window = self.window
        window.append(now)
        while window[0] <= now - 1.0:
            window.popleft()
        self.most_per_second = max(self.most_per_second, len(window))

    async def receive(self, key: str, request: web.Request) -> None:
        """Keep what ``request`` for ``key`` brought: method, headers, query and body."""
        self.received[key] = {
            "method": request.method,
            "headers": {str(name): value for name, value in request.headers.items()},
            "query": request.query_string,
            "body": (await request.read()).decode("utf-8", "replace"),
        }

    def snapshot(self, totals_only: bool = False) -> dict[str, Any]:
        """The counts; ``totals_only`` leaves out what grows with the keys (per key, times), for a
        poller asking many times a second during a long job."""
        totals = {
            "requests": self.requests,
            "distinct_keys": len(self.per_key),
            "most_in_flight": self.most_in_flight,
            "most_per_second": self.most_per_second,
            "faults": dict(self.faults),
        }
        if totals_only:
            return totals
        return {**totals, "per_key": dict(self.per_key), "times": self.times, "received": self.received}


class MockApi:
    """The mock API server; ``async with MockApi(config) as api: api.url``."""

    def __init__(self, config: MockConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or MockConfig()
        self._host = host
        self._port = port
        self._counters = _Counters()
        self._rng = random.Random(self.config.seed)
        self._quota, self._issuer = _modes(self.config)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._released = asyncio.Event()
        self.url = ""

    async def __aenter__(self) -> MockApi:
        app = web.Application()
        app.router.add_get("/v1/lookup/{key}", self._lookup)
        app.router.add_post("/v1/lookup/{key}", self._lookup)  # where a 307 re-sends a POST
        app.router.add_post("/v1/lookup", self._bulk)
        if self._issuer is not None:
            app.add_routes(oauth_routes(self._issuer, lambda name: self._counters.faults.update([name])))
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_reset", self._reset)
        app.router.add_post("/_release", self._release)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, backlog=4096)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def stats(self) -> dict[str, Any]:
        """The server's own counts."""
        return self._counters.snapshot()

    async def _fault_response(self, fault: str, request: web.Request) -> web.StreamResponse | None:
        """The response for ``fault``, or None to answer normally."""
        self._counters.faults[fault] += 1
        key = request.match_info.get("key", "")
        if fault in REDIRECT_FAULTS:
            return redirect_response(fault, key, request, self.config.redirect_to)
        if fault in HOSTILE_FAULTS:
            return await hostile_response(fault, key, request, self.config.hostile, self._stopping)
        if fault in _PLAIN_ANSWERS:
            status, body = _PLAIN_ANSWERS[fault]
            if status == 200:
                return web.Response(body=body, content_type=_JSON)
            return web.Response(status=status, text=body.decode())
        if fault in ("rate_limited", "rate_limited_date"):
            wait = _retry_after(self.config, as_date=fault == "rate_limited_date")
            return web.Response(status=429, text="slow down", headers={"Retry-After": wait})
        if fault == "reset":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if fault == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.config.hang_s)
            return web.Response(status=504)
        if fault == "held":
            await self._released.wait()
        elif fault == "pending" and self._counters.per_key[key] <= self.config.pending_attempts:
            return web.Response(body=b'{"status": "pending"}', content_type="application/json")
        return None

    async def _lookup(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        counters = self._counters
        counters.start([key])
        try:
            if key.startswith("landed-"):  # where redirects land: what arrived, secrets or not
                await counters.receive(key, request)
            if self.config.capacity and counters.in_flight > 2 * self.config.capacity:
                counters.faults["over_capacity"] += 1
                return web.Response(status=503, text="over capacity")
            await _delay(self.config, self._rng, counters.in_flight)
            if self._issuer is not None and not self._issuer.admits(request.headers.get("Authorization")):
                counters.faults["unauthorized_token"] += 1
                return web.Response(status=401, text="invalid or expired token")
            quota_headers = None
            if self._quota is not None:
                allowed, quota_headers = self._quota.take()
                if not allowed:
                    counters.faults["quota"] += 1
                    return web.Response(status=429, text="quota exceeded", headers=quota_headers)
            fault = fault_for(key, counters.per_key[key], self.config.faults, self.config.seed)
            if fault is not None and fault != "bulk_missing":
                response = await self._fault_response(fault, request)
                if response is not None:
                    return response
            return web.Response(body=answer_bytes(key), content_type=_JSON, headers=quota_headers)
        finally:
            counters.in_flight -= 1

    async def _bulk(self, request: web.Request) -> web.StreamResponse:
        try:
            keys = orjson.loads(await request.read())["keys"]
            keys = [str(k) for k in keys]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return web.Response(status=400, text='expected {"keys": [...]}')
        counters = self._counters
        counters.start(keys)
        try:
            await _delay(self.config, self._rng, counters.in_flight)
            if any(k.startswith("400-") for k in keys):
                counters.faults["bad_request"] += 1
                return web.Response(status=400, text="malformed key in request")
            batch = "bulk:" + ",".join(keys)  # not a prefix fault: a whole bulk request meets rates only
            attempt = counters.per_key[keys[0]] if keys else 1
            fault = fault_for(batch, attempt, self.config.faults, self.config.seed)
            if fault is not None and fault != "bulk_missing":
                response = await self._fault_response(fault, request)
                if response is not None:
                    return response
            missing_rate = self.config.faults.bulk_missing
            results = []
            for key in keys:
                missing = key.startswith(("ghost-", "404-")) or (
                    missing_rate > 0 and unit_draw(self.config.seed, "bulk", key) < missing_rate
                )
                if missing:
                    counters.faults["bulk_missing"] += 1
                else:
                    results.append(answer_bytes(key))
            # Spliced from cached per-key documents: the mock must not be the bulk benchmark's limit.
            body = b'{"results":[' + b",".join(results) + b"]}"
            return web.Response(body=body, content_type="application/json")
        finally:
            counters.in_flight -= 1

    async def _stats(self, request: web.Request) -> web.Response:
        snapshot = self._counters.snapshot(totals_only="totals" in request.query)
        return web.Response(body=orjson.dumps(snapshot), content_type=_JSON)

    async def _reset(self, request: web.Request) -> web.Response:
        self._counters.reset()
        return web.Response(body=b'{"reset": true}', content_type="application/json")

    async def _release(self, request: web.Request) -> web.Response:
        self._released.set()
        self._released = asyncio.Event()  # a held- key asked later waits for the next release
        return web.Response(body=b'{"released": true}', content_type="application/json")


async def _delay(config: MockConfig, rng: random.Random, in_flight: int) -> None:
    """The configured latency; in capacity mode, grown by the queue ``in_flight`` makes."""
    delay = config.latency_ms + (rng.random() * config.latency_jitter_ms if config.latency_jitter_ms else 0)
    if config.capacity and in_flight > config.capacity:
        delay *= in_flight / config.capacity
    if delay > 0:
        await asyncio.sleep(delay / 1000)


def _modes(config: MockConfig) -> tuple[QuotaWindows | None, TokenIssuer | None]:
    """The quota and the token issuer ``config`` asks for (None: that mode is off)."""
    quota = QuotaWindows(config.quota, config.quota_window_s, config.quota_headers) if config.quota else None
    if config.oauth_client is None:
        return quota, None
    return quota, TokenIssuer(config.oauth_client, config.token_ttl_s, nonce=secrets.token_hex(4))


def _retry_after(config: MockConfig, *, as_date: bool = False) -> str:
    if as_date or config.retry_after_as_date:
        return email.utils.formatdate(time.time() + config.retry_after_s, usegmt=True)
    return str(config.retry_after_s)


async def serve_forever(config: MockConfig, host: str, port: int, *, ready: str) -> None:
    """Run the mock API until cancelled, SIGTERM or SIGINT, printing ``ready`` and its URL once it
    listens. The handlers matter as a container's PID 1, where a signal without one is ignored."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    async with MockApi(config, host, port) as api:
        print(f"{ready}{api.url}", flush=True)
        await stop.wait()
