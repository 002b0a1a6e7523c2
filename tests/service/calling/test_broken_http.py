"""Answers that are not well-formed HTTP, from a raw socket on loopback: each is a row outcome on
every sender (a connection-level failure, retried as one), never an exception out of the job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import polars as pl
import pytest
import pytest_asyncio

from service import SENDER_NAMES, enrich_frame
from service.testing import MockClock
from tests.helpers import make_spec

pytestmark = pytest.mark.integration

TRANSPORTS = SENDER_NAMES

# What the server writes back, whatever it is asked, then it closes the connection.
BROKEN = {
    "status-not-a-number": b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\n{}",
    "status-out-of-range": b"HTTP/1.1 99999 Weird\r\nContent-Length: 2\r\n\r\n{}",
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n",
    "length-not-a-number": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{}",
    "header-without-colon": b"HTTP/1.1 200 OK\r\nthis is not a header\r\nContent-Length: 2\r\n\r\n{}",
    "body-shorter-than-length": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}",
    "nothing": b"",
}


@pytest_asyncio.fixture
async def raw_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A server answering every request with BROKEN[the key in its path]; the keys it was asked."""
    asked: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = request.split(b" ", 2)[1].rsplit(b"/", 1)[-1].decode()
        asked.append(key)
        writer.write(BROKEN[key])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", asked


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_malformed_http_fails_its_row_and_nothing_else(
    raw_server: tuple[str, list[str]], transport: str
) -> None:
    """Each malformed answer fails its row as connect after its attempts; none ends the job."""
    base, asked = raw_server
    spec = make_spec(
        "[retry]\nattempts = 2\nbackoff = { initial_s = 0.01, max_s = 0.02 }\n[circuit]\nenabled = false\n",
        url=f"{base}/v1/{{k}}",
    )
    frame = pl.DataFrame({"k": list(BROKEN)})
    out = (await enrich_frame(frame, spec, transport=transport, clock=MockClock())).frame
    assert out["_enrich_error"].to_list() == ["connect"] * len(BROKEN)  # no HTTP answer came
    assert out["_enrich_attempts"].to_list() == [2] * len(BROKEN)  # so it was retried, as such
    assert sorted(asked) == sorted(list(BROKEN) * 2)
