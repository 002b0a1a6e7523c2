"""Both senders against a real HTTP server on 127.0.0.1: same rows, same error classes."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import polars as pl
import pytest
import pytest_asyncio
from aiohttp import web

from service import SENDER_NAMES, enrich_frame
from service.testing import MockClock
from tests.helpers import make_spec

TRANSPORTS = SENDER_NAMES

pytestmark = pytest.mark.integration


class LoopbackApi:
    """A tiny aiohttp.web server: echoes the raw key segment, with faults chosen by key."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.never = asyncio.Event()
        self.hang_arrived = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0

    async def lookup(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path.split("?")[0].rsplit("/", 1)[-1]
        key = request.match_info["key"]
        self.calls[key] += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if key == "missing":
                return web.Response(status=404, text="not found")
            if key == "broken":
                return web.Response(status=503)
            if key == "garbled":
                return web.Response(status=200, body=b"{not json", content_type="application/json")
            if key == "hang":
                self.hang_arrived.set()
                await asyncio.wait_for(self.never.wait(), timeout=10)  # far past the client's timeout
            if key.startswith("retryafter-"):  # whatever follows, sent as the header's value
                return web.Response(status=429, headers={"Retry-After": key.removeprefix("retryafter-")})
            if key == "reset":
                assert request.transport is not None
                request.transport.abort()
                return web.Response(status=200)
            return web.json_response({"name": key, "raw": raw, "path": request.path})
        finally:
            self.in_flight -= 1


@pytest_asyncio.fixture
async def loopback() -> AsyncIterator[tuple[LoopbackApi, str]]:
    api = LoopbackApi()
    app = web.Application()
    app.router.add_get("/v1/lookup/{key}", api.lookup)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield api, f"http://127.0.0.1:{port}"
    finally:
        api.never.set()
        await runner.cleanup()


SPEC_TAIL = """
[output.columns]
name = { path = "name", type = "str" }
raw = { path = "raw", type = "str" }
[retry]
attempts = 2
backoff = { initial_s = 0.001, max_s = 0.001, jitter = 0 }
[limits]
concurrency = 8
"""


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_hostile_keys_arrive_as_one_segment(loopback: tuple[LoopbackApi, str], transport: str) -> None:
    """The server receives each value whole, percent-encoded, as the last path segment."""
    api, base = loopback
    keys = ["a/b", "..", "x?y=1", "sp ace", "日本", "100%", "#h", "a&b"]
    spec = make_spec(SPEC_TAIL, url=f"{base}/v1/lookup/{{k}}")
    out = (await enrich_frame(pl.DataFrame({"k": keys}), spec, transport=transport, clock=MockClock())).frame
    if transport == "pyreqwest":  # its URL parser resolves "..": the row fails, nothing is asked
        dots = out.filter(pl.col("k") == "..")
        assert dots["_enrich_error"].to_list() == ["invalid_key"]
        assert "'..' path segment cannot be sent by transport pyreqwest" in dots["_enrich_message"][0]
        out, keys = out.filter(pl.col("k") != ".."), [k for k in keys if k != ".."]
    else:
        assert out.filter(pl.col("k") == "..")["raw"][0] == "%2E%2E"
    assert out["_enrich_status"].to_list() == ["ok"] * len(keys)
    assert out["name"].to_list() == keys
    assert api.calls == Counter(dict.fromkeys(keys, 1))


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_faults_are_classified_the_same_on_every_transport(
    loopback: tuple[LoopbackApi, str], transport: str
) -> None:
    """404, 503, bad JSON, a reset connection and a hang end with the same classes on both senders."""
    api, base = loopback
    # 1.5 s: far beyond a loopback answer on a loaded machine, where 0.3 s could time a normal
    # key out; the hanging key's two attempts still cost only 3 s.
    api_section = f'[api]\nurl = "{base}/v1/lookup/{{k}}"\ntimeout_s = 1.5\n'
    spec = make_spec(api_section + SPEC_TAIL)
    keys = ["ok1", "missing", "broken", "garbled", "reset", "hang", "ok2"] * 3
    out = (await enrich_frame(pl.DataFrame({"k": keys}), spec, transport=transport, clock=MockClock())).frame
    got = dict(zip(out["k"].to_list(), out["_enrich_error"].to_list(), strict=True))
    assert got == {
        "ok1": None,
        "missing": "http_4xx",
        "broken": "http_5xx",
        "garbled": "invalid_json",
        "reset": "connect",
        "hang": "timeout",
        "ok2": None,
    }
    assert out["k"].to_list() == keys
    assert api.calls["missing"] == 1
    assert api.calls["broken"] == 2
    assert api.calls["garbled"] == 1
    assert api.most_in_flight <= 8


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_closed_port_is_a_connect_error(transport: str) -> None:
    """Nothing listening: every row fails with connect, and the job still finishes. The message
    never carries the URL (the libraries' own messages do, and a query may hold a token)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = make_spec(SPEC_TAIL, url=f"http://127.0.0.1:{port}/v1/lookup/{{k}}?token=hunter2")
    out = (
        await enrich_frame(pl.DataFrame({"k": ["a", "b"]}), spec, transport=transport, clock=MockClock())
    ).frame
    assert out["_enrich_error"].to_list() == ["connect", "connect"]
    assert out["_enrich_attempts"].to_list() == [2, 2]
    messages = out["_enrich_message"].to_list()
    assert all(m.startswith("connection failed: ") and "hunter2" not in m for m in messages), messages
    if transport == "pyreqwest":  # the OS's reason, found among reqwest's causes
        assert messages == ["connection failed: Connection refused"] * 2


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_odd_retry_after_values_never_end_the_job(
    loopback: tuple[LoopbackApi, str], transport: str
) -> None:
    """A 429 whose Retry-After is a Unicode digit, a negative, a fraction or a date far away:
    each row fails as rate_limited after its attempts; the job finishes."""
    api, base = loopback
    odd = ["²", "١٢", "-5", "1.5", "Fri, 31 Dec 9999 23:59:59 GMT", "soon"]
    keys = [f"retryafter-{value}" for value in odd]
    spec = make_spec(SPEC_TAIL, url=f"{base}/v1/lookup/{{k}}")
    out = (await enrich_frame(pl.DataFrame({"k": keys}), spec, transport=transport, clock=MockClock())).frame
    assert out["_enrich_error"].to_list() == ["rate_limited"] * len(keys)
    assert out["_enrich_attempts"].to_list() == [2] * len(keys)
    assert api.calls == Counter(dict.fromkeys(keys, 2))


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_job_cancelled_while_a_request_waits_stops_at_once(
    loopback: tuple[LoopbackApi, str], transport: str
) -> None:
    """Cancelled (a deadline, a signal) while the server holds a request, the job stops without
    waiting for the answer or its 30 s timeout, on every sender (pyreqwest's request lives in
    Rust: dropping it is what cancels it), and closes its connections: nothing is left for the
    garbage collector to find unclosed (aiohttp warns of such a session)."""
    api, base = loopback
    spec = make_spec(f'[api]\nurl = "{base}/v1/lookup/{{k}}"\ntimeout_s = 30\n' + SPEC_TAIL)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: enrich_frame(pl.DataFrame({"k": ["hang"]}), spec, transport=transport))
            await api.hang_arrived.wait()
            group.cancel_scope.cancel()
    assert api.calls["hang"] == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
