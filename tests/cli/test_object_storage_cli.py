"""``enrich run`` on object storage as a user runs it: a process, the store and the API on loopback
(moto's S3 server, the mock API); a kill and a resume from the bucket; one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import polars as pl
import pytest

from service.testing.s3_server import s3_environment
from tests.helpers import (
    enrich_command,
    free_port,
    run_cli,
    server_stats,
    wait_until,
    write_lookup_job,
)
from tests.object_store import Bucket

pytestmark = pytest.mark.integration

BATCH = 25
ROWS = 400


def test_a_killed_job_resumes_from_the_bucket(tmp_path: Path, slow_api: str, bucket: Bucket) -> None:
    """SIGKILL after some batches are recorded under OUT.enrich/, then rerun (with a fresh local
    working folder, as on another machine): OUT equals a clean run's, no finished batch is asked
    again, and nothing of the job's state is left in the bucket."""
    keys = [f"k{i:04d}" for i in range(ROWS)]
    source, spec = write_lookup_job(tmp_path, slow_api, keys, "[limits]\nconcurrency = 4\n")
    pl.read_parquet(source).write_parquet(bucket.url("in/table.parquet"))
    base = (
        "run",
        "--no-flow",
        bucket.url("in/table.parquet"),
        "--spec",
        str(spec),
        "--batch-size",
        str(BATCH),
    )
    env = {**s3_environment(bucket.endpoint), "XDG_CACHE_HOME": str(tmp_path / "machine-1")}
    clean = tmp_path / "clean.parquet"
    assert run_cli(*base, "--no-cache", "--output", str(clean), env=env).returncode == 0
    httpx.post(f"{slow_api}/_reset", timeout=5).raise_for_status()

    command = enrich_command(*base, "--no-cache", "--output", bucket.url("out/enriched.parquet"))
    job = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(
            lambda: len(bucket.listed("out/enriched.parquet.enrich/done/")) >= 3, "recorded batches", 60
        )
    finally:
        os.kill(job.pid, signal.SIGKILL)
        job.wait(timeout=30)
    assert "out/enriched.parquet" not in bucket.listed("out/")
    finished = {int(key.rsplit("/", 1)[1]) for key in bucket.listed("out/enriched.parquet.enrich/done/")}
    httpx.post(f"{slow_api}/_reset", timeout=5).raise_for_status()

    elsewhere = {**env, "XDG_CACHE_HOME": str(tmp_path / "machine-2")}
    done = run_cli(*base, "--no-cache", "--output", bucket.url("out/enriched.parquet"), env=elsewhere)
    assert done.returncode == 0, done.stderr
    assert pl.read_parquet(bucket.url("out/enriched.parquet")).equals(pl.read_parquet(clean))
    per_key = server_stats(slow_api)["per_key"]
    for index in finished:
        assert all(per_key.get(key, 0) == 0 for key in keys[index * BATCH : (index + 1) * BATCH]), index
    assert sum(per_key.values()) == ROWS - len(finished) * BATCH
    assert bucket.listed("out/") == ["out/enriched.parquet"]


def _one_line(done: subprocess.CompletedProcess[str], status: int, needle: str) -> None:
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("enrich: error: "), done.stderr
    assert needle in done.stderr, done.stderr


@pytest.mark.parametrize("mode", [("--no-flow",), ()])
def test_a_missing_object_is_one_line(
    tmp_path: Path, server: str, bucket: Bucket, mode: tuple[str, ...]
) -> None:
    """In flow mode too: checked before Prefect starts."""
    _, spec = write_lookup_job(tmp_path, server, ["a"])
    env = s3_environment(bucket.endpoint)
    done = run_cli(
        "run",
        *mode,
        bucket.url("in.parquet"),
        "--spec",
        str(spec),
        "--output",
        str(tmp_path / "o.csv"),
        env=env,
    )
    _one_line(done, 2, f"enrich: error: {bucket.url('in.parquet')}: no such object")
    assert server_stats(server)["requests"] == 0


def test_an_unreachable_store_is_one_line_not_a_hang(tmp_path: Path, server: str) -> None:
    source, spec = write_lookup_job(tmp_path, server, ["a"])
    env = s3_environment(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    done = run_cli(
        "run", "--no-flow", str(source), "--spec", str(spec), "--output", "s3://bucket/o.parquet", env=env
    )
    _one_line(done, 1, "enrich: error: s3://bucket/o.parquet: object storage: ")
    assert server_stats(server)["requests"] == 0


@pytest.mark.parametrize(
    ("where", "needle"),
    [
        ("input", "enrich: error: https://example.org/in.parquet: Enrich reads and writes local paths"),
        ("output", "enrich: error: --output ftp://host/out.parquet: Enrich reads and writes local paths"),
    ],
)
def test_a_url_of_another_kind_is_named_as_such(tmp_path: Path, server: str, where: str, needle: str) -> None:
    source, spec = write_lookup_job(tmp_path, server, ["a"])
    given = "https://example.org/in.parquet" if where == "input" else str(source)
    output = "ftp://host/out.parquet" if where == "output" else str(tmp_path / "out.parquet")
    done = run_cli("run", given, "--spec", str(spec), "--output", output, "--no-flow")
    _one_line(done, 2, needle)


def test_a_job_on_local_files_does_not_load_the_object_storage_client(tmp_path: Path, server: str) -> None:
    """obstore (6.5 MB of a job's memory, 7 ms of its start) is imported by a job that touches a
    bucket, not by every job: Python's own import log of a local run does not name it."""
    source, spec = write_lookup_job(tmp_path, server, ["local-1", "local-2"])
    output = tmp_path / "out.parquet"
    done = run_cli(
        "run", "--no-flow", str(source), "--spec", str(spec), "--output", str(output),
        env={"PYTHONPROFILEIMPORTTIME": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert "service.storage.objects" in imported  # the log is read right: the module is there
    assert not [name for name in imported if name.split(".")[0] == "obstore"]
    assert pl.read_parquet(output)["ip"].to_list() == ["local-1", "local-2"]
