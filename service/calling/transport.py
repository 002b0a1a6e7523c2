"""Senders: the one place where HTTP libraries are called and their errors translated (what every
sender shares is in ``service.calling.sending``; the optional pyreqwest sender in its own module).

``AiohttpSender`` is the default: httpx's own request/response machinery costs about 3.5x
aiohttp's per request on the machines we target (docs/architecture.md, "Measured costs"), too
much for the hot path.
``HttpxSender`` keeps httpx as the interface to plug into: any ``httpx.AsyncBaseTransport``
(``httpx.MockTransport``, respx, a custom or proxying transport) and ``httpx.Auth`` go through it.
"""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Mapping

import aiohttp
import anyio
import httpx

from service.calling.bodies import SMALL_BODY_BYTES, large_bodies_at_once, too_large
from service.calling.encoded_urls import EncodedUrls
from service.calling.redirects import CREDENTIAL_HEADERS
from service.calling.requests import PreparedRequest, request_headers
from service.calling.sending import (
    RawResponse,
    Sender,
    SenderSettings,
    announced_length,
    body_limit,
    connection_failed,
    no_answer_within,
    read_body,
    redirect_location,
)
from service.errors import CallError, ErrorClass
from service.redact import Redactor
from service.spec import Spec
from service.spec.sections import SenderName

# What a caller sends through: None or "aiohttp" (the default), another of SENDER_NAMES, or any
# httpx transport.
TransportChoice = httpx.AsyncBaseTransport | str | None
SENDER_NAMES: tuple[str, ...] = typing.get_args(SenderName)


# Every library exception a sender may meet, and what it means for a row: the one translation of
# third-party errors (as httpx's ``map_httpcore_exceptions``). Order matters: aiohttp's timeouts
# are also ``ClientError``s, so timeouts come first.
_TRANSLATIONS: tuple[tuple[type[BaseException], ErrorClass], ...] = (
    (TimeoutError, ErrorClass.TIMEOUT),
    (httpx.TimeoutException, ErrorClass.TIMEOUT),
    (aiohttp.ClientError, ErrorClass.CONNECT),
    (httpx.HTTPError, ErrorClass.CONNECT),
)
TRANSLATED = tuple(kind for kind, _ in _TRANSLATIONS)


def translate(exc: BaseException, timeout_s: float) -> CallError:
    """The ``CallError`` for a library's exception (one of ``TRANSLATED``); raise it ``from exc``."""
    error_class = next(error_class for kind, error_class in _TRANSLATIONS if isinstance(exc, kind))
    if error_class is ErrorClass.TIMEOUT:
        return no_answer_within(timeout_s)
    return connection_failed(getattr(getattr(exc, "os_error", None), "strerror", None) or type(exc).__name__)


