"""The end-of-job summary, as text: pure formatting of an ``EnrichStats``."""

from __future__ import annotations

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
        f"requests    {stats.requests:,} ({stats.retries:,} retries"
        + (f"; {stats.retries_refused:,} refused by the retry budget)" if stats.retries_refused else ")"),
        f"throttled   {stats.throttled_s:.1f} s on the rate limit, "
        f"{stats.concurrency_wait_s:.1f} s on the concurrency cap (summed over requests)",
        f"latency     p50 {_ms(stats.latency_p50_s)}, p95 {_ms(stats.latency_p95_s)}, "
        f"p99 {_ms(stats.latency_p99_s)}",
        f"throughput  {stats.rows_per_s:,.0f} rows/s over {stats.elapsed_s:.1f} s",
    ]
    return "\n".join(lines)
