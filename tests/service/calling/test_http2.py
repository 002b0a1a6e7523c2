"""HTTP/2 on the pyreqwest sender, against a real HTTP/2 server on loopback (hypercorn, cleartext
with prior knowledge: the mock API's aiohttp server speaks HTTP/1.1 only)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import polars as pl
import pytest
import pytest_asyncio
from hypercorn.asyncio import serve
from hypercorn.config import Config

from service import enrich_frame
from tests.helpers import make_spec

pytestmark = pytest.mark.integration


class VersionsSeen:
    """An ASGI app answering ``/v1/lookup/{key}`` with ``{"name": key}``; it counts the HTTP
    version of each request and the client addresses (one per connection) they came from."""

    def __init__(self) -> None:
        self.versions: Counter[str] = Counter()
        self.connections: set[tuple[str, int]] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.versions[scope["http_version"]] += 1
        self.connections.add(tuple(scope["client"]))
        body = json.dumps({"name": scope["path"].rsplit("/", 1)[-1]}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest_asyncio.fixture
async def http2_api() -> AsyncIterator[tuple[VersionsSeen, str]]:
    """The app on hypercorn, on a socket already listening (no waiting for the server to start:
    connections queue until it accepts them)."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(128)
    port = listening.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listening.detach()}"]  # hypercorn's now: it closes it when it stops
    config.accesslog = config.errorlog = None
    app, stop = VersionsSeen(), asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=10)


SPEC_TAIL = '[input]\nkey = "k"\n[output.columns]\nname = { path = "name", type = "str" }\n'


@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [True, False])
async def test_http2_multiplexes_the_requests_in_flight_on_one_connection(
    http2_api: tuple[VersionsSeen, str], http2: bool
) -> None:
    """With http2 = true, 300 keys at 32 in flight are 300 HTTP/2 requests on one connection;
    without it, the same job speaks HTTP/1.1 over a connection per request in flight."""
    app, base = http2_api
    api = f'[api]\nurl = "{base}/v1/lookup/{{k}}"\ntransport = "pyreqwest"\nhttp2 = {str(http2).lower()}\n'
    spec = make_spec(api + SPEC_TAIL + "[limits]\nconcurrency = 32\n")
    keys = [f"k{i}" for i in range(300)]
    out = (await enrich_frame(pl.DataFrame({"k": keys}), spec)).frame
    assert out["_enrich_status"].to_list() == ["ok"] * len(keys)
    assert out["name"].to_list() == keys
    if http2:
        assert app.versions == Counter({"2": 300})
        assert len(app.connections) == 1
    else:
        assert app.versions == Counter({"1.1": 300})
        assert 1 < len(app.connections) <= 32
