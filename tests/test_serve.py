"""enrich serve in a subprocess: health, a submitted job, an inbox sweep, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import polars as pl
import pytest

from tests.conftest import run_cli, write_lookup_job
from tests.test_global_limits import free_port

pytestmark = pytest.mark.integration


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float) -> None:
    give_up = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.timeout(400)
def test_serve_submit_inbox_and_sigterm(tmp_path: Path, server: str) -> None:
    """Health within a bound; submit runs a job; a dropped file is enriched and filed; SIGTERM stops it."""
    source, spec = write_lookup_job(tmp_path, server, [f"s{i}" for i in range(20)])
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    api_port, runner_port = free_port(), free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_RUNNER_SERVER_PORT": str(runner_port),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "service.cli", "serve", "--spec", str(spec), "--inbox", str(inbox)]
    command += ["--outbox", str(outbox), "--interval", "2", "--api-port", str(api_port)]
    log = (tmp_path / "serve.log").open("w")
    serving = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: healthy(f"http://127.0.0.1:{runner_port}/health"), "the runner's health", 180)
        output = tmp_path / "submitted.parquet"
        done = run_cli(
            "submit", str(source), "--spec", str(spec), "--output", str(output),
            "--api-url", f"http://127.0.0.1:{api_port}/api", "--timeout", "120",
            env={"PREFECT_HOME": str(tmp_path / "prefect")},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert pl.read_parquet(output)["row"].to_list() == list(range(20))
        # Written under a hidden name, then renamed into place: sweeps skip hidden files.
        pl.DataFrame({"ip": ["i1", "i2"]}).write_csv(inbox / ".drop.csv")
        (inbox / ".drop.csv").rename(inbox / "drop.csv")
        # No trigger: the server's scheduler creates the sweep runs from the 2 s interval.
        wait_until(lambda: (inbox / "done" / "drop.csv").exists(), "a scheduled inbox sweep", 150)
        assert pl.read_parquet(outbox / "drop.parquet")["ip"].to_list() == ["i1", "i2"]
    finally:
        serving.send_signal(signal.SIGTERM)
        try:
            code = serving.wait(timeout=60)
        finally:
            if serving.poll() is None:
                serving.kill()
            log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    assert not healthy(f"http://127.0.0.1:{api_port}/api/health")  # its local server stopped too
