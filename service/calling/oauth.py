"""OAuth2 client credentials: one access token per job, shared by every request.

The token is fetched before the first request (a token endpoint that refuses is a one-line error
at the start, not a job of failed rows), refreshed shortly before it expires, and once more when
the API answers 401 to it (``expired``; at most once in ``REFUSAL_REFRESH_FLOOR_S``): concurrent
requests wait for that one refresh, never each asking the token endpoint. Every token is handed
to ``learn`` as it arrives, so that the job's redactor knows it before any request could carry it
(or a server echo it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from service.calling.clock import Clock
from service.calling.requests import PreparedRequest
from service.calling.sending import RawResponse, Sender
from service.errors import CallError, ErrorClass
from service.redact import Redactor
from service.spec import ClientCredentials, Spec

# Refreshed this long before it expires (at most a tenth of its life): a request started just
# before the expiry must not arrive just after it.
REFRESH_MARGIN_S = 30.0
# At most one refresh for a 401 in this long: a 401 soon after one already answered by a new token
# is the key's (an API refusing some keys whatever the token), not the token's, and must not cost
# a token fetch per such key.
REFUSAL_REFRESH_FLOOR_S = 10.0
DEFAULT_LIFETIME_S = 3600.0  # a token endpoint that does not say (RFC 6749 makes expires_in optional)


class AccessTokens:
    """The job's access token, fetched from ``credentials.token_url`` over ``transport`` (httpx's
    default when None); an async context manager."""

    def __init__(
        self,
        credentials: ClientCredentials,
        *,
        clock: Clock,
        timeout_s: float,
        learn: Callable[[str], None],
        redact: Callable[[str], str],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._timeout_s = timeout_s
        self._learn = learn
        self._redact = redact
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._refreshed_for_refusal_at = float("-inf")
        self.fetched = 0  # tokens fetched so far

    async def __aenter__(self) -> AccessTokens:
        self._client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout_s, trust_env=False)
        try:
            await self.current()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def current(self) -> str:
        """A token that is not about to expire: the one in hand, or a new one (one fetch at a time;
        whoever waited for it uses it). ``CallError`` when the token endpoint fails."""
        token = self._token
        if token is not None and self._clock.now() < self._refresh_at:
            return token
        async with self._lock:
            if self._token is None or self._clock.now() >= self._refresh_at:
                await self._fetch()
            assert self._token is not None
            return self._token

    def expired(self, token: str) -> None:
        """The API refused ``token`` (401): the next ``current()`` fetches another, unless a newer
        one is already in hand or a refusal led to a refresh less than ``REFUSAL_REFRESH_FLOOR_S``
        ago."""
        now = self._clock.now()
        if token == self._token and now - self._refreshed_for_refusal_at >= REFUSAL_REFRESH_FLOOR_S:
            self._refresh_at = 0.0
            self._refreshed_for_refusal_at = now

    async def _fetch(self) -> None:
        assert self._client is not None, "use AccessTokens inside 'async with'"
        url = self._credentials.token_url
        try:
            response = await self._client.post(url, data=self._credentials.form())
        except httpx.HTTPError as exc:
            raise self._error(ErrorClass.CONNECT, f"cannot reach it ({type(exc).__name__})") from None
        if response.status_code != 200:
            error_class = ErrorClass.HTTP_5XX if response.status_code >= 500 else ErrorClass.HTTP_4XX
            snippet = " ".join(response.text[:200].split())
            raise self._error(error_class, f"HTTP {response.status_code}: {snippet}", response.status_code)
        token, lifetime = _token_of(response.content)
        if token is None:
            raise self._error(ErrorClass.INVALID_JSON, "its answer holds no access_token", 200)
        self._learn(token)
        self._token = token
        self._refresh_at = self._clock.now() + lifetime - min(REFRESH_MARGIN_S, lifetime / 10)
        self.fetched += 1

    def _error(self, error_class: ErrorClass, detail: str, status: int | None = None) -> CallError:
        message = self._redact(f"token endpoint {self._credentials.token_url}: {detail}")
        return CallError(error_class, message, status=status)


def _token_of(body: bytes) -> tuple[str | None, float]:
    """The access token and its lifetime in seconds from a token endpoint's JSON answer."""
    try:
        answer: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, 0.0
    if not isinstance(answer, dict):
        return None, 0.0
    token = answer.get("access_token")
    lifetime = answer.get("expires_in", DEFAULT_LIFETIME_S)
    if isinstance(lifetime, str) and lifetime.isdigit():
        lifetime = int(lifetime)
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_LIFETIME_S
    return (token if isinstance(token, str) and token else None), float(lifetime)


class AuthorizedSender:
    """``sender`` with the job's bearer token on every request to the API's origin (never on a
    redirect to another); a 401 lets that token go, and ``Attempts`` asks once more. Opening it
    fetches the first token: a token endpoint that refuses fails the job before any request."""

    def __init__(self, sender: Sender, tokens: AccessTokens) -> None:
        self._sender = sender
        self._tokens = tokens

    async def open(self) -> None:
        await self._tokens.__aenter__()
        try:
            await self._sender.open()
        except BaseException:
            await self._tokens.__aexit__()
            raise

    async def aclose(self) -> None:
        try:
            await self._sender.aclose()
        finally:
            await self._tokens.__aexit__()

    async def send(
        self, request: PreparedRequest, extra_headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        if request.foreign:
            return await self._sender.send(request, extra_headers)
        token = await self._tokens.current()
        response = await self._sender.send(
            request, {**(extra_headers or {}), "Authorization": f"Bearer {token}"}
        )
        if response.status == 401:
            self._tokens.expired(token)
        return response


def authorized(
    sender: Sender, spec: Spec, clock: Clock, redactor: Redactor, transport: object = None
) -> Sender:
    """``sender`` carrying ``spec``'s OAuth2 tokens, if it has ``[auth]`` of that type (else
    ``sender`` itself): fetched through ``transport`` when it is an httpx transport (a test's),
    else httpx's own, and every token taught to ``redactor``."""
    if spec.oauth is None:
        return sender
    tokens = AccessTokens(
        spec.oauth,
        clock=clock,
        timeout_s=spec.request.timeout_s,
        learn=redactor.learn,
        redact=redactor,
        transport=transport if isinstance(transport, httpx.AsyncBaseTransport) else None,
    )
    return AuthorizedSender(sender, tokens)
