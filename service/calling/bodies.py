"""Reading an answer's body, never holding more of it than the spec allows.

The limit counts bytes as received and as decoded: gzip and deflate are inflated in steps of at
most what is left under the limit (``zlib``'s ``max_length``), so a small compressed answer that
would inflate to gigabytes (a "zip bomb") stops at the limit instead of taking the machine's
memory. Every sender reads through ``BoundedBody``, so every transport treats a body alike.

A limit per answer is not a limit per job: 64 answers in flight could each hold the whole of it.
So the first ``SMALL_BODY_BYTES`` of any body are read freely (almost every JSON answer is
smaller), and reading further takes one of a few ``LargeBodies`` slots: at most
``LARGE_BODIES_BYTES`` worth of them. A reader waiting for a slot holds only its small part, so
no reader ever waits on another that waits on it.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from typing import Any

from service.errors import CallError, ErrorClass

SMALL_BODY_BYTES = 64 * 1024
LARGE_BODIES_BYTES = 32 * 1024**2

# What Enrich asks for and can inflate in bounded steps. gzip helps real APIs with large answers
# (JSON often shrinks 5-10x); brotli and zstd are not asked for, so a server should not send them.
ACCEPT_ENCODING = "gzip, deflate"
_ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")
_MAX_GZIP_MEMBERS = 64  # a gzip stream may hold several members; a hostile one, thousands


def large_bodies_at_once(max_bytes: int) -> int:
    """How many bodies may grow past ``SMALL_BODY_BYTES`` at once, each up to ``max_bytes``."""
    return max(1, LARGE_BODIES_BYTES // max(max_bytes, 1))


class BodyTooLargeError(Exception):
    """The body went past the limit (a 2xx answer then fails as ``too_large``)."""


def too_large(limit: int) -> CallError:
    """The row error for an answer over ``limit`` bytes."""
    return CallError(ErrorClass.TOO_LARGE, f"answer larger than {limit:,} bytes ([api].max_response_bytes)")


def reads_plainly(content_encoding: str | None) -> bool:
    """Whether a body in this encoding is the bytes as received (no decoding to bound)."""
    return content_encoding is None or content_encoding.strip().lower() == "identity"


class BoundedBody:
    """Collects a body fed in raw chunks, decoding ``content_encoding``.

    ``feed`` raises ``BodyTooLargeError`` once more than ``limit`` bytes came in or came out of the
    decoder, and ``CallError(invalid_json)`` for an encoding it does not read or a broken stream.
    """

    def __init__(self, limit: int, content_encoding: str | None) -> None:
        self._limit = limit
        self._received = 0
        self._size = 0
        self._parts: list[bytes] = []
        self._encoding = (content_encoding or "identity").strip().lower()
        if self._encoding not in _ENCODINGS:
            raise CallError(
                ErrorClass.INVALID_JSON, f"answer in an encoding Enrich does not read: {self._encoding!r}"
            )
        self._decoder: Any = None  # a zlib decompressor, made when the first bytes arrive
        self._members = 0

    @property
    def received_bytes(self) -> int:
        """How many bytes came in so far, as received."""
        return self._received

    @property
    def decoded_bytes(self) -> int:
        """How many bytes of body this reader has produced (and holds) so far."""
        return self._size

    def feed(self, raw: bytes) -> None:
        """Take the next chunk as received."""
        self._received += len(raw)
        if self._received > self._limit:
            raise BodyTooLargeError
        if self._encoding == "identity":
            self._keep(raw)
            return
        try:
            self._inflate(raw)
        except zlib.error as exc:
            raise CallError(
                ErrorClass.INVALID_JSON, f"answer's {self._encoding} stream is broken ({exc})"
            ) from exc

    def finish(self) -> bytes:
        """The whole decoded body; ``CallError(invalid_json)`` if a compressed stream was cut short."""
        if self._decoder is not None and not self._decoder.eof:
            raise CallError(ErrorClass.INVALID_JSON, f"answer's {self._encoding} stream is cut short")
        return b"".join(self._parts)

    def cut_short(self, status: int, limit: int) -> bytes:
        """After ``BodyTooLargeError``: for a 2xx answer, raise ``too_large``; for another, the start
        that was read (enough for its message)."""
        if 200 <= status < 300:
            raise too_large(limit)
        return b"".join(self._parts)

    def _inflate(self, data: bytes) -> None:
        while data:
            decoder = self._decoder
            if decoder is None or (decoder.eof and not decoder.unconsumed_tail):
                decoder = self._next_decoder(data)
            # At most one byte past what is left: enough to know the limit is crossed.
            self._keep(decoder.decompress(data, self._limit - self._size + 1))
            data = decoder.unconsumed_tail or (decoder.unused_data if decoder.eof else b"")

    def _next_decoder(self, first: bytes) -> Any:
        """A decoder for the stream (or gzip member) starting with ``first``."""
        self._members += 1
        if self._members > _MAX_GZIP_MEMBERS:
            raise CallError(ErrorClass.INVALID_JSON, "answer has too many gzip members")
        if self._encoding == "deflate":
            # RFC 9110's deflate is zlib-wrapped; some servers send it raw. A zlib header says so:
            # compression method 8 in the low nibble, and the first two bytes a multiple of 31.
            wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and ((first[0] << 8) | first[1]) % 31 == 0
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        else:
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return self._decoder

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise BodyTooLargeError
        if data:
            self._parts.append(data)


async def read_bounded(
    chunks: AsyncIterator[bytes], body: BoundedBody, large: asyncio.Semaphore
) -> BoundedBody:
    """Feed ``chunks`` into ``body``, taking a slot of ``large`` before it grows past
    ``SMALL_BODY_BYTES`` (and giving it back when done). ``BodyTooLargeError`` propagates."""
    holding = False
    try:
        async for chunk in chunks:
            if not holding and body.received_bytes + len(chunk) > SMALL_BODY_BYTES:
                await large.acquire()
                holding = True
            body.feed(chunk)
    finally:
        if holding:
            large.release()
    return body
