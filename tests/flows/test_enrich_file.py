"""The enrich-file flow under one Prefect test harness: task runs, artifacts, events, hooks."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import polars as pl
import pytest
from prefect import task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.states import Crashed

from flows import batch_task, task_runs
from flows.artifacts import artifact_key
from flows.enrich_file import enrich_file
from flows.events import add_notifier, on_crashed
from flows.parameters import EnrichFileOptions
from service import InputError, JobState, error_leaves, state_dir_for
from service.calling.attempts import Attempts
from service.calling.requests import PreparedRequest
from tests.helpers import journal, release_held_keys, server_stats, write_lookup_job
from tests.object_store import Bucket

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture
def notified() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    remove = add_notifier(lambda event, payload: seen.append((event, payload)))
    try:
        yield seen
    finally:
        remove()


def write_job(tmp_path: Path, url: str, rows: int = 50) -> tuple[Path, Path]:
    return write_lookup_job(tmp_path, url, [f"f{i % 30}" for i in range(rows)])


async def enrich_in_batches_of_10(source: Path, spec: Path, output: Path, **options: Any) -> Any:
    """The enrich-file flow run in this process; its final state."""
    return await enrich_file(
        input=str(source),
        spec=str(spec),
        output=str(output),
        options=EnrichFileOptions(batch_size=10, **options),
        return_state=True,
    )


async def read_events(name: str, output: str, expected: int = 1) -> list[Any]:
    """Events reach the server asynchronously: poll, bounded."""
    give_up = time.monotonic() + 30
    async with get_client() as client:
        while True:
            page = await client.read_events(filter=EventFilter(event=EventNameFilter(name=[name])), limit=50)
            found = [e for e in page.events if e.payload.get("output") == output]
            if len(found) >= expected or time.monotonic() > give_up:
                return found
            await _pause()


async def artifacts_of(client: Any, output: str) -> dict[str, Any]:
    """The latest artifact under each key of the job writing ``output``."""
    prefix = artifact_key(output)
    keys = [f"{prefix}-{name}" for name in ("progress", "summary", "table", "output", "failed-rows")]
    found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    return {a.key: a for a in found}


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.1)


async def settled_task_runs(client: Any, flow_run_id: Any, expected: int) -> list[Any]:
    """The flow run's task runs once ``expected`` are final: they reach the server through
    events, a little after the flow returns (poll, bounded)."""
    give_up = time.monotonic() + 30
    while True:
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        settled = [t for t in task_runs if t.state is not None and t.state.is_final()]
        if len(settled) >= expected or time.monotonic() > give_up:
            return list(task_runs)
        await _pause()


@pytest.mark.asyncio
async def test_job_is_a_flow_with_one_task_run_per_group_of_batches(
    tmp_path: Path, server: str, notified: list[tuple[str, dict[str, Any]]]
) -> None:
    """A job's flow run completes with one task run per group of batches (2 a group here: the
    last group holds what is left), each batch logged in its group's task run, artifacts and
    the completion event."""
    source, spec = write_job(tmp_path, server)
    output = tmp_path / "out.parquet"
    state = await enrich_in_batches_of_10(source, spec, output, batches_per_task_run=2)
    assert state.is_completed()
    stats = await state.result()
    assert stats["rows_ok"] == 50
    assert pl.read_parquet(output)["row"].to_list() == list(range(50))
    flow_run_id = state.state_details.flow_run_id
    async with get_client() as client:
        task_runs = await settled_task_runs(client, flow_run_id, expected=3)
        # The part writes and recordings run inside them: no task runs of their own.
        assert sorted(t.name for t in task_runs) == ["batches-0-1", "batches-2-3", "batches-4-4"]
        assert all(t.state is not None and t.state.is_completed() for t in task_runs)
        logs = await read_logs(client, flow_run_id, "batch ", expected=5)
        by_task_run = {t.id: t.name for t in task_runs}
        logged = sorted((by_task_run[log.task_run_id], log.message.split(":")[0]) for log in logs)
        assert logged == [
            ("batches-0-1", "batch 0"),
            ("batches-0-1", "batch 1"),
            ("batches-2-3", "batch 2"),
            ("batches-2-3", "batch 3"),
            ("batches-4-4", "batch 4"),
        ]
        artifacts = await artifacts_of(client, str(output))
    key = artifact_key(str(output))
    assert artifacts[f"{key}-progress"].data == 100.0
    assert "rows        50 (50 ok, 0 failed)" in str(artifacts[f"{key}-summary"].data)
    assert f"{key}-failed-rows" not in artifacts  # nothing failed
    events = await read_events("enrich.job.completed", str(output))
    assert events, "no enrich.job.completed event"
    assert events[0].payload["rows_ok"] == 50
    assert [name for name, _ in notified] == ["enrich.job.completed"]


@pytest.mark.asyncio
async def test_failing_job_runs_the_failure_hook_and_emits_failed(
    tmp_path: Path, server: str, notified: list[tuple[str, dict[str, Any]]]
) -> None:
    """A spec naming a missing column fails the flow; the hook emits enrich.job.failed."""
    source, spec = write_job(tmp_path, server)
    spec.write_text(spec.read_text().replace('key = "ip"', 'key = "address"').replace("{ip}", "{address}"))
    output = tmp_path / "failed.parquet"
    state = await enrich_file(input=str(source), spec=str(spec), output=str(output), return_state=True)
    assert state.is_failed()
    assert not output.exists()
    assert [name for name, _ in notified] == ["enrich.job.failed"]
    assert "input.key column 'address' is not in the input" in notified[0][1]["error"]
    events = await read_events("enrich.job.failed", str(output))
    assert events, "no enrich.job.failed event"


@pytest.mark.asyncio
async def test_failed_recording_rolls_the_part_back(
    tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording batch 1 fails once: its part file is rolled back (gone before the retry writes
    it again), the batch tried again in its task run, OUT whole.

    What the spies see is recorded and asserted here, outside the task run: inside, an assertion
    would count as a crash, and be retried."""
    seen: list[tuple[str, int, bool]] = []  # (step, batch, its part on disk then)
    original_record = JobState.record_done
    original_remove = JobState.remove_part
    failures = {1: 1}

    def flaky_record(self: JobState, index: int) -> None:
        if failures.get(index):
            failures[index] -= 1
            seen.append(("recording failed", index, self.part_path(index).exists()))
            raise OSError("disk hiccup while recording")
        original_record(self, index)

    def spy_remove(self: JobState, index: int) -> None:
        original_remove(self, index)
        seen.append(("rolled back", index, self.part_path(index).exists()))

    monkeypatch.setattr(JobState, "record_done", flaky_record)
    monkeypatch.setattr(JobState, "remove_part", spy_remove)
    source, spec = write_job(tmp_path, server, rows=30)
    output = tmp_path / "rolled.parquet"
    state = await enrich_in_batches_of_10(source, spec, output)
    assert state.is_completed(), state.message
    assert seen == [("recording failed", 1, True), ("rolled back", 1, False)]
    assert pl.read_parquet(output)["row"].to_list() == list(range(30))


