"""The Prefect test harness, started once for every flows test (the real Prefect server the
session shares is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Prefect's temporary test server for flows run in this process (about 10 s to start)."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
