"""Shared test helpers: a fake clock and a spec builder."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from service import Spec, parse_spec


class FakeClock:
    """A clock whose sleeps return at once and move time forward; it records every sleep."""

    def __init__(self, start: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self.t = start
        self.wall_offset = wall - start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t + self.wall_offset

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_spec(
    body: str = "", *, url: str = "http://api.test/v1/lookup/{k}", key: str = '["k"]', **env: str
) -> Spec:
    """A spec for tests: ``body`` holds extra TOML sections (they replace the defaults below)."""
    sections = {
        "api": f'[api]\nurl = "{url}"\ntimeout_s = 5\n',
        "input": f"[input]\nkey = {key}\n",
        "output": '[output.columns]\nname = { path = "name", type = "str" }\n',
        "retry": "[retry]\nattempts = 3\nbackoff = { initial_s = 1, max_s = 8, jitter = 0 }\n",
    }
    text = textwrap.dedent(body)
    for name in list(sections):
        if f"[{name}" in text:
            del sections[name]
    return parse_spec("".join(sections.values()) + text, environ=env)