@pytest.mark.asyncio
async def test_a_batch_failing_for_a_reason_of_its_input_is_not_retried(
    tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch task that raises an Enrich error (bad input, an open circuit) is not retried: a
    retry would meet the same error. Every batch task ran once, and the flow failed with it."""
    runs: list[int] = []

    async def refusing(caller: Any, state: Any, index: int, batch: Any) -> None:
        runs.append(index)
        raise InputError(f"batch {index} holds something this spec cannot use")

    monkeypatch.setattr(batch_task, "enrich_and_record", refusing)
    source, spec = write_job(tmp_path, server, rows=30)
    state = await enrich_in_batches_of_10(source, spec, tmp_path / "refused.parquet")
    assert state.is_failed()
    assert "holds something this spec cannot use" in str(state.message)
    assert sorted(runs) == sorted(set(runs))  # once each
    assert runs  # the batches did run


@pytest.mark.asyncio
async def test_a_failing_batch_leaves_the_batches_recorded_before_it_in_its_task_run(
    tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch 3 of a task run of five fails: the task run and the flow fail with it, the batches
    recorded before it keep their parts (one task run is not one transaction: nothing done is
    undone), and the rerun does only what was left."""
    original = batch_task.enrich_and_record  # type: ignore[attr-defined]

    async def refusing_batch_3(caller: Any, state: Any, index: int, batch: Any) -> Any:
        if index == 3:
            raise InputError("batch 3 holds something this spec cannot use")
        return await original(caller, state, index, batch)

    monkeypatch.setattr(batch_task, "enrich_and_record", refusing_batch_3)
    source, spec = write_job(tmp_path, server)
    output = tmp_path / "out.parquet"
    state = await enrich_in_batches_of_10(source, spec, output, batches_per_task_run=5, keep_state=True)
    assert state.is_failed()
    recorded = journal(output)
    assert 3 not in recorded
    assert {0, 1, 2} <= set(recorded)
    assert all(JobState(state_dir_for(output)).part_path(index).exists() for index in recorded)
    async with get_client() as client:
        (task_run,) = await settled_task_runs(client, state.state_details.flow_run_id, expected=1)
    assert task_run.name == "batches-0-4"
    assert task_run.state.is_failed()
    monkeypatch.setattr(batch_task, "enrich_and_record", original)
    before = server_stats(server)["requests"]
    state = await enrich_in_batches_of_10(source, spec, output, batches_per_task_run=5)
    assert state.is_completed(), state.message
    assert pl.read_parquet(output)["row"].to_list() == list(range(50))
    assert (await state.result())["rows_ok"] == 50
    assert server_stats(server)["requests"] == before  # every key was answered in the first run


@pytest.mark.asyncio
async def test_the_jobs_deadline_stops_the_batches_inside_their_task_run(tmp_path: Path, server: str) -> None:
    """A batch waiting on an answer that does not come (the mock's held keys) inside a task run
    is stopped by the job's deadline: the flow fails with the deadline's message, and does not
    wait for the answer."""
    keys = [f"held-deadline-{i}" for i in range(20)]
    source, spec = write_lookup_job(tmp_path, server, keys, api_options="timeout_s = 50")
    try:
        with anyio.fail_after(30):
            state = await enrich_in_batches_of_10(source, spec, tmp_path / "out.parquet", deadline="1s")
    finally:
        release_held_keys(server)
    assert state.is_failed()
    assert "the job's deadline (1 s) passed; rerun to resume" in str(state.message)


@pytest.mark.asyncio
async def test_a_task_run_ending_without_taking_its_batches_fails_the_job(
    tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task run that ends without taking the batches handed to it (here it raises before it
    looks at them, as one failing to start would) fails the job, naming it, instead of leaving
    the job waiting for those batches for ever."""

    @task(name="enrich-batches")
    async def failing_at_start(batches: Any, first: int, last: int, inbox: Any) -> None:
        raise RuntimeError("could not start")

    monkeypatch.setattr(task_runs, "enrich_batches_task", failing_at_start)
    source, spec = write_job(tmp_path, server, rows=10)  # one batch: nothing else ends the wait
    with anyio.fail_after(30):
        state = await enrich_in_batches_of_10(source, spec, tmp_path / "out.parquet")
    assert state.is_failed()
    said = [str(error) for error in error_leaves(await state.result(raise_on_failure=False))]
    assert said == [
        "batch 0 has no task run: task run batches-0-0 ended (RuntimeError: could not start) before taking it"
    ]
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.asyncio
async def test_a_batch_that_crashed_inside_the_caller_is_asked_again(
    tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch, notified: list[tuple[str, dict[str, Any]]]
) -> None:
    """Something raises inside the caller mid-batch: nothing is settled for the keys it had not
    answered, the batch is tried again (its task run's log says so) and asks for them again, and
    the rows, the summary and the event agree (all ok, no circuit_open anywhere)."""
    original_attempt = Attempts.attempt
    crashes = {"left": 1}

    async def crashing_attempt(self: Attempts, request: PreparedRequest, stats: Any, number: int = 1) -> Any:
        if request.key == ("f3",) and crashes["left"]:
            crashes["left"] -= 1
            raise RuntimeError("a bug deep in the caller")
        return await original_attempt(self, request, stats, number)

    monkeypatch.setattr(Attempts, "attempt", crashing_attempt)
    source, spec = write_job(tmp_path, server, rows=30)
    output = tmp_path / "crashed.parquet"
    state = await enrich_in_batches_of_10(source, spec, output, cache_dir=str(tmp_path / "cache"))
    assert state.is_completed(), state.message
    assert crashes["left"] == 0
    rows = pl.read_parquet(output)
    assert rows["_enrich_status"].to_list() == ["ok"] * 30
    requested = server_stats(server)["per_key"]
    assert set(requested) == {f"f{i}" for i in range(30)}  # the crashed batch's keys were asked
    payload = notified[0][1]
    assert (payload["rows_ok"], payload["rows_failed"], payload["circuit_open"]) == (30, 0, None)
    async with get_client() as client:
        said = await read_logs(client, state.state_details.flow_run_id, "crashed (RuntimeError")
    assert "a bug deep in the caller); trying it again in " in said[0].message
    assert said[0].message.endswith("(attempt 2 of 3)")


@pytest.mark.asyncio
async def test_jobs_writing_one_file_name_in_two_folders_show_their_own_artifacts(
    tmp_path: Path, server: str
) -> None:
    """Two jobs writing ``out.csv`` in different folders get artifacts of their own: a summary, a
    link to their output, a table of their failed rows (key, error class, message), and batch
    tasks that say what each batch did."""
    outputs = []
    for name, failing in (("a", 3), ("b", 5)):
        folder = tmp_path / name
        folder.mkdir()
        keys = [f"{name}{i}" for i in range(20 - failing)] + [f"404-{name}{i}" for i in range(failing)]
        source, spec = write_lookup_job(folder, server, keys)
        output = folder / "out.csv"
        state = await enrich_in_batches_of_10(source, spec, output)
        assert state.is_completed(), state.message
        outputs.append((output, failing, state.state_details.flow_run_id))
    assert artifact_key(str(outputs[0][0])) != artifact_key(str(outputs[1][0]))
    async with get_client() as client:
        for output, failing, flow_run_id in outputs:
            artifacts = await artifacts_of(client, str(output))
            key = artifact_key(str(output))
            assert artifacts[f"{key}-output"].data == f"[{output}]({output.as_uri()})"
            failed = artifacts[f"{key}-failed-rows"].data
            rows = json.loads(failed) if isinstance(failed, str) else failed
            assert sorted(row["ip"] for row in rows) == sorted(
                f"404-{output.parent.name}{i}" for i in range(failing)
            )
            assert {row["_enrich_error"] for row in rows} == {"http_4xx"}
            assert all("404" in row["_enrich_message"] for row in rows)
            assert f"rows        20 ({20 - failing} ok, {failing} failed" in str(
                artifacts[f"{key}-summary"].data
            )
            lines = [log.message for log in await read_logs(client, flow_run_id, "batch ", expected=2)]
            assert any(
                f"batch 1: 10 rows ({failing} failed: http_4xx {failing})" in line for line in lines
            ), lines


async def read_logs(client: Any, flow_run_id: Any, containing: str, expected: int = 1) -> list[Any]:
    """The flow run's logs holding ``containing``, once ``expected`` are there (logs reach the
    server in the background: polled, bounded)."""
    give_up = time.monotonic() + 30
    while True:
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
        found = [log for log in logs if containing in log.message]
        if len(found) >= expected or time.monotonic() > give_up:
            return found
        await _pause()


@pytest.mark.asyncio
async def test_a_crashed_job_emits_failed_and_tells_the_notifiers(
    tmp_path: Path, notified: list[tuple[str, dict[str, Any]]]
) -> None:
    """The crash hook (a flow run killed or lost, not failed) emits enrich.job.failed, its error
    saying it crashed, and tells every notifier."""
    output = str(tmp_path / "crashed-hard.parquet")
    flow_run = FlowRun(
        flow_id=uuid.uuid4(), name="lost-run", parameters={"input": "in.csv", "output": output}
    )
    on_crashed(enrich_file, flow_run, Crashed(message="Execution was cancelled by the runtime environment."))
    assert notified == [
        (
            "enrich.job.failed",
            {
                "input": "in.csv",
                "output": output,
                "error": "crashed: Execution was cancelled by the runtime environment.",
            },
        )
    ]
    events = await read_events("enrich.job.failed", output)
    assert events, "no enrich.job.failed event"
    assert events[0].payload["error"].startswith("crashed: ")


@pytest.mark.asyncio
async def test_a_job_in_object_storage_links_its_output_and_reads_its_failed_rows_back(
    tmp_path: Path, server: str, bucket: Bucket
) -> None:
    """The flow on a bucket: OUT written there, the output artifact its URL, the failed rows read
    back from the object."""
    source, spec = write_lookup_job(tmp_path, server, [*(f"s{i}" for i in range(8)), "404-s8", "404-s9"])
    pl.read_parquet(source).write_parquet(bucket.url("in.parquet"))
    output = bucket.url("out/enriched.parquet")
    state = await enrich_file(
        input=bucket.url("in.parquet"), spec=str(spec), output=output, return_state=True
    )
    assert state.is_completed(), state.message
    assert pl.read_parquet(output).height == 10
    assert bucket.listed("out/") == ["out/enriched.parquet"]
    async with get_client() as client:
        artifacts = await artifacts_of(client, output)
    key = artifact_key(output)
    assert artifacts[f"{key}-output"].data == f"[{output}]({output})"
    failed = artifacts[f"{key}-failed-rows"].data
    rows = json.loads(failed) if isinstance(failed, str) else failed
    assert sorted(row["ip"] for row in rows) == ["404-s8", "404-s9"]
