"""The job's answer log: every distinct key is requested once per job, with or without the cache,
however many times the job is killed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from service.jobs.checkpoint import state_dir_for
from tests.helpers import enrich_command, run_cli, server_stats, write_lookup_job

pytestmark = pytest.mark.integration


def test_without_the_cache_a_key_repeated_across_batches_is_requested_once(
    tmp_path: Path, server: str
) -> None:
    """1,000 rows over 300 keys in shuffled order, batches of 100: every batch holds keys an
    earlier batch asked for; with --no-cache the server still sees each key once."""
    keys = [f"r{i % 300}" for i in range(1000)]
    random.Random(7).shuffle(keys)
    source, spec = write_lookup_job(tmp_path, server, keys)
    output = tmp_path / "out.parquet"
    done = run_cli(
        "run", "--no-flow", str(source), "--spec", str(spec), "--output", str(output),
        "--batch-size", "100", "--no-cache",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    counts = server_stats(server)
    assert (counts["requests"], counts["distinct_keys"]) == (300, 300)
    assert set(counts["per_key"].values()) == {1}
    assert pl.read_parquet(output)["_enrich_status"].to_list() == ["ok"] * 1000
    assert "from this job's earlier answers" in done.stdout


def _kill_after(command: list[str], server: str, more_requests: int) -> None:
    """Start the job and SIGKILL it once the server has seen ``more_requests`` more requests."""
    seen = server_stats(server, totals_only=True)["requests"]
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    give_up = time.monotonic() + 120
    try:
        while (
            server_stats(server, totals_only=True)["requests"] < seen + more_requests and job.poll() is None
        ):
            assert time.monotonic() < give_up, "the job made no progress"
            time.sleep(0.05)
    finally:
        os.kill(job.pid, signal.SIGKILL)
        job.wait(timeout=30)


@pytest.mark.timeout(300)  # 20 s of requests at the spec's rate, five starts, a clean run
def test_five_kills_cost_at_most_a_tenth_more_requests(tmp_path: Path, server: str) -> None:
    """40,000 distinct keys at 2,000 requests/s, SIGKILLed five times at random points, then run
    to the end: OUT equals a clean run's, and the server counted at most 44,000 requests (a kill
    loses its requests in flight and the answers of one flush of the log: 0.25 s, 500 at this rate)."""
    keys = [f"d{i}" for i in range(40_000)]
    source, spec = write_lookup_job(tmp_path, server, keys, '[limits]\nrate = "2000/s"\n')
    base = ("run", "--no-flow", str(source), "--spec", str(spec), "--no-cache")
    output = tmp_path / "out.parquet"
    command = enrich_command(*base, "--output", str(output))
    draw = random.Random(15)
    for _ in range(5):
        _kill_after(command, server, draw.randrange(1_000, 6_000))
        assert not output.exists()
    done = run_cli(*base, "--output", str(output))
    assert done.returncode == 0, done.stderr
    requests = server_stats(server)["requests"]
    assert 40_000 <= requests <= 44_000, requests
    assert not state_dir_for(output).exists()
    httpx.post(f"{server}/_reset", timeout=5).raise_for_status()
    clean = tmp_path / "clean.parquet"
    done = run_cli(*base, "--output", str(clean), "--rate", "100000/s")
    assert done.returncode == 0, done.stderr
    assert pl.read_parquet(output).equals(pl.read_parquet(clean))
