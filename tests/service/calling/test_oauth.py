"""OAuth2 client credentials against a scripted token endpoint (respx), on a fake clock: one
fetch for many concurrent requests, a refresh before expiry and after a refusal, errors named."""

from __future__ import annotations

import asyncio
import urllib.parse

import httpx
import pytest
import respx

from service.calling.oauth import AccessTokens
from service.errors import CallError, ErrorClass
from service.redact import Redactor
from service.spec import ClientCredentials
from service.testing import MockClock

TOKEN_URL = "https://auth.test/oauth/token"
CREDENTIALS = ClientCredentials(
    TOKEN_URL, "client-1", "s3cr3t-value", scope="read", audience="api", extra={"resource": "x"}
)


class TokenEndpoint:
    """Issues tok-1, tok-2, ... living ``lifetime`` seconds; keeps every form it was sent."""

    def __init__(self, lifetime: object = 600) -> None:
        self.lifetime = lifetime
        self.forms: list[dict[str, str]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.forms.append(dict(urllib.parse.parse_qsl(request.content.decode())))
        await asyncio.sleep(0)  # let every waiting request pile up behind the one fetch
        return httpx.Response(
            200,
            json={
                "access_token": f"tok-{len(self.forms)}",
                "expires_in": self.lifetime,
                "token_type": "Bearer",
            },
        )


def tokens_for(clock: MockClock, learned: list[str], redact: Redactor | None = None) -> AccessTokens:
    return AccessTokens(
        CREDENTIALS, clock=clock, timeout_s=5, learn=learned.append, redact=redact or Redactor([])
    )


@pytest.mark.asyncio
@respx.mock
async def test_one_token_for_64_concurrent_requests(clock: MockClock) -> None:
    """Fetched at the start with the client's form; 64 requests at once use it, no other fetch."""
    endpoint = TokenEndpoint()
    respx.post(TOKEN_URL).mock(side_effect=endpoint)
    learned: list[str] = []
    async with tokens_for(clock, learned) as tokens:
        got = await asyncio.gather(*(tokens.current() for _ in range(64)))
    assert set(got) == {"tok-1"}
    assert endpoint.forms == [
        {
            "grant_type": "client_credentials",
            "client_id": "client-1",
            "client_secret": "s3cr3t-value",
            "scope": "read",
            "audience": "api",
            "resource": "x",
        }
    ]
    assert learned == ["tok-1"]


@pytest.mark.asyncio
@respx.mock
async def test_refreshed_shortly_before_it_expires(clock: MockClock) -> None:
    """A 600 s token is used until 570 s (30 s before it expires), then one refresh for all."""
    endpoint = TokenEndpoint()
    respx.post(TOKEN_URL).mock(side_effect=endpoint)
    async with tokens_for(clock, []) as tokens:
        clock.t += 569
        assert await tokens.current() == "tok-1"
        clock.t += 1
        assert set(await asyncio.gather(*(tokens.current() for _ in range(16)))) == {"tok-2"}
    assert len(endpoint.forms) == 2


@pytest.mark.asyncio
@respx.mock
async def test_a_short_lived_token_is_refreshed_a_tenth_of_its_life_early(clock: MockClock) -> None:
    endpoint = TokenEndpoint(lifetime=10)
    respx.post(TOKEN_URL).mock(side_effect=endpoint)
    async with tokens_for(clock, []) as tokens:
        clock.t += 8.9
        assert await tokens.current() == "tok-1"
        clock.t += 0.2
        assert await tokens.current() == "tok-2"


@pytest.mark.asyncio
@respx.mock
async def test_a_refused_token_is_replaced_once_for_everyone(clock: MockClock) -> None:
    """Sixteen requests refused with tok-1 report it: one refresh; a late report of tok-1, once
    tok-2 is in hand, changes nothing."""
    endpoint = TokenEndpoint()
    respx.post(TOKEN_URL).mock(side_effect=endpoint)
    async with tokens_for(clock, []) as tokens:
        for _ in range(16):
            tokens.expired("tok-1")
        assert set(await asyncio.gather(*(tokens.current() for _ in range(16)))) == {"tok-2"}
        tokens.expired("tok-1")
        assert await tokens.current() == "tok-2"
    assert len(endpoint.forms) == 2


@pytest.mark.asyncio
@respx.mock
async def test_refusals_soon_after_a_refresh_are_the_keys_not_the_token_s(clock: MockClock) -> None:
    """An API refusing some keys whatever the token: tok-2, refused within 10 s of the refresh
    that brought it, is kept (no fetch per refused key); refused 10 s later, it is replaced."""
    endpoint = TokenEndpoint()
    respx.post(TOKEN_URL).mock(side_effect=endpoint)
    async with tokens_for(clock, []) as tokens:
        tokens.expired("tok-1")
        assert await tokens.current() == "tok-2"
        for _ in range(50):
            await clock.sleep(0.1)
            tokens.expired("tok-2")
            assert await tokens.current() == "tok-2"
        await clock.sleep(5.0)
        tokens.expired("tok-2")
        assert await tokens.current() == "tok-3"
    assert len(endpoint.forms) == 3


@pytest.mark.parametrize(
    ("lifetime", "kept_until"),
    [(None, 3570.0), ("120", 108.0), (-5, 3570.0), (True, 3570.0), ("soon", 3570.0)],
)
@pytest.mark.asyncio
@respx.mock
async def test_a_missing_or_odd_lifetime_is_read_as_an_hour(
    clock: MockClock, lifetime: object, kept_until: float
) -> None:
    endpoint = TokenEndpoint(lifetime=lifetime)
    respx.post(TOKEN_URL).mock(side_effect=endpoint)
    async with tokens_for(clock, []) as tokens:
        clock.t += kept_until - 0.1
        assert await tokens.current() == "tok-1"
        clock.t += 0.2
        assert await tokens.current() == "tok-2"


@pytest.mark.parametrize(
    ("answer", "error_class", "message"),
    [
        (
            httpx.Response(401, text="invalid_client s3cr3t-value"),
            ErrorClass.HTTP_4XX,
            "HTTP 401: invalid_client ***",
        ),
        (httpx.Response(503, text="down"), ErrorClass.HTTP_5XX, "HTTP 503: down"),
        (httpx.Response(200, text="<html>"), ErrorClass.INVALID_JSON, "its answer holds no access_token"),
        (
            httpx.Response(200, json={"token": "x"}),
            ErrorClass.INVALID_JSON,
            "its answer holds no access_token",
        ),
        (httpx.Response(200, json=["tok"]), ErrorClass.INVALID_JSON, "its answer holds no access_token"),
    ],
)
@pytest.mark.asyncio
@respx.mock
async def test_a_token_endpoint_that_fails_is_named_with_why(
    clock: MockClock, answer: httpx.Response, error_class: ErrorClass, message: str
) -> None:
    """At the start: a CallError naming the endpoint and the reason, the client secret redacted."""
    respx.post(TOKEN_URL).mock(return_value=answer)
    with pytest.raises(CallError) as raised:
        async with tokens_for(clock, [], Redactor(["s3cr3t-value"])):
            pass
    assert raised.value.error_class is error_class
    assert str(raised.value) == f"token endpoint {TOKEN_URL}: {message}"


@pytest.mark.asyncio
@respx.mock
async def test_an_unreachable_token_endpoint_is_a_connect_error(clock: MockClock) -> None:
    respx.post(TOKEN_URL).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(
        CallError, match=r"^token endpoint https://auth.test/oauth/token: cannot reach it \(ConnectError\)$"
    ):
        async with tokens_for(clock, []):
            pass
