"""Senders: the one place where HTTP libraries are called and their errors translated.

``AiohttpSender`` is the default: httpx's own request/response machinery costs about 3.5x
aiohttp's per request on the machines we target (design.md), too much for the hot path.
``HttpxSender`` keeps httpx as the interface to plug into: any ``httpx.AsyncBaseTransport``
(``httpx.MockTransport``, respx, a custom or proxying transport) and ``httpx.Auth`` go through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx
from yarl import URL

from service.errors import CallError, ErrorClass
from service.request_builder import PreparedRequest


@dataclass(frozen=True, slots=True)
class RawResponse:
    """What the engine needs from an answer."""

    status: int
    body: bytes
    retry_after: str | None


class Sender(Protocol):
    """Sends one request; raises ``CallError`` (timeout or connect) when no answer came."""

    async def open(self) -> None:
        """Create the connection pool (inside the running event loop)."""
        ...

    async def send(self, request: PreparedRequest) -> RawResponse:
        """Send ``request`` and read the whole answer."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


def _timeout_error(timeout_s: float) -> CallError:
    return CallError(ErrorClass.TIMEOUT, f"no answer within {timeout_s:g}s")


def _connect_error(exc: BaseException) -> CallError:
    reason = getattr(getattr(exc, "os_error", None), "strerror", None) or type(exc).__name__
    return CallError(ErrorClass.CONNECT, f"connection failed: {reason}")


class AiohttpSender:
    """The default sender: one aiohttp session with a keep-alive pool sized to the concurrency."""

    def __init__(self, headers: dict[str, str], concurrency: int, timeout_s: float) -> None:
        self._headers = headers
        self._concurrency = concurrency
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the session and its connection pool."""
        connector = aiohttp.TCPConnector(
            limit=self._concurrency, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            cookie_jar=aiohttp.DummyCookieJar(),  # one key's cookies must not leak into another's
            trust_env=False,  # the engine never reads the environment (style.md)
        )
        # aiohttp silently resends an idempotent request once when a reused connection is reset.
        # That request escapes the rate limit and the attempt count (the mock API's counters saw 4
        # requests for 2 attempts), so every resend goes through the retry policy instead. There
        # is no public switch for it in aiohttp 3.14.
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False

    async def send(self, request: PreparedRequest) -> RawResponse:
        """Send with aiohttp; the URL is already percent-encoded, so yarl must not re-encode it."""
        session = self._session
        if session is None:
            raise RuntimeError("AiohttpSender.send() before open()")
        try:
            async with session.request(
                request.method, URL(request.url, encoded=True), data=request.body
            ) as response:
                body = await response.read()
                return RawResponse(response.status, body, response.headers.get("Retry-After"))
        except TimeoutError:
            raise _timeout_error(self._timeout_s) from None
        except aiohttp.ClientError as exc:
            raise _connect_error(exc) from None

    async def aclose(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxSender:
    """Sends through an ``httpx.AsyncClient``: for custom transports, auth, and respx tests."""

    def __init__(
        self,
        headers: dict[str, str],
        concurrency: int,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._client = httpx.AsyncClient(
            transport=transport,
            auth=auth,
            headers=headers,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=True,
            trust_env=False,
        )

    async def open(self) -> None:
        """Nothing to do: httpx opens connections on first use."""

    async def send(self, request: PreparedRequest) -> RawResponse:
        """Send with httpx."""
        try:
            response = await self._client.request(request.method, request.url, content=request.body)
        except httpx.TimeoutException:
            raise _timeout_error(self._timeout_s) from None
        except httpx.HTTPError as exc:
            raise _connect_error(exc) from None
        return RawResponse(response.status_code, response.content, response.headers.get("Retry-After"))

    async def aclose(self) -> None:
        """Close the client."""
        await self._client.aclose()
