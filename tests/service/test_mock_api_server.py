"""The mock API itself: one slow hostile answer never stalls the others (the benchmarks' hostile
job asks for normal keys beside the bombs, with the default 1 GiB bomb taking seconds to build)."""

from __future__ import annotations

import asyncio
import gzip
import threading

import httpx
import pytest

from service.testing import hostile
from service.testing.hostile import HostileSizes
from service.testing.mock_answers import answer_for
from service.testing.mock_api import MockApi, MockConfig

pytestmark = pytest.mark.integration


@pytest.mark.asyncio
async def test_a_bomb_being_built_does_not_stall_other_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A normal key is answered while a bomb is still being built: the build is held until then,
    and gives up (recording so) after 30 s, which it only reaches if it blocked the server."""
    building, release = threading.Event(), threading.Event()
    builds_released: list[bool] = []

    def held_bomb(inflated_bytes: int) -> bytes:
        building.set()
        builds_released.append(release.wait(timeout=30))
        return gzip.compress(bytes(inflated_bytes))

    monkeypatch.setattr(hostile, "gzip_bomb", held_bomb)
    config = MockConfig(hostile=HostileSizes(bomb_bytes=1024))
    async with MockApi(config) as api, httpx.AsyncClient(timeout=60) as client:
        bomb = asyncio.create_task(client.get(f"{api.url}/v1/lookup/bomb-1"))
        assert await asyncio.to_thread(building.wait, 30), "the bomb was never asked for"
        normal = await client.get(f"{api.url}/v1/lookup/k1")
        release.set()
        assert (await bomb).content == bytes(1024)
    assert normal.json() == answer_for("k1")
    assert builds_released == [True], "the normal answer waited for the bomb's build"


@pytest.mark.asyncio
async def test_a_held_key_is_answered_once_released_and_others_meanwhile() -> None:
    """A held- key's request waits for POST /_release (then gets its document); other keys are
    answered while it waits."""
    async with MockApi() as api, httpx.AsyncClient(timeout=30) as client:
        held = asyncio.create_task(client.get(f"{api.url}/v1/lookup/held-1"))
        async with asyncio.timeout(30):  # until it has arrived: the server's counters say so
            while "held-1" not in api.stats()["per_key"]:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        normal = await client.get(f"{api.url}/v1/lookup/k1")
        assert normal.json() == answer_for("k1")
        assert not held.done()
        released = await client.post(f"{api.url}/_release")
        assert released.status_code == 200
        assert (await asyncio.wait_for(held, 30)).json() == answer_for("held-1")
        # A release lets go of the requests waiting then: a held key asked later waits again.
        later = asyncio.create_task(client.get(f"{api.url}/v1/lookup/held-2"))
        async with asyncio.timeout(30):
            while "held-2" not in api.stats()["per_key"]:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert (await client.get(f"{api.url}/v1/lookup/k2")).json() == answer_for("k2")
        assert not later.done()
        await client.post(f"{api.url}/_release")
        assert (await asyncio.wait_for(later, 30)).json() == answer_for("held-2")
