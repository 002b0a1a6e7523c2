"""Streaming with checkpoints: a killed job resumes without redoing finished batches."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import polars as pl
import pytest

import service.jobs.run
from service import JobOptions, OnThisLoop, run_job
from service.jobs.checkpoint import state_dir_for
from tests.helpers import enrich_command, make_spec, run_cli, server_stats, write_lookup_job

pytestmark = pytest.mark.integration

BATCH = 25
ROWS = 400


def write_job(tmp_path: Path, url: str) -> tuple[Path, Path]:
    keys = [f"k{i:04d}" for i in range(ROWS)]
    extra = 'asn = { path = "asn", type = "i64" }\n[limits]\nconcurrency = 4\n'
    return write_lookup_job(tmp_path, url, keys, extra)


def recorded(state: Path) -> set[int]:
    """Batches the job's journal records as done (each with its part file)."""
    journal = state / "done.log"
    lines = journal.read_text().splitlines() if journal.exists() else []
    done = {int(line) for line in lines if line.isdigit()}
    assert all((state / f"part-{i:09d}.parquet").exists() for i in done)
    return done


def wait_for(condition: object, what: str, deadline_s: float = 60.0) -> None:
    """Poll ``condition`` until true, failing after ``deadline_s``."""
    give_up = time.monotonic() + deadline_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_killed_job_resumes_to_the_same_output(tmp_path: Path, slow_api: str) -> None:
    """SIGKILL mid-batch and between batches, then rerun: OUT equals a clean run's, no batch redone."""
    source, spec = write_job(tmp_path, slow_api)
    base = ("run", "--no-flow", str(source), "--spec", str(spec), "--batch-size", str(BATCH), "--no-cache")
    clean = tmp_path / "clean.parquet"
    assert run_cli(*base, "--output", str(clean)).returncode == 0
    output = tmp_path / "out.parquet"
    state = state_dir_for(output)
    command = enrich_command(*base, "--output", str(output))
    httpx.post(f"{slow_api}/_reset", timeout=5)
    for parts_before_kill in (0, 3, 8):
        job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if parts_before_kill == 0:  # mid-batch: requests under way, no batch finished yet
                seen = server_stats(slow_api)["requests"]
                wait_for(lambda seen=seen: server_stats(slow_api)["requests"] > seen, "requests")
            else:
                wait_for(lambda n=parts_before_kill: len(recorded(state)) >= n, "recorded batches")
        finally:
            os.kill(job.pid, signal.SIGKILL)
            job.wait(timeout=30)
        assert not output.exists()
    finished = recorded(state)
    assert len(finished) >= 8
    httpx.post(f"{slow_api}/_reset", timeout=5)
    done = run_cli(*base, "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert pl.read_parquet(output).equals(pl.read_parquet(clean))
    per_key = server_stats(slow_api)["per_key"]
    for index in range(ROWS // BATCH):
        keys = [f"k{i:04d}" for i in range(index * BATCH, (index + 1) * BATCH)]
        # A finished batch is not asked again; nor is any key answered before a kill (the answer
        # log), so a key is asked at most once by the rerun.
        expected = [0] * BATCH if index in finished else [per_key.get(k, 0) for k in keys]
        assert [per_key.get(k, 0) for k in keys] == expected, index
        assert set(expected) <= {0, 1}, index
    assert not state.exists()


def test_changed_input_or_spec_refuses_to_resume_unless_restart(tmp_path: Path, server: str) -> None:
    """State kept from a job with another spec or input: a clear refusal; --restart starts over."""
    source, spec = write_job(tmp_path, server)
    output = tmp_path / "out.csv"
    base = (
        "run",
        "--no-flow",
        str(source),
        "--spec",
        str(spec),
        "--output",
        str(output),
        "--batch-size",
        "100",
    )
    assert run_cli(*base, "--keep-state").returncode == 0
    assert state_dir_for(output).exists()
    assert run_cli(*base, "--keep-state", "--concurrency", "2").returncode == 0  # limits: same job
    for other_size in (("--batch-size", "50"), ("--limit", "10")):  # other batches, other rows
        resized = run_cli(*base, *other_size)
        assert resized.returncode == 2, (other_size, resized.stderr)
        assert "holds the state of a job with a different input, spec or batch size" in resized.stderr
    spec.write_text(spec.read_text().replace('"asn"', '"score"'))
    changed_spec = run_cli(*base)
    assert changed_spec.returncode == 2
    assert "holds the state of a job with a different input, spec or batch size" in changed_spec.stderr
    spec.write_text(spec.read_text().replace('"score"', '"asn"'))
    pl.DataFrame({"row": [0], "ip": ["other"]}).write_parquet(source)
    refused = run_cli(*base)
    assert refused.returncode == 2
    assert "holds the state of a job with a different input, spec or batch size" in refused.stderr
    assert "--restart" in refused.stderr
    restarted = run_cli(*base, "--restart")
    assert restarted.returncode == 0, restarted.stderr
    assert pl.read_csv(output)["ip"].to_list() == ["other"]


@pytest.mark.asyncio
async def test_reader_is_pulled_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While every request is blocked, at most batches_in_flight + 1 batches have been read."""
    pulled = 0
    original = service.jobs.run.iter_batches

    def counting(*args: object, **kwargs: object) -> Iterator[pl.DataFrame]:
        nonlocal pulled
        for batch in original(*args, **kwargs):  # type: ignore[arg-type]
            pulled += 1
            yield batch

    monkeypatch.setattr(service.jobs.run, "iter_batches", counting)

    async def run_inline(function: object, *args: object, **kwargs: object) -> object:
        return function(*args)  # type: ignore[operator]

    # Reads run in a worker thread normally; inline, "every task blocked" also means "no read
    # under way", so the count below is exact rather than a race with a thread.
    monkeypatch.setattr(anyio.to_thread, "run_sync", run_inline)
    release = asyncio.Event()
    blocked = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        blocked.set()
        await release.wait()
        return httpx.Response(200, json={"name": "x"})

    source = tmp_path / "in.parquet"
    pl.DataFrame({"k": [f"k{i}" for i in range(1000)]}).write_parquet(source)
    job = asyncio.create_task(
        run_job(
            source,
            make_spec(),
            tmp_path / "out.parquet",
            JobOptions(batch_size=10),
            batches=OnThisLoop(in_flight=2, transport=httpx.MockTransport(handler)),
        )
    )
    await asyncio.wait_for(blocked.wait(), timeout=30)
    await asyncio.wait_for(anyio.wait_all_tasks_blocked(), timeout=30)
    assert pulled == 2  # one batch per slot; the third waits for a slot before it is read
    release.set()
    stats = await asyncio.wait_for(job, timeout=50)
    assert pulled == 100
    assert stats.rows == 1000


def test_cache_across_cli_runs_and_parquet_directory_input(tmp_path: Path, server: str) -> None:
    """Parquet directory and glob inputs; the second run is answered from the cache; cache stats/clear."""
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(3):
        pl.DataFrame({"row": [i * 2, i * 2 + 1], "ip": [f"d{i}", "404-same"]}).write_parquet(
            folder / f"{i}.parquet"
        )
    _, spec = write_job(tmp_path, server)
    cache_dir = tmp_path / "my-cache"
    outputs = []
    for input_spec in (str(folder), str(folder / "*.parquet")):
        output = tmp_path / f"out{len(outputs)}.parquet"
        done = run_cli(
            "run",
            "--no-flow",
            input_spec,
            "--spec",
            str(spec),
            "--output",
            str(output),
            "--cache-dir",
            str(cache_dir),
        )
        assert done.returncode == 0, done.stderr
        outputs.append(pl.read_parquet(output))
    assert outputs[0]["row"].to_list() == [0, 1, 2, 3, 4, 5]
    assert (
        outputs[0]
        .drop("_enrich_attempts", "_enrich_message")
        .equals(outputs[1].drop("_enrich_attempts", "_enrich_message"))
    )
    assert server_stats(server)["requests"] == 4  # d0, d1, d2 and 404-same, once each over both runs
    stats = run_cli("cache", "stats", "--cache-dir", str(cache_dir))
    assert "4 entries (3 answers, 1 cached client errors, 0 expired) for 1 API specs" in stats.stdout
    cleared = run_cli("cache", "clear", "--cache-dir", str(cache_dir))
    assert "removed 4 entries" in cleared.stdout
