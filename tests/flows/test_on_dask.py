"""Batches on a local Dask cluster (prefect-dask): same output, limits held in total, resume."""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dask
import httpx
import polars as pl
import pytest
from distributed import Client, LocalCluster

from flows.on_dask import local_cluster_options
from service import state_dir_for
from service.jobs.remote_batch import split_limits
from service.spec import LimitsSection
from tests.helpers import (
    enrich_command,
    journal,
    most_per_second_allowed,
    run_cli,
    running_mock_api,
    server_stats,
    wait_until,
    write_lookup_job,
)
from tests.object_store import Bucket

pytestmark = pytest.mark.integration

ROWS = 1200
# 2% under 200/s, plus a burst of 1 per worker: at most 198 in any second when both run at once.
LIMITS = '[limits]\nconcurrency = 6\nrate = "200/s"\nburst = 2\n'


def test_limits_are_split_between_the_batches_running_at_once() -> None:
    limits = LimitsSection(concurrency=6, rate=200.0, burst=2)
    assert split_limits(limits, slots=2) == (2, 3, 100.0, 1)
    assert split_limits(limits, slots=4) == (4, 1, 50.0, 1)
    # More worker threads than the concurrency: only as many batches as requests may run.
    assert split_limits(LimitsSection(concurrency=3), slots=8) == (3, 1, None, 1)


def test_the_local_cluster_workers_do_not_profile() -> None:
    """Dask's profiler samples every thread's stack every 10 ms; on CPython 3.11 before 3.11.9 that
    sampling can deadlock a worker (gh-106883: two test runs here hung in a batch for ever)."""
    options = local_cluster_options(1, "http://127.0.0.1:9/api")
    with LocalCluster(**options) as cluster, Client(cluster) as client:
        enabled = client.run(dask.config.get, "distributed.worker.profile.enabled")
        assert list(enabled.values()) == [False]
        # ...and the workers the job starts still report to the job's Prefect API.
        environ = client.run(os.getenv, "PREFECT_API_URL")
        assert list(environ.values()) == ["http://127.0.0.1:9/api"]


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with running_mock_api("--latency-ms", "5") as url:
        yield url


def dask_run(source: Path, spec: Path, output: Path) -> list[str]:
    """`enrich run` on a local cluster of 2 workers, no response cache (every key is asked)."""
    command = enrich_command("run", str(source), "--spec", str(spec), "--no-cache")
    # -v: the job's own log lines (how it splits the limits) are Prefect log lines.
    return [*command, "--output", str(output), "--batch-size", "100", "--dask-workers", "2", "-v"]


def local_env(prefect_home: Path) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(prefect_home)}
    env.pop("PREFECT_API_URL", None)
    return env


