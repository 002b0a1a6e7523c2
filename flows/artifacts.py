"""What a job shows in the Prefect UI: a progress artifact while it runs; a summary, the failed
rows and a link to the output when it ends.

Every artifact's key names the job's output (its file name and a digest of its full path), so two
jobs writing ``out.csv`` in different folders keep artifacts of their own.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import PurePosixPath
from typing import Any
from uuid import UUID

import anyio.to_thread
from prefect import get_run_logger
from prefect.artifacts import (
    acreate_link_artifact,
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)

from service import (
    EnrichStats,
    JobProgress,
    absolute_location,
    failed_rows_sample,
    format_progress,
    format_summary,
    location_link,
    milliseconds,
)

# Progress (artifact and log line) at most this often: each update is API calls the server handles
# on the job's machine in local mode, and a fast job finishes several batches a second.
PROGRESS_EVERY_S = 2.0
FAILED_ROWS_SHOWN = 100


def artifact_key(output: str) -> str:
    """The key prefix of a job's artifacts (lowercase letters, digits, dashes): OUT's file name,
    then a digest of its absolute path."""
    path = absolute_location(output)
    name = (
        "".join(c if c.isalnum() else "-" for c in PurePosixPath(path).name.lower())
        .strip("-")[:40]
        .rstrip("-")
    )
    where = hashlib.sha256(path.encode()).hexdigest()[:10]
    return f"enrich-{name or 'job'}-{where}"


class ProgressArtifact:
    """The job's progress artifact (percent of rows done, and a line saying where the job stands)
    and log line; a ``ProgressReport``, acting at most every ``PROGRESS_EVERY_S``."""

    def __init__(self, artifact_id: UUID) -> None:
        self.id = artifact_id
        self._last_report = -math.inf
        self._rows_reported = -1

    @classmethod
    async def create(cls, output: str) -> ProgressArtifact:
        """The progress artifact of the job writing ``output``, at 0%."""
        key = f"{artifact_key(output)}-progress"
        return cls(await acreate_progress_artifact(0.0, key=key, description="starting"))

    async def __call__(self, progress: JobProgress) -> None:
        """Report ``progress``, unless the last report is recent and the job is not finished, or it
        says no more than the last one did (reports never go backwards)."""
        now = time.monotonic()
        finished = progress.rows_done >= progress.rows_total
        if progress.rows_done < self._rows_reported or (
            not finished and now - self._last_report < PROGRESS_EVERY_S
        ):
            return
        self._last_report, self._rows_reported = now, progress.rows_done
        total = progress.rows_total
        percent = 100.0 * progress.rows_done / total if total else 100.0
        line = format_progress(progress)
        await aupdate_progress_artifact(self.id, percent, description=line)
        get_run_logger().info("progress: %s", line)


async def publish_summary(output: str, key_columns: tuple[str, ...], stats: EnrichStats) -> str:
    """The summary as a markdown and a table artifact, a table of failed rows (when any), and a
    link to the output; returns the summary text."""
    key = artifact_key(output)
    summary = format_summary(stats)
    where = absolute_location(output)
    await acreate_markdown_artifact(
        f"# Enrich: {output}\n\n```\n{summary}\n```\n", key=f"{key}-summary", description="the job's summary"
    )
    await acreate_table_artifact(summary_table(stats), key=f"{key}-table", description="the job's figures")
    await acreate_link_artifact(
        location_link(where), link_text=where, key=f"{key}-output", description="the enriched table"
    )
    if stats.rows_failed:
        try:
            failed = await anyio.to_thread.run_sync(failed_rows_sample, where, key_columns, FAILED_ROWS_SHOWN)
        except Exception as exc:  # the job is done and its OUT whole: a missing sample must not fail it
            get_run_logger().warning("no failed-rows artifact: %s could not be read back (%s)", where, exc)
            return summary
        shown = f"the first {len(failed)} of {stats.rows_failed:,} failed rows: key, error class, message"
        await acreate_table_artifact(failed, key=f"{key}-failed-rows", description=shown)
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
        {"figure": "distinct keys", "value": stats.distinct_keys},
        {"figure": "requests", "value": stats.requests},
        {"figure": "retries", "value": stats.retries},
        {"figure": "cache hits", "value": stats.cache_hits},
        {"figure": "answers reused from this job's log", "value": stats.answers_reused},
        {"figure": "waited for the rate limit (s)", "value": round(stats.throttled_s, 3)},
        {"figure": "waited for a concurrency slot (s)", "value": round(stats.concurrency_wait_s, 3)},
        {"figure": "latency p50 (ms)", "value": milliseconds(stats.latency_p50_s)},
        {"figure": "latency p95 (ms)", "value": milliseconds(stats.latency_p95_s)},
        {"figure": "latency p99 (ms)", "value": milliseconds(stats.latency_p99_s)},
        {"figure": "elapsed (s)", "value": round(stats.elapsed_s, 3)},
        {"figure": "rows/s", "value": round(stats.rows_per_s, 1)},
    ]
    if stats.concurrency_chosen:
        rows.append({"figure": "concurrency settled on (auto)", "value": stats.concurrency_settled})
    return rows
