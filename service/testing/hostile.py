"""Answers a hostile or broken API gives, for the mock API's ``bomb-``, ``huge-``, ``sized-``,
``endless-``, ``drip-`` and ``gzip-`` keys: what Enrich must survive without losing its memory,
its time or the job.

    gzip-     a normal answer, gzip-compressed (what a well-behaved API sends when asked)
    bomb-     a small gzip body inflating to ``bomb_bytes`` of zeros
    huge-     ``stream_bytes`` of spaces, chunked (no length announced)
    sized-    the same, with its Content-Length announced
    endless-  spaces, chunked, until the client goes away
    drip-     a valid answer, one byte at a time over ``drip_s`` seconds
    bigerror- a 503 whose body is ``stream_bytes`` long (only its start is worth reading)
    echo-     a 400 echoing what it was sent, as many APIs' error messages do: echo-url- keys the
              URL as received (percent-encoded), other echo- keys the Authorization header
              (JSON-escaped)

Redirects send KEY (``redirect-X``...) to ``landed-X`` on ``--redirect-to`` (another origin), or:
    redirect-, redirect307-           302 / 307 to the other origin
    redirectrel-, redirectrel307-     302 / 307 to landed-X on this origin (a relative Location)
    redirectloop-                     302 to itself, for ever
    redirectfile-                     302 to file:///etc/passwd
    redirectcopy-                     302 to the other origin, copying the request's query
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import threading
import zlib
from dataclasses import dataclass

from aiohttp import web

from service.testing.mock_answers import answer_bytes

_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HostileSizes:
    """How big and how slow the hostile answers are."""

    bomb_bytes: int = 1024**3
    stream_bytes: int = 2 * 1024**3
    drip_s: float = 5.0


_BOMB_BUILDING = threading.Lock()


def gzip_bomb(inflated_bytes: int) -> bytes:
    """A gzip stream of ``inflated_bytes`` zeros (about a thousandth of that, compressed), built once
    per size even when several bomb keys are asked for at the same moment."""
    with _BOMB_BUILDING:
        return _built_gzip_bomb(inflated_bytes)


@functools.cache
def _built_gzip_bomb(inflated_bytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(_CHUNK)
    parts = [compressor.compress(zeros) for _ in range(inflated_bytes // _CHUNK)]
    parts.append(compressor.compress(bytes(inflated_bytes % _CHUNK)))
    parts.append(compressor.flush())
    return b"".join(parts)


async def hostile_response(
    fault: str, key: str, request: web.Request, sizes: HostileSizes, stopping: asyncio.Event
) -> web.StreamResponse:
    """The hostile answer ``fault`` for ``key``."""
    if fault == "gzip":
        return _json(gzip.compress(answer_bytes(key)), gzipped=True)
    if fault == "gzip_bomb":
        # Off the event loop: a 1 GiB bomb takes seconds to compress, and every other answer of
        # the server (the normal keys beside the bombs) would wait for it and time out.
        return _json(await asyncio.to_thread(gzip_bomb, sizes.bomb_bytes), gzipped=True)
    if fault == "echo_request":
        sent = str(request.url) if key.startswith("echo-url-") else request.headers.get("Authorization")
        return web.Response(
            status=400, body=json.dumps({"rejected": sent}).encode(), content_type="application/json"
        )
    if fault == "drip":
        return await _drip(answer_bytes(key), request, sizes.drip_s, stopping)
    length = sizes.stream_bytes if fault == "huge_declared" else None
    total = None if fault == "endless_body" else sizes.stream_bytes
    status = 503 if fault == "huge_error" else 200
    return await _spaces(request, status, length, total, stopping)


def _json(body: bytes, *, gzipped: bool) -> web.Response:
    response = web.Response(body=body, content_type="application/json")
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    return response


async def _spaces(
    request: web.Request, status: int, length: int | None, total: int | None, stopping: asyncio.Event
) -> web.StreamResponse:
    """Spaces (a valid JSON prefix, never a document), ``total`` bytes or until the client leaves."""
    response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    if length is None:
        response.enable_chunked_encoding()
    else:
        response.content_length = length
    await response.prepare(request)
    sent = 0
    chunk = b" " * _CHUNK
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while (total is None or sent < total) and not stopping.is_set():
            piece = chunk if total is None else chunk[: total - sent]
            await response.write(piece)
            sent += len(piece)
    return response


async def _drip(
    body: bytes, request: web.Request, seconds: float, stopping: asyncio.Event
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        for i in range(len(body)):
            if stopping.is_set():
                break
            await response.write(body[i : i + 1])
            await asyncio.sleep(seconds / len(body))
    return response


def redirect_response(fault: str, key: str, request: web.Request, other_origin: str | None) -> web.Response:
    """The redirect ``fault`` for ``key`` (``other_origin``: where redirect- keys point; this
    server's own when None)."""
    landing = "/v1/lookup/landed-" + key.split("-", 1)[1]
    elsewhere = (other_origin or f"{request.scheme}://{request.host}") + landing
    status = 307 if fault in ("redirect_307", "redirect_relative_307") else 302
    location = {
        "redirect": elsewhere,
        "redirect_307": elsewhere,
        "redirect_relative": landing,
        "redirect_relative_307": landing,
        "redirect_loop": request.path,
        "redirect_file": "file:///etc/passwd",
        "redirect_copying_query": f"{elsewhere}?{request.query_string}",
    }[fault]
    return web.Response(status=status, headers={"Location": location}, text="moved")
