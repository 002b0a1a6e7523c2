"""The Prefect test harness and a real Prefect server, each started once for every flows test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.local_server import start_local_server
from tests.helpers import free_port


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Prefect's temporary test server for flows run in this process (about 10 s to start)."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``prefect server`` (SQLite) for job processes to share; its API URL."""
    process, url = start_local_server(free_port(), home=tmp_path_factory.mktemp("prefect-home"))
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
