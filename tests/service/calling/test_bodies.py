"""The bounded body reader: decodes what Enrich asks for, never holds more than its limit."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator

import pytest

from service import CallError, ErrorClass
from service.calling.bodies import SMALL_BODY_BYTES, BodyTooLargeError, BoundedBody, read_bounded

DOC = b'{"country": {"iso_code": "DE"}, "tags": ["a", "b"]}' * 20


def raw_deflate(data: bytes) -> bytes:
    """Deflate without zlib's header, as some servers send it."""
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def read(data: bytes, encoding: str | None, limit: int = 100_000, chunk: int = 1000) -> bytes:
    body = BoundedBody(limit, encoding)
    for start in range(0, len(data), chunk):
        body.feed(data[start : start + chunk])
    return body.finish()


# mtime=0: a gzip stream holds its creation time, and the parallel test workers (pytest-xdist)
# must each collect the same test ids from these bytes.
@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (DOC, None),
        (DOC, "identity"),
        (gzip.compress(DOC, mtime=0), "gzip"),
        (gzip.compress(DOC, mtime=0), "x-gzip"),
        (gzip.compress(DOC[:500], mtime=0) + gzip.compress(DOC[500:], mtime=0), "gzip"),  # two gzip members
        (zlib.compress(DOC), "deflate"),  # RFC 9110's deflate: zlib-wrapped
        (raw_deflate(DOC), "deflate"),
    ],
)
def test_each_encoding_asked_for_is_decoded(encoded: bytes, encoding: str | None) -> None:
    """identity, gzip (one member or several), zlib-wrapped and raw deflate give the document."""
    assert read(encoded, encoding) == DOC


def test_a_gzip_bomb_stops_at_the_limit_without_inflating_further() -> None:
    """64 MiB of zeros in a 65 KB gzip stream: the reader stops after one byte past 1 MiB."""
    bomb = gzip.compress(bytes(64 * 1024**2))
    body = BoundedBody(1024**2, "gzip")
    with pytest.raises(BodyTooLargeError):
        body.feed(bomb)
    assert body.decoded_bytes == 1024**2 + 1  # what it inflated before stopping, not 64 MiB


def test_bytes_as_received_count_too() -> None:
    """An identity body over the limit, or raw bytes over it before any decoding, stop the read."""
    with pytest.raises(BodyTooLargeError):
        read(b" " * 2000, None, limit=1999)
    assert read(b" " * 1999, None, limit=1999) == b" " * 1999


@pytest.mark.parametrize(
    ("encoded", "encoding", "words"),
    [
        (gzip.compress(DOC, mtime=0)[:-12], "gzip", "cut short"),
        (b"not gzip at all", "gzip", "broken"),
        (DOC, "br", "does not read: 'br'"),
        (DOC, "gzip, br", "does not read"),
    ],
)
def test_a_stream_it_cannot_decode_is_invalid_json(encoded: bytes, encoding: str, words: str) -> None:
    """Cut short, corrupt, or in an encoding not asked for: invalid_json, saying which."""
    with pytest.raises(CallError, match=words) as raised:
        read(encoded, encoding)
    assert raised.value.error_class is ErrorClass.INVALID_JSON


@pytest.mark.asyncio
async def test_only_as_many_bodies_grow_large_at_once_as_there_are_slots() -> None:
    """Two readers of 1 MiB bodies and one large-body slot: past the free part, they take turns."""
    growing: list[int] = []
    past_free = 0

    class Watched(BoundedBody):
        def feed(self, raw: bytes) -> None:
            nonlocal past_free
            was_small = self.received_bytes <= SMALL_BODY_BYTES
            super().feed(raw)
            if was_small and self.received_bytes > SMALL_BODY_BYTES:
                past_free += 1
                growing.append(past_free)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b" " * (16 * 1024)
            await asyncio.sleep(0)

    async def read() -> None:
        nonlocal past_free
        body = Watched(2 * 1024**2, None)
        await read_bounded(chunks(), body, slots)
        past_free -= 1

    slots = asyncio.Semaphore(1)
    await asyncio.wait_for(asyncio.gather(read(), read()), timeout=10)
    assert growing == [1, 1]  # never two bodies past the free part at once
