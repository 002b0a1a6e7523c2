"""The online endpoint in this process (its ASGI app behind httpx), over the real mock API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import anyio
import httpx

from enrich.online.app import OnlineOptions, OnlineService, online_app
from service import Spec, parse_spec


def lookup_spec(url: str, extra: str = "") -> Spec:
    """A spec asking the mock API at ``url`` for each row's ip; ``extra``: more TOML sections."""
    return parse_spec(
        f'[api]\nurl = "{url}/v1/lookup/{{ip}}"\ntimeout_s = 10\n[input]\nkey = "ip"\n'
        '[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n'
        "[retry]\nattempts = 2\nbackoff = { initial_s = 0.05, max_s = 0.1 }\n" + extra,
        environ={},
    )


@contextlib.asynccontextmanager
async def serving(
    specs: Mapping[str, Spec], options: OnlineOptions | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, OnlineService]]:
    """The endpoint serving ``specs`` (no cache unless ``options`` say), and a client for it."""
    service = OnlineService(specs, options or OnlineOptions(cache=False))
    app = online_app(service)
    async with service.opened(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://enrich", timeout=30) as client:
            yield client, service


async def mock_stats(url: str) -> dict[str, object]:
    """The mock API's counters."""
    async with httpx.AsyncClient(timeout=5) as client:
        stats: dict[str, object] = (await client.get(f"{url}/_stats")).json()
        return stats


async def until(condition: object, what: str, deadline_s: float = 10.0) -> None:
    """Poll the async ``condition`` (another server's progress) until true; fail after ``deadline_s``."""
    assert callable(condition)
    with anyio.move_on_after(deadline_s):
        while not await condition():  # noqa: ASYNC110 (another process's progress: no event)
            await anyio.sleep(0.02)
        return
    raise AssertionError(f"timed out waiting for {what}")
