"""The pyreqwest sender: reqwest/hyper (Rust) does the HTTP, Python only hands over and takes back.

Chosen by measurement (benchmarks, "senders"): per request it costs a fraction of aiohttp's Python
machinery. It is optional (``pip install 'enrich[pyreqwest]'``); this module is imported only when
a spec or a caller asks for ``transport = "pyreqwest"``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import timedelta
from typing import Any

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import RequestError
from pyreqwest.http import HeaderMap
from pyreqwest.response import Response

from service.calling.bodies import large_bodies_at_once
from service.calling.requests import PreparedRequest
from service.calling.sending import (
    RawResponse,
    SenderSettings,
    announced_length,
    connection_failed,
    no_answer_within,
    read_body,
    redirect_location,
)
from service.errors import CallError, ErrorClass

# reqwest's own messages name the URL (and so a key, or a secret in its query); only the innermost
# cause of an OS error ("Connection refused (os error 111)") is safe and worth showing.
_OS_ERROR = re.compile(r"(?P<reason>[^()]{1,80}) \(os error \d+\)")

# reqwest parses URLs as the WHATWG standard says, which resolves "." and ".." path segments even
# percent-encoded: a key ".." in /v1/lookup/{key} would ask /v1/ instead. Such a URL is not sent.
_DOT_SEGMENT = re.compile(r"/(?:\.|%2e){1,2}(?:[/?#]|$)", re.IGNORECASE)
UNSENDABLE_DOT_SEGMENT = (
    "a '.' or '..' path segment cannot be sent by transport pyreqwest (its URL parser resolves them "
    "to another path); use transport aiohttp or httpx for such keys"
)


def _reason(exc: RequestError) -> str:
    causes = (getattr(exc, "details", None) or {}).get("causes") or []
    for cause in reversed(causes):
        found = _OS_ERROR.fullmatch(str(cause.get("message", "")))
        if found:
            return found["reason"]
    return type(exc).__name__


class _ReadableHeaders(Mapping[str, str]):
    """An answer's headers as the engine reads them: pyreqwest raises ``ValueError`` for a value
    that is not valid text, where the others decode it; here such a value reads as U+FFFD, which
    no header parser takes (as a Retry-After of "\x80" is ignored on every sender)."""

    __slots__ = ("_headers",)

    def __init__(self, headers: HeaderMap) -> None:
        self._headers = headers

    def __getitem__(self, name: str) -> str:
        try:
            return self._headers[name]
        except ValueError:
            return UNREADABLE_HEADER

    def get(self, name: str, default: Any = None) -> Any:  # Mapping's would raise KeyError per miss
        try:
            return self._headers.get(name, default)
        except ValueError:
            return UNREADABLE_HEADER

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)


UNREADABLE_HEADER = "\ufffd"


async def _whole(response: Response) -> bytes:
    return bytes(await response.bytes())


async def _chunks(response: Response) -> AsyncIterator[bytes]:
    reader = response.body_reader
    while (chunk := await reader.read_chunk()) is not None:
        yield bytes(chunk)


class PyreqwestSender:
    """Two pyreqwest clients (the API's, and one without secret-bearing headers for redirects to
    other origins), each with at most ``concurrency`` requests in flight, a total timeout per
    exchange, no redirects, cookies, proxies from the environment nor automatic decompression:
    bodies are inflated by ``BoundedBody``, in bounded steps, as with every sender."""

    def __init__(self, settings: SenderSettings) -> None:
        self._settings = settings
        self._timeout_s = settings.timeout_s
        self._max_bytes = settings.max_bytes
        self._large = asyncio.Semaphore(large_bodies_at_once(settings.max_bytes))
        self._client: Client | None = None
        self._foreign: Client | None = None

    async def open(self) -> None:
        """Build the clients (their pools fill on first use)."""
        settings = self._settings
        self._client = self._new_client(settings.headers, settings.http2, settings.h2c)
        self._foreign = self._new_client(settings.foreign_headers, settings.http2, h2c=False)

    def _new_client(self, headers: dict[str, str], http2: bool, h2c: bool) -> Client:
        builder = (
            ClientBuilder()
            .default_headers(headers)
            .max_connections(self._settings.concurrency)
            .pool_max_idle_per_host(self._settings.concurrency)
            .timeout(timedelta(seconds=self._timeout_s))
            .follow_redirects(False)  # the caller decides (service.calling.redirects)
            .referer(False)
            .no_proxy()  # the engine never reads the environment (docs/architecture.md, Layers)
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
        )
        if h2c:
            builder = builder.http2_prior_knowledge()
        elif http2:
            builder = builder.http2(True)
        return builder.build()

    async def send(
        self, request: PreparedRequest, extra_headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        """Send with pyreqwest; a redirect is an answer here, as with every sender."""
        client = self._foreign if request.foreign else self._client
        if client is None:
            raise RuntimeError("PyreqwestSender.send() before open()")
        if _DOT_SEGMENT.search(request.url):
            raise CallError(ErrorClass.INVALID_KEY, UNSENDABLE_DOT_SEGMENT)
        builder = client.request(request.method, request.url)
        if extra_headers:
            builder = builder.headers(dict(extra_headers))
        if request.body is not None:
            builder = builder.body_bytes(request.body)
        try:
            async with builder.build_streamed() as response:
                status, headers = response.status, _ReadableHeaders(response.headers)
                body = await self._read(response, headers)
        except TimeoutError as exc:  # pyreqwest's timeouts are TimeoutErrors too
            raise no_answer_within(self._timeout_s) from exc
        except RequestError as exc:
            raise connection_failed(_reason(exc)) from exc
        return RawResponse(
            status, body, headers.get("Retry-After"), redirect_location(status, headers), headers
        )

    async def _read(self, response: Response, headers: _ReadableHeaders) -> bytes:
        return await read_body(
            response.status,
            announced_length(headers.get("Content-Length")),
            headers.get("Content-Encoding"),
            max_bytes=self._max_bytes,
            large=self._large,
            whole=lambda: _whole(response),
            chunks=lambda: _chunks(response),
        )

    async def aclose(self) -> None:
        """Close the clients."""
        for client in (self._client, self._foreign):
            if client is not None:
                await client.close()
        self._client = self._foreign = None
