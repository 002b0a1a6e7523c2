"""Library errors become CallErrors in one place, by one table, their cause kept."""

from __future__ import annotations

import aiohttp
import httpx
import pytest

from service import CallError, ErrorClass
from service.calling.requests import PreparedRequest
from service.calling.sending import SenderSettings
from service.calling.transport import TRANSLATED, AiohttpSender, HttpxSender, translate
from tests.helpers import free_port

SETTINGS = SenderSettings({}, {}, concurrency=1, timeout_s=5.0, max_bytes=1024)


@pytest.mark.parametrize(
    ("raised", "error_class", "message"),
    [
        (TimeoutError(), "timeout", "no answer within 5s"),
        (aiohttp.ServerTimeoutError("read"), "timeout", "no answer within 5s"),
        (httpx.ReadTimeout("slow"), "timeout", "no answer within 5s"),
        (aiohttp.ClientConnectionError(), "connect", "connection failed: ClientConnectionError"),
        (httpx.ConnectError("refused"), "connect", "connection failed: ConnectError"),
        (httpx.TooManyRedirects("loop"), "connect", "connection failed: TooManyRedirects"),
    ],
)
def test_each_library_error_has_its_class(raised: BaseException, error_class: str, message: str) -> None:
    """Timeouts first (aiohttp's are also ClientErrors), then connection failures."""
    assert isinstance(raised, TRANSLATED)
    error = translate(raised, 5.0)
    assert (error.error_class, error.message) == (error_class, message)


@pytest.mark.asyncio
async def test_the_httpx_sender_keeps_the_cause() -> None:
    """A transport that refuses: a connect CallError raised from httpx's own error."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    sender = HttpxSender(SETTINGS, transport=httpx.MockTransport(refuse))
    try:
        with pytest.raises(CallError) as caught:
            await sender.send(PreparedRequest("GET", "http://api.test/k", None, ("k",)))
    finally:
        await sender.aclose()
    assert caught.value.error_class is ErrorClass.CONNECT
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.asyncio
async def test_the_aiohttp_sender_keeps_the_cause() -> None:
    """A closed port on loopback: a connect CallError raised from aiohttp's own error."""
    sender = AiohttpSender(SETTINGS)
    await sender.open()
    try:
        with pytest.raises(CallError) as caught:
            await sender.send(PreparedRequest("GET", f"http://127.0.0.1:{free_port()}/k", None, ("k",)))
    finally:
        await sender.aclose()
    assert caught.value.error_class is ErrorClass.CONNECT
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectionError)
