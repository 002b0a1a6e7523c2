"""The progress artifact's pace and direction: at most every 2 s, never backwards, always the end."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from flows import artifacts
from flows.artifacts import PROGRESS_EVERY_S, ProgressArtifact
from service import JobProgress, StatsRecorder


def progress(rows_done: int, rows_total: int = 100) -> JobProgress:
    stats = StatsRecorder().snapshot(throttled_s=0, concurrency_wait_s=0, elapsed_s=1.0, circuit_open=None)
    return JobProgress(rows_done, rows_total, stats)


class _Logger:
    def info(self, *args: Any) -> None:
        pass


@pytest.mark.asyncio
async def test_progress_is_reported_at_most_every_two_seconds_never_backwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reports at 0, 1, 1.9 and 2.1 s update the artifact at 0 and 2.1 s only; a lower count is
    never shown after a higher one; the finished job is shown at once."""
    now = [100.0]
    updates: list[tuple[float, str]] = []

    async def update(artifact_id: uuid.UUID, percent: float, description: str | None = None) -> uuid.UUID:
        updates.append((percent, (description or "").split(" rows")[0]))
        return artifact_id

    monkeypatch.setattr(artifacts.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(artifacts, "aupdate_progress_artifact", update)
    monkeypatch.setattr(artifacts, "get_run_logger", _Logger)
    artifact = ProgressArtifact(uuid.uuid4())
    for at, rows in ((0.0, 10), (1.0, 20), (1.9, 30), (2.1, 40), (4.5, 35), (4.6, 100)):
        now[0] = 100.0 + at
        await artifact(progress(rows))
    assert PROGRESS_EVERY_S == 2.0
    assert updates == [(10.0, "10/100"), (40.0, "40/100"), (100.0, "100/100")]


def test_the_summary_table_shows_the_concurrency_auto_settled_on_and_only_then() -> None:
    def table(chosen: tuple[tuple[float, int], ...]) -> dict[str, Any]:
        stats = StatsRecorder().snapshot(
            throttled_s=0, concurrency_wait_s=0, elapsed_s=10.0, circuit_open=None, concurrency_chosen=chosen
        )
        return {row["figure"]: row["value"] for row in artifacts.summary_table(stats)}

    assert table(((0.0, 4), (1.0, 40), (9.0, 41)))["concurrency settled on (auto)"] == 40
    assert "concurrency settled on (auto)" not in table(())
