"""What a job shows in the Prefect UI: a progress artifact while it runs, a summary when it ends."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)

from service import EnrichStats, format_summary, milliseconds

# Progress (artifact and log line) at most this often: each update is API calls the server handles
# on the job's machine in local mode, and a fast job finishes several batches a second.
PROGRESS_EVERY_S = 2.0


def artifact_key(output: str) -> str:
    """The key prefix of a job's artifacts: from OUT's name (lowercase letters, digits, dashes)."""
    name = "".join(c if c.isalnum() else "-" for c in Path(output).name.lower()).strip("-")
    return f"enrich-{name}"[:60].rstrip("-") or "enrich-job"


class ProgressArtifact:
    """The job's progress artifact (percent of rows done) and log line, updated as batches finish."""

    def __init__(self, artifact_id: UUID) -> None:
        self._id = artifact_id
        self._last_report = -math.inf

    @classmethod
    async def create(cls, output: str) -> ProgressArtifact:
        """The progress artifact of the job writing ``output``, at 0%."""
        key = f"{artifact_key(output)}-progress"
        return cls(await acreate_progress_artifact(0.0, key=key, description="rows enriched (%)"))

    async def batch_done(self, rows_done: int, rows_total: int) -> None:
        """Report the rows done, unless the last report is recent and the job is not finished."""
        now = time.monotonic()
        if rows_done < rows_total and now - self._last_report < PROGRESS_EVERY_S:
            return
        self._last_report = now
        percent = 100.0 * rows_done / rows_total if rows_total else 100.0
        await aupdate_progress_artifact(self._id, percent)
        get_run_logger().info("%s of %s rows done", f"{rows_done:,}", f"{rows_total:,}")

    async def finish(self) -> None:
        """Set the artifact to 100%."""
        await aupdate_progress_artifact(self._id, 100.0)


async def publish_summary(output: str, stats: EnrichStats) -> str:
    """The summary as a markdown and a table artifact; returns the summary text."""
    key = artifact_key(output)
    summary = format_summary(stats)
    await acreate_markdown_artifact(f"# Enrich: {output}\n\n```\n{summary}\n```\n", key=f"{key}-summary")
    await acreate_table_artifact(summary_table(stats), key=f"{key}-table")
    return summary


def summary_table(stats: EnrichStats) -> list[dict[str, Any]]:
    """The summary's figures as rows of a table artifact."""
    rows: list[dict[str, Any]] = [
        {"figure": "rows ok", "value": stats.rows_ok},
        {"figure": "rows failed", "value": stats.rows_failed},
    ]
    rows += [
        {"figure": f"failed: {name}", "value": n} for name, n in sorted(stats.rows_failed_by_class.items())
    ]
    rows += [
        {"figure": "requests", "value": stats.requests},
        {"figure": "retries", "value": stats.retries},
        {"figure": "cache hits", "value": stats.cache_hits},
        {"figure": "answers reused from this job's log", "value": stats.answers_reused},
        {"figure": "throttled (s, summed)", "value": round(stats.throttled_s, 3)},
        {"figure": "latency p50 (ms)", "value": milliseconds(stats.latency_p50_s)},
        {"figure": "latency p95 (ms)", "value": milliseconds(stats.latency_p95_s)},
        {"figure": "latency p99 (ms)", "value": milliseconds(stats.latency_p99_s)},
        {"figure": "rows/s", "value": round(stats.rows_per_s, 1)},
    ]
    return rows
