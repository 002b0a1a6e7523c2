"""What every sender shares: the answer it hands back, how it is set up, what it promises, and how
a library's failure or an answer's size becomes a row's error, alike whatever library sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from service.calling.bodies import (
    SMALL_BODY_BYTES,
    BodyTooLargeError,
    BoundedBody,
    read_bounded,
    reads_plainly,
    too_large,
)
from service.calling.requests import PreparedRequest
from service.errors import CallError, ErrorClass


# One a request: a frozen dataclass's __init__ (object.__setattr__ a field) took 550 ns here,
# this one 150. Nothing changes it once made.
@dataclass(slots=True)
class RawResponse:
    """What the engine needs from an answer (``location`` only of a redirect); ``headers`` are the
    HTTP library's own (no copy is made), for whoever shows an exchange (``enrich try``)."""

    status: int
    body: bytes
    retry_after: str | None
    location: str | None = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SenderSettings:
    """How a sender talks to the API: its headers (and the ones a redirect to another origin may
    carry: none holding a secret), at most ``concurrency`` connections, ``timeout_s`` for a whole
    exchange, ``max_bytes`` of an answer, and which HTTP versions it speaks."""

    headers: dict[str, str]
    foreign_headers: dict[str, str]
    concurrency: int
    timeout_s: float
    max_bytes: int
    # HTTP/2 (pyreqwest only): offered by TLS negotiation to every origin; to the API's own
    # cleartext origin spoken with prior knowledge (``h2c``), as the spec asks.
    http2: bool = False
    h2c: bool = False


def redirect_location(status: int, headers: Mapping[str, str]) -> str | None:
    return headers.get("Location") if 300 <= status < 400 else None


class Sender(Protocol):
    """Sends one request; raises ``CallError`` (timeout or connect) when no answer came."""

    async def open(self) -> None:
        """Create the connection pool (inside the running event loop)."""
        ...

    async def send(
        self, request: PreparedRequest, extra_headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        """Send ``request`` (with ``extra_headers`` besides the spec's) and read the whole answer."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


def no_answer_within(timeout_s: float) -> CallError:
    return CallError(ErrorClass.TIMEOUT, f"no answer within {timeout_s:g}s")


def connection_failed(reason: str) -> CallError:
    return CallError(ErrorClass.CONNECT, f"connection failed: {reason}")


# Of an answer that is not a 2xx, only the start is read: its message needs a line, not its body.
ERROR_SNIPPET_BYTES = 64 * 1024


def body_limit(status: int, max_bytes: int) -> int:
    return max_bytes if 200 <= status < 300 else ERROR_SNIPPET_BYTES


def declared_too_long(status: int, content_length: int | None, max_bytes: int) -> bool:
    """A 2xx answer announcing more than the limit fails before a byte of it is read."""
    return 200 <= status < 300 and content_length is not None and content_length > max_bytes


def announced_length(content_length: str | None) -> int | None:
    """A Content-Length header's value, or None where it is absent or not a plain number."""
    if content_length is not None and content_length.isascii() and content_length.isdigit():
        return int(content_length)
    return None


async def read_body(
    status: int,
    length: int | None,
    encoding: str | None,
    *,
    max_bytes: int,
    large: asyncio.Semaphore,
    whole: Callable[[], Awaitable[bytes]],
    chunks: Callable[[], AsyncIterator[bytes]],
    drop: Callable[[], None] = lambda: None,
) -> bytes:
    """An answer's body, bounded alike on every sender: ``whole()`` in one call where its length is
    announced, within bounds and not encoded (the common case), else ``chunks()`` as received,
    through ``BoundedBody``. Only a slice of a non-2xx answer is kept; a 2xx answer announcing or
    growing past ``max_bytes`` raises the ``too_large`` ``CallError``. ``drop()`` is called when the
    rest of the body is left unread (for a library that would otherwise drain it)."""
    limit = body_limit(status, max_bytes)
    if length is not None and length <= limit and reads_plainly(encoding):
        if length <= SMALL_BODY_BYTES:
            return await whole()
        async with large:
            return await whole()
    if declared_too_long(status, length, max_bytes):
        drop()
        raise too_large(max_bytes)
    body = BoundedBody(limit, encoding)
    try:
        await read_bounded(chunks(), body, large)
    except BodyTooLargeError:
        drop()
        return body.cut_short(status, max_bytes)
    return body.finish()
