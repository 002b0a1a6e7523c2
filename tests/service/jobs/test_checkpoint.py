"""A job's state: readable by its owner only (its parts hold the API's answers)."""

from __future__ import annotations

import contextlib
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import polars as pl
import pytest

from service import (
    ATTEMPTS,
    ERROR,
    MESSAGE,
    STATUS,
    Batches,
    BatchPlacement,
    EnrichStats,
    InputError,
    JobOptions,
    JobState,
    OnThisLoop,
    Spec,
    StatsRecorder,
    run_job,
    state_dir_for,
)
from service.jobs.checkpoint import fingerprint
from tests.helpers import make_spec


def test_a_jobs_state_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """OUT.enrich/ is 0700; its lock, manifest, parts and journal are 0600."""
    state = JobState(state_dir_for(tmp_path / "out.parquet"))
    state.open("fingerprint", restart=False)
    state.write_part(0, pl.DataFrame({"answer": ["private"]}))
    state.record_done(0)
    assert stat.S_IMODE(state.directory.stat().st_mode) == 0o700
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in state.directory.iterdir()}
    assert modes == {
        "lock": 0o600,
        "manifest.json": 0o600,
        "part-000000000.parquet": 0o600,
        "done.log": 0o600,
    }
    state.close()


class _RecordingPlacement:
    """What the test placements below share: one batch at a time, no statistics of their own."""

    in_flight = 1

    def statistics(self) -> EnrichStats:
        return StatsRecorder().snapshot(throttled_s=0, concurrency_wait_s=0, elapsed_s=0, circuit_open=None)


def _placing(batches: Batches) -> BatchPlacement:
    @contextlib.asynccontextmanager
    async def placement(spec: Spec, cache_dir: str | None, state: JobState) -> AsyncIterator[Batches]:
        yield batches

    return placement


class _LosesBatchTwo(_RecordingPlacement):
    """A placement that returns from batch 2 without writing or recording it, and raises nothing."""

    async def enrich(self, state: JobState, index: int, batch: pl.DataFrame) -> None:
        if index != 2:
            await anyio.to_thread.run_sync(state.write_part, index, batch)
            await anyio.to_thread.run_sync(state.record_done, index)


@pytest.mark.asyncio
async def test_a_job_missing_a_batch_writes_no_output_and_keeps_its_state(tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    pl.DataFrame({"k": [f"k{i}" for i in range(50)]}).write_parquet(source)
    output = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError, match=r"batches \[2\] were not recorded"):
        await run_job(
            source, make_spec(), output, JobOptions(batch_size=10), batches=_placing(_LosesBatchTwo())
        )
    assert not output.exists()
    assert (state_dir_for(output) / "done.log").read_text().split() == ["0", "1", "3", "4"]


class _DamagesPartOne(_RecordingPlacement):
    """A placement that records every batch as its own part (no request), then damages part 1
    after recording it (a disk or a hand at work on OUT.enrich/ while the job runs)."""

    async def enrich(self, state: JobState, index: int, batch: pl.DataFrame) -> None:
        answered = batch.with_columns(
            pl.lit(None, pl.String).alias(name) for name in ("name", STATUS, ERROR, MESSAGE)
        ).with_columns(pl.lit(1, pl.Int32).alias(ATTEMPTS))
        await anyio.to_thread.run_sync(state.write_part, index, answered)
        await anyio.to_thread.run_sync(state.record_done, index)
        if index == 1:
            state.part_path(index).write_bytes(b"PAR1 not a parquet file PAR1")


@pytest.mark.asyncio
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
async def test_a_part_damaged_after_it_was_recorded_is_named_and_no_output_written(
    tmp_path: Path, suffix: str
) -> None:
    """OUT is written part by part, whatever its format: the damaged part is named, with what to
    do, and OUT does not appear."""
    source = tmp_path / "in.parquet"
    pl.DataFrame({"k": [f"k{i}" for i in range(30)]}).write_parquet(source)
    output = tmp_path / f"out{suffix}"
    with pytest.raises(
        InputError, match=r"part-000000001\.parquet: damaged since it was recorded .*--restart"
    ):
        await run_job(
            source, make_spec(), output, JobOptions(batch_size=10), batches=_placing(_DamagesPartOne())
        )
    assert not output.exists()
    assert sorted([p.name async for p in anyio.Path(tmp_path).iterdir()]) == [
        "in.parquet",
        f"out{suffix}.enrich",
    ]


def test_the_fingerprint_binds_input_spec_batch_size_and_limit(tmp_path: Path) -> None:
    """A resumed job must share its input, its output-deciding spec, its batch size and its row
    limit with the interrupted one; its limits (concurrency, rate) may change."""
    source = tmp_path / "in.parquet"
    pl.DataFrame({"k": ["a", "b"]}).write_parquet(source)
    spec = make_spec()
    base = fingerprint([source], spec, 100)
    assert fingerprint([source], spec, 100, None) == base
    assert fingerprint([source], make_spec("[limits]\nconcurrency = 3\n"), 100) == base
    changed = {
        "batch size": fingerprint([source], spec, 50),
        "limit": fingerprint([source], spec, 100, 10),
        "spec": fingerprint([source], make_spec('[output.columns]\nname = { path = "other" }\n'), 100),
    }
    pl.DataFrame({"k": ["a", "c", "dd"]}).write_parquet(source)  # another size: mtime alone may tie
    changed["input"] = fingerprint([source], spec, 100)
    assert base not in changed.values()
    assert len(set(changed.values())) == len(changed)


@pytest.mark.asyncio
async def test_a_batch_failing_before_its_record_leaves_no_part_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording batch 1 fails (a disk hiccup): the job fails with it, batch 1's part file is
    gone, and the batches recorded before it keep theirs."""
    original_record = JobState.record_done

    def failing_record(self: JobState, index: int) -> None:
        if index == 1:
            raise OSError("disk hiccup while recording")
        original_record(self, index)

    monkeypatch.setattr(JobState, "record_done", failing_record)
    source = tmp_path / "in.parquet"
    pl.DataFrame({"k": [f"k{i}" for i in range(30)]}).write_parquet(source)
    output = tmp_path / "out.parquet"
    answering = httpx.MockTransport(lambda request: httpx.Response(200, json={"name": "x"}))
    with pytest.raises(ExceptionGroup) as crashed:  # a crash, not an EnrichError: as it came
        await run_job(
            source,
            make_spec(),
            output,
            JobOptions(batch_size=10),
            batches=OnThisLoop(in_flight=1, transport=answering),
        )
    assert crashed.group_contains(OSError, match="disk hiccup")
    state = state_dir_for(output)
    assert (state / "done.log").read_text().split() == ["0"]
    assert sorted(path.name for path in state.glob("part-*")) == ["part-000000000.parquet"]