@pytest.mark.timeout(300)
def test_two_workers_give_the_single_process_output_within_the_limits(
    tmp_path: Path, api: str, prefect_home: Path
) -> None:
    keys = [f"w{i:04d}" for i in range(ROWS)]
    source, spec = write_lookup_job(tmp_path, api, keys, LIMITS)
    alone = run_cli("run", str(source), "--spec", str(spec), "--output", str(tmp_path / "alone.parquet"),
                    "--batch-size", "100", "--no-flow", "--no-cache")  # fmt: skip
    assert alone.returncode == 0, alone.stderr
    httpx.post(f"{api}/_reset", timeout=5)
    output = tmp_path / "dask.parquet"
    done = subprocess.run(
        dask_run(source, spec, output),
        env=local_env(prefect_home), capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (
        "2 batches at once on the cluster, each with concurrency 3 and 100 requests/s"
        in done.stdout + done.stderr
    )
    assert pl.read_parquet(output).equals(pl.read_parquet(tmp_path / "alone.parquet"))
    stats = server_stats(api)
    assert stats["requests"] == ROWS
    assert stats["most_in_flight"] <= 6
    # Two batches at once, 100/s and a burst of 1 each.
    assert stats["most_per_second"] <= most_per_second_allowed(200, burst=1, senders=2)
    # They did run at once: the requests of two batches (keys w0000-w0099, w0100-w0199, ...)
    # interleaved on the server's clock. Not necessarily batches 0 and 1: a worker slow to start
    # (a loaded machine) takes its first batch after the other worker finished one.
    spans = [
        (min(times), max(times))
        for start in range(0, ROWS, 100)
        for times in [[t for key in keys[start : start + 100] for t in stats["times"][key]]]
    ]
    assert any(a[0] < b[1] and b[0] < a[1] for a, b in itertools.combinations(spans, 2)), spans


@pytest.mark.timeout(400)
def test_a_killed_cluster_run_resumes_to_the_same_output(
    tmp_path: Path, api: str, prefect_home: Path
) -> None:
    """SIGKILL the job and its workers after two recorded batches; the rerun's OUT is a clean run's
    (one process: the test above shows a cluster's OUT is the same, and it costs no cluster)."""
    keys = [f"k{i:04d}" for i in range(ROWS)]
    source, spec = write_lookup_job(tmp_path, api, keys, LIMITS)
    clean = tmp_path / "clean.parquet"
    done = run_cli("run", str(source), "--spec", str(spec), "--output", str(clean),
                   "--batch-size", "100", "--no-flow", "--no-cache")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    output = tmp_path / "out.parquet"
    recorded = _killed_after_two_batches(source, spec, output, tmp_path, prefect_home)
    assert not output.exists()
    before = server_stats(api)["per_key"]
    again = subprocess.run(dask_run(source, spec, output), env=local_env(prefect_home),
                           capture_output=True, text=True, timeout=240, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert pl.read_parquet(output).equals(pl.read_parquet(clean))
    # The rerun asked nothing of the batches the killed run had recorded, and each other key once
    # at most (keys answered before the kill but not recorded come from the job's answer log).
    after = server_stats(api)["per_key"]
    asked_again = {key: after[key] - before.get(key, 0) for key in keys}
    recorded_keys = {keys[row] for batch in recorded for row in range(batch * 100, batch * 100 + 100)}
    assert {key: asked_again[key] for key in recorded_keys} == dict.fromkeys(recorded_keys, 0)
    assert max(asked_again.values()) <= 1


def _killed_after_two_batches(
    source: Path, spec: Path, output: Path, tmp_path: Path, prefect_home: Path
) -> list[int]:
    """Run the job on its cluster and SIGKILL it (with its scheduler and workers) once two batches
    are recorded; its recorded batches. A job that outran the signal (finished first, on a slow
    moment of the test's own) is run again from scratch, at most three times in all."""
    for _ in range(3):
        with (tmp_path / "killed.log").open("w") as log:
            job = subprocess.Popen(dask_run(source, spec, output), env=local_env(prefect_home),
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            wait_until(functools.partial(_two_recorded_or_ended, output, job), "two recorded batches", 180)
        finally:
            os.killpg(job.pid, signal.SIGKILL)  # the job, its Dask scheduler and workers
            job.wait(timeout=30)
        recorded = journal(output)
        if len(recorded) < ROWS // 100 and not output.exists():
            assert len(recorded) >= 2, (tmp_path / "killed.log").read_text()[-3000:]
            return recorded
        output.unlink(missing_ok=True)
        shutil.rmtree(state_dir_for(output), ignore_errors=True)
    raise AssertionError("the job finished before each of three kills: make it slower")


def _two_recorded_or_ended(output: Path, job: subprocess.Popen[bytes]) -> bool:
    return len(journal(output)) >= 2 or job.poll() is not None


@pytest.mark.timeout(300)
def test_a_cluster_run_reads_and_writes_object_storage(
    tmp_path: Path, api: str, prefect_home: Path, bucket: Bucket
) -> None:
    """Workers write their parts in the job's local working folder; the job uploads and records
    them under OUT.enrich/ in the bucket, then OUT."""
    keys = [f"s{i:04d}" for i in range(300)]
    source, spec = write_lookup_job(tmp_path, api, keys, LIMITS)
    pl.read_parquet(source).write_parquet(bucket.url("in.parquet"))
    command = [*dask_run(source, spec, tmp_path / "unused.parquet")]
    command[command.index(str(source))] = bucket.url("in.parquet")
    command[command.index(str(tmp_path / "unused.parquet"))] = bucket.url("out.parquet")
    httpx.post(f"{api}/_reset", timeout=5).raise_for_status()
    done = subprocess.run(command, env=local_env(prefect_home), capture_output=True, text=True,
                          timeout=240, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(pl.read_parquet(bucket.url("out.parquet"))["ip"].to_list()) == keys
    assert server_stats(api)["requests"] == 300
    assert bucket.listed() == ["in.parquet", "out.parquet"]
