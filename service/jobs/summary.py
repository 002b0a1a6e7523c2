"""A job's summary and progress, as text: pure formatting of an ``EnrichStats`` or a ``JobProgress``."""

from __future__ import annotations

from service.jobs.progress import JobProgress
from service.stats import EnrichStats, milliseconds


def _ms(seconds: float | None) -> str:
    value = milliseconds(seconds)
    return "-" if value is None else f"{value:.1f} ms"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def format_summary(stats: EnrichStats) -> str:
    """Rows by status and error class, requests, retries, throttling, latency, throughput."""
    failed = ", ".join(f"{name} {count}" for name, count in sorted(stats.rows_failed_by_class.items()))
    lines = [
        f"rows        {stats.rows:,} ({stats.rows_ok:,} ok, {stats.rows_failed:,} failed"
        + (f": {failed})" if failed else ")"),
        f"cache       {stats.cache_hits:,} keys answered from the response cache"
        + (f"; {_count(stats.uncacheable, 'answer')} it could not store" if stats.uncacheable else "")
        + (f"; {stats.answers_reused:,} from this job's earlier answers" if stats.answers_reused else ""),
        f"keys        {stats.distinct_keys:,} distinct",
        f"requests    {stats.requests:,} ({stats.retries:,} retries"
        + (f"; {stats.retries_refused:,} refused by the retry budget)" if stats.retries_refused else ")"),
        f"waited      {stats.throttled_s:.1f} s for the rate limit, {stats.concurrency_wait_s:.1f} s for "
        f"a concurrency slot (time any request waited, of {stats.elapsed_s:.1f} s)",
        f"latency     p50 {_ms(stats.latency_p50_s)}, p95 {_ms(stats.latency_p95_s)}, "
        f"p99 {_ms(stats.latency_p99_s)}",
        f"throughput  {stats.rows_per_s:,.0f} rows/s over {stats.elapsed_s:.1f} s",
    ]
    if stats.concurrency_chosen:
        chosen = stats.concurrency_chosen
        lines.append(
            f"concurrency auto: settled at {stats.concurrency_settled} in flight (from {chosen[0][1]},"
            f" {chosen[-1][1]} at the end)"
        )
    return "\n".join(lines)


def format_duration(seconds: float | None) -> str:
    """``1:02:03``, ``2:03``, or ``-`` when not known."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_progress(progress: JobProgress) -> str:
    """One line: rows done of all, pace, requests, failures, time left."""
    total = progress.rows_total
    percent = 100.0 * progress.rows_done / total if total else 100.0
    return (
        f"{progress.rows_done:,}/{total:,} rows ({percent:.0f}%), {progress.rows_per_s:,.0f} rows/s, "
        f"{progress.stats.requests:,} requests, {progress.failed_attempts:,} failed attempts, "
        f"{format_duration(progress.eta_s)} left"
    )
