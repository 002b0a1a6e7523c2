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
