"""Shared test helpers: a fake clock and a spec builder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# Prefect servers started by the tests (harness, local mode, prefect server) must not try to send
# telemetry off the machine: tests talk to loopback only.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from service import Spec, parse_spec
from service.demo import start_mock_api, stop_mock_api


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


@contextlib.contextmanager
def running_mock_api(*options: str) -> Iterator[str]:
    """The mock API in a child process with ``options``, stopped on exit; yields its URL."""
    process, url = start_mock_api(*options)
    try:
        yield url
    finally:
        stop_mock_api(process)


@pytest.fixture(scope="session")
def mock_url() -> Iterator[str]:
    with running_mock_api("--retry-after", "2") as url:
        yield url


@pytest.fixture
def server(mock_url: str) -> str:
    httpx.post(f"{mock_url}/_reset", timeout=5).raise_for_status()
    return mock_url


def server_stats(url: str) -> dict[str, Any]:
    """The mock API's own counters."""
    counters: dict[str, Any] = httpx.get(f"{url}/_stats", timeout=5).json()
    return counters


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own response cache: counts of requests must not depend on test order."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("ENRICH_CACHE_DIR", str(directory))
    return directory


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def write_lookup_job(tmp_path: Path, url: str, keys: list[str], extra_spec: str = "") -> tuple[Path, Path]:
    """An input (row number, ip) and a spec looking each ip up on the mock API at ``url``."""
    import polars as pl

    source = tmp_path / "in.parquet"
    pl.DataFrame({"row": range(len(keys)), "ip": keys}).write_parquet(source)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[api]\nurl = "{url}/v1/lookup/{{ip}}"\n[input]\nkey = "ip"\n'
        '[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n' + extra_spec
    )
    return source, spec
