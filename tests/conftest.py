"""Fixtures every test may use: a mock clock, the mock API and a Prefect server shared by the
session, a private cache."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.environment import keep_prefect_on_loopback, prefect_environment
from service.testing import MockClock
from service.testing.s3_server import running_s3_server, s3_environment
from tests.helpers import SHOWN_WITH_A_FAILURE, free_port, running_mock_api, show_with_a_failure
from tests.object_store import Bucket
from tests.prefect_servers import SERVER_LOG, prefect_server_for_tests

# Prefect servers started by the tests (harness, local mode, prefect server) must not try to send
# telemetry off the machine: tests talk to loopback only. No test module has imported Prefect yet.
keep_prefect_on_loopback()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Show with a failed test what ``show_with_a_failure`` registered for it."""
    report = yield
    if report.when == "call" and report.failed:
        for title, describe in item.stash.get(SHOWN_WITH_A_FAILURE, {}).items():
            report.sections.append((title, describe()))
    return report


@pytest.fixture
def clock() -> MockClock:
    """A clock whose sleeps take no time (and are recorded)."""
    return MockClock()


@pytest.fixture(scope="session")
def mock_url() -> Iterator[str]:
    """The mock API, one for the whole session (429s ask for a 2 s wait)."""
    with running_mock_api("--retry-after", "2") as url:
        yield url


@pytest.fixture(scope="module")
def slow_api() -> Iterator[str]:
    """A mock API of the module's own (its most-in-flight and per-second counts are that module's),
    20 ms a request."""
    with running_mock_api("--latency-ms", "20") as url:
        yield url


@pytest.fixture(scope="session")
def prefect_server_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The PREFECT_HOME of the session's Prefect server."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture(scope="session")
def prefect_server(prefect_server_home: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A real ``prefect server`` for job processes to share, one for the whole session (the
    benchmarks' smoke run and the flows tests), on PostgreSQL (tests/prefect_servers.py); its
    API URL."""
    with prefect_server_for_tests(
        prefect_server_home, lambda: request.getfixturevalue("migrated_prefect_database")
    ) as url:
        yield url


@pytest.fixture(autouse=True)
def prefect_server_log_of_a_failure(request: pytest.FixtureRequest) -> None:
    """What the test's Prefect server printed during the test, shown with its failure (a server
    that stops answering says why there, if anywhere)."""
    if "prefect_server" not in request.fixturenames:
        return
    request.getfixturevalue("prefect_server")  # started, so its log is there
    log = request.getfixturevalue("prefect_server_home") / SERVER_LOG
    start = log.stat().st_size

    def printed_since_the_test_began() -> str:
        with log.open("rb") as printed:
            printed.seek(start)
            return printed.read()[-20_000:].decode(errors="replace")

    show_with_a_failure(request.node, "prefect server log", printed_since_the_test_began)


@pytest.fixture(scope="session")
def migrated_prefect_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Prefect database with every migration applied, made once for the run: the parallel test
    workers share it (the migrations take 8 s of a core), the first to need it makes it."""
    run_root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_root = run_root.parent  # this run's folder, above each worker's own
    home = run_root / "prefect-migrated"
    home.mkdir(exist_ok=True)
    with (run_root / "prefect-migrated.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "prefect.db").exists():
            _migrate(home)
    return home / "prefect.db"


def _migrate(home: Path) -> None:
    """Create a migrated database in ``home`` (in a folder beside it, moved in once complete)."""
    making = Path(tempfile.mkdtemp(dir=home.parent))
    env = prefect_environment(os.environ, PREFECT_HOME=str(making))
    env.pop("PREFECT_API_URL", None)
    upgrade = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"]
    done = subprocess.run(upgrade, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (making / "prefect.db").rename(home / "prefect.db")


@pytest.fixture
def prefect_home(tmp_path: Path, migrated_prefect_database: Path) -> Path:
    """A PREFECT_HOME for this test's processes whose database is already migrated: a local Prefect
    server started on it skips the migrations (about 5 s) a fresh home costs every start-up. The
    first start on a truly fresh home stays covered by `enrich run --flow` in test_secrets."""
    home = tmp_path / "prefect"
    home.mkdir()
    shutil.copyfile(migrated_prefect_database, home / "prefect.db")
    return home


@pytest.fixture
def server(mock_url: str) -> str:
    """The session's mock API, its counters reset for this test."""
    httpx.post(f"{mock_url}/_reset", timeout=5).raise_for_status()
    return mock_url


@pytest.fixture
def zone_behind_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local time five hours behind UTC (the machines here run on UTC, where a
    local time read as UTC by mistake would pass unseen)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own response cache: counts of requests must not depend on test order."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("ENRICH_CACHE_DIR", str(directory))
    return directory


# The image tests build the Dockerfile with podman (minutes, and a tool CI does not have): they
# run when asked, with ENRICH_TEST_IMAGE=1 (README, "Docker").
collect_ignore = [] if os.environ.get("ENRICH_TEST_IMAGE") == "1" else ["image"]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server, one for the session."""
    with running_s3_server(free_port()) as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Bucket:
    """A fresh bucket on the session's S3 server, this process's environment pointing at it (and
    the user's cache folder, which holds object-storage jobs' working folders, in tmp_path)."""
    for name, value in s3_environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return Bucket.create(s3_endpoint)
