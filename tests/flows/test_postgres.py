"""enrich serve against a Prefect server whose database is PostgreSQL (a real one on 127.0.0.1).

Each run gets its own database, dropped afterwards. Without a reachable PostgreSQL (or one that
does not let the test in) it is skipped, saying why, and failed under ENRICH_REQUIRE_SERVICES=1
(as in CI); ENRICH_TEST_POSTGRES (a postgresql:// URL to an existing database whose user may
create databases) points it elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from flows.local_server import start_local_server, stop_local_server
from tests.helpers import (
    enrich_command,
    free_port,
    healthy,
    run_cli,
    service_missing,
    stop_serving,
    wait_until,
    write_lookup_job,
)
from tests.postgres import PostgresUnavailableError, for_prefect, fresh_database

pytestmark = pytest.mark.integration


async def _completed_flow_runs(database_url: str) -> int:
    import asyncpg

    connection = await asyncpg.connect(database_url, timeout=5)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM flow_run WHERE state_type = 'COMPLETED'"))
    finally:
        await connection.close()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty database; its postgresql:// URL."""
    try:
        with fresh_database() as url:
            yield url
    except PostgresUnavailableError as exc:
        service_missing(str(exc))


@pytest.mark.timeout(400)
def test_serve_against_a_postgresql_backed_server(
    tmp_path: Path, server: str, postgres_database: str
) -> None:
    """The Prefect server keeps its state in PostgreSQL; serve and submit work through it."""
    prefect, api_url = start_local_server(
        free_port(), home=tmp_path / "server-home", database_url=for_prefect(postgres_database)
    )
    runner_port = free_port()
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,  # serve uses this server instead of starting its own
        "PREFECT_HOME": str(tmp_path / "serve-home"),
        "PREFECT_RUNNER_SERVER_PORT": str(runner_port),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    source, spec = write_lookup_job(tmp_path, server, [f"p{i}" for i in range(30)])
    command = enrich_command("serve", "--spec", str(spec))
    command += ["--inbox", str(tmp_path / "inbox"), "--outbox", str(tmp_path / "outbox")]
    log = (tmp_path / "serve.log").open("w")
    serving = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: healthy(f"http://127.0.0.1:{runner_port}/health"), "the runner's health", 180)
        output = tmp_path / "out.parquet"
        done = run_cli(
            "submit", str(source), "--spec", str(spec), "--output", str(output),
            "--api-url", api_url, "--timeout", "120", timeout_s=150,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert pl.read_parquet(output)["row"].to_list() == list(range(30))
        # The run is recorded in PostgreSQL (the submitted enrich-file run at least).
        assert asyncio.run(_completed_flow_runs(postgres_database)) >= 1
    finally:
        try:
            code = stop_serving(serving)
        finally:
            log.close()
            stop_local_server(prefect)
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