class AiohttpSender:
    """The default sender: an aiohttp session with a keep-alive pool sized to the concurrency (and a
    second one, without the secret-bearing headers, for redirects to other origins)."""

    def __init__(self, settings: SenderSettings) -> None:
        self._settings = settings
        self._timeout_s = settings.timeout_s
        self._max_bytes = settings.max_bytes
        self._small = min(SMALL_BODY_BYTES, settings.max_bytes)  # read whole, with no further check
        self._large = asyncio.Semaphore(large_bodies_at_once(settings.max_bytes))
        self._session: aiohttp.ClientSession | None = None
        self._foreign: aiohttp.ClientSession | None = None
        self._url = EncodedUrls()

    async def open(self) -> None:
        """Create the sessions and their connection pools."""
        self._session = self._new_session(self._settings.headers, self._settings.concurrency)
        self._foreign = self._new_session(self._settings.foreign_headers, self._settings.concurrency)

    def _new_session(self, headers: dict[str, str], connections: int) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=connections, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=300
        )
        session = aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            cookie_jar=aiohttp.DummyCookieJar(),  # one key's cookies must not leak into another's
            trust_env=False,  # the engine never reads the environment (docs/architecture.md, Layers)
            auto_decompress=False,  # bodies are inflated by BoundedBody, in bounded steps
        )
        # aiohttp silently resends an idempotent request once when a reused connection is reset.
        # That request escapes the rate limit and the attempt count (the mock API's counters saw 4
        # requests for 2 attempts), so every resend goes through the retry policy instead. There
        # is no public switch for it in aiohttp 3.14.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        return session

    async def send(
        self, request: PreparedRequest, extra_headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        """Send with aiohttp; the URL is already percent-encoded, so yarl must not re-encode it.
        Redirects are answers here: the caller decides whether to follow them."""
        session = self._foreign if request.foreign else self._session
        if session is None:
            raise RuntimeError("AiohttpSender.send() before open()")
        try:
            async with session.request(
                request.method,
                self._url(request.url),
                data=request.body,
                headers=extra_headers,
                allow_redirects=False,
            ) as response:
                status, headers, length = response.status, response.headers, response.content_length
                if length is not None and length <= self._small and "Content-Encoding" not in headers:
                    body = await response.read()  # the usual answer: read_body's first case, inline
                else:
                    body = await self._read(response)
                location = redirect_location(status, headers)
                return RawResponse(status, body, headers.get("Retry-After"), location, headers)
        except TRANSLATED as exc:
            raise translate(exc, self._timeout_s) from exc

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        return await read_body(
            response.status,
            response.content_length,
            response.headers.get("Content-Encoding"),
            max_bytes=self._max_bytes,
            large=self._large,
            whole=response.read,
            chunks=response.content.iter_any,
            drop=response.close,  # not drained: the connection is dropped with the rest unread
        )

    async def aclose(self) -> None:
        """Close the sessions."""
        for session in (self._session, self._foreign):
            if session is not None:
                await session.close()
        self._session = self._foreign = None


class HttpxSender:
    """Sends through an ``httpx.AsyncClient``: for custom transports, auth, and respx tests. The
    client holds the headers any origin may get; those holding secrets go with the API's requests."""

    def __init__(
        self,
        settings: SenderSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self._timeout_s = settings.timeout_s
        self._max_bytes = settings.max_bytes
        self._large = asyncio.Semaphore(large_bodies_at_once(settings.max_bytes))
        foreign = settings.foreign_headers
        self._home_headers = {k: v for k, v in settings.headers.items() if foreign.get(k) != v}
        self._auth = auth
        self._client = httpx.AsyncClient(
            transport=transport,
            headers=foreign,
            timeout=settings.timeout_s,
            limits=httpx.Limits(
                max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
            ),
            follow_redirects=False,  # the caller decides (service.calling.redirects)
            trust_env=False,
        )

    async def open(self) -> None:
        """Nothing to do: httpx opens connections on first use."""

    async def send(
        self, request: PreparedRequest, extra_headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        """Send with httpx, the whole exchange within ``timeout_s``: httpx's own timeouts bound each
        read, so a server sending a byte a second would otherwise hold a request for ever."""
        foreign = request.foreign
        headers = None if foreign else self._home_headers
        if extra_headers:
            headers = {**(headers or {}), **extra_headers}
        try:
            with anyio.fail_after(self._timeout_s):
                async with self._client.stream(
                    request.method,
                    request.url,
                    content=request.body,
                    headers=headers,
                    auth=None if foreign else self._auth,
                ) as response:
                    body = await self._read(response)
        except TRANSLATED as exc:
            raise translate(exc, self._timeout_s) from exc
        answer_headers = response.headers
        return RawResponse(
            response.status_code,
            body,
            answer_headers.get("Retry-After"),
            redirect_location(response.status_code, answer_headers),
            answer_headers,
        )

    async def _read(self, response: httpx.Response) -> bytes:
        status, headers = response.status_code, response.headers
        if response.is_stream_consumed:  # handed over whole and decoded (httpx.MockTransport, respx)
            content = response.content
            if len(content) > self._max_bytes and 200 <= status < 300:
                raise too_large(self._max_bytes)
            return content[: body_limit(status, self._max_bytes)]
        # Leaving the stream unread closes its connection: nothing to drop.
        return await read_body(
            status,
            announced_length(headers.get("Content-Length")),
            headers.get("Content-Encoding"),
            max_bytes=self._max_bytes,
            large=self._large,
            whole=response.aread,
            chunks=response.aiter_raw,
        )

    async def aclose(self) -> None:
        """Close the client."""
        await self._client.aclose()


def foreign_headers(spec: Spec) -> dict[str, str]:
    """The spec's headers a request to another origin (a redirect's) may carry: none holding
    credentials or a secret."""
    holds_secret = Redactor(spec.secrets).finds_in
    return {
        name: value
        for name, value in request_headers(spec.request).items()
        if name.lower() not in CREDENTIAL_HEADERS and not holds_secret(value)
    }


def _pyreqwest_sender(settings: SenderSettings) -> Sender:
    try:
        from service.calling.pyreqwest_sender import PyreqwestSender  # optional: an extra's
    except ImportError as exc:
        raise ValueError(
            "transport 'pyreqwest' needs the pyreqwest package: pip install 'enrich[pyreqwest]'"
        ) from exc
    return PyreqwestSender(settings)


def make_sender(spec: Spec, transport: TransportChoice = None, auth: httpx.Auth | None = None) -> Sender:
    """The sender for ``transport``: one of ``SENDER_NAMES``, an httpx transport, or None for the
    spec's ``[api].transport`` (by default aiohttp, or httpx when ``auth`` is given)."""
    headers = request_headers(spec.request)
    foreign = foreign_headers(spec)
    limits, request = spec.limits, spec.request
    http2 = spec.source.api.http2
    settings = SenderSettings(
        headers,
        foreign,
        limits.concurrency,
        request.timeout_s,
        request.max_response_bytes,
        http2=http2,
        h2c=http2 and request.origin.startswith("http://"),
    )
    if transport is None:
        transport = spec.transport or ("httpx" if auth is not None else "aiohttp")
    if auth is not None and transport in ("aiohttp", "pyreqwest"):
        raise ValueError(f"auth needs the httpx sender, not {transport}: pass transport='httpx'")
    if transport == "aiohttp":
        return AiohttpSender(settings)
    if transport == "pyreqwest":
        return _pyreqwest_sender(settings)
    if transport == "httpx":
        return HttpxSender(settings, auth=auth)
    if isinstance(transport, httpx.AsyncBaseTransport):
        return HttpxSender(settings, transport=transport, auth=auth)
    raise ValueError(
        f"unknown transport {transport!r}: use one of {', '.join(SENDER_NAMES)} or an httpx transport"
    )
