"""Flows run in this test process report to the Prefect server the session shares (started in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, temporary_settings


@pytest.fixture(scope="session")
def prefect_harness(prefect_server: str) -> Iterator[None]:
    """Prefect's settings pointed at the session's server. Prefect's own test harness would start
    a second server on a fresh database (10 s on each test worker, its migrations most of it);
    the tests read back only what their own jobs made (events by output path, artifacts by key,
    task runs by flow run)."""
    with temporary_settings({PREFECT_API_URL: prefect_server}):
        yield
        # What this process's flows logged or emitted reaches the server before it stops (else
        # "Error logging to API" at the end of the run).
        APILogWorker.drain_all(timeout=30)
        EventsWorker.drain_all(timeout=30)
