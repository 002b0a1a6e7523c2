"""Statistics: latency percentiles from the histogram, snapshot totals."""

from __future__ import annotations

import pytest

from service import ErrorClass
from service.stats import StatsRecorder


def test_percentiles_within_histogram_resolution() -> None:
    """p50/p95/p99 of 1..1000 ms come back within the buckets' ~5% resolution."""
    recorder = StatsRecorder()
    for ms in range(1, 1001):
        recorder.record_latency(ms / 1000)
    assert recorder.percentile(0.50) == pytest.approx(0.500, rel=0.06)
    assert recorder.percentile(0.95) == pytest.approx(0.950, rel=0.06)
    assert recorder.percentile(0.99) == pytest.approx(0.990, rel=0.06)


def test_no_latency_gives_none() -> None:
    """With no attempt recorded there is no percentile."""
    assert StatsRecorder().percentile(0.5) is None


def test_snapshot_adds_rows_and_outcomes() -> None:
    """Rows from several frames and attempt outcomes add up in the frozen snapshot."""
    recorder = StatsRecorder()
    recorder.add_rows(ok=5, failed_by_class={"http_4xx": 2}, distinct_keys=4)
    recorder.add_rows(ok=1, failed_by_class={"http_4xx": 1, "timeout": 1}, distinct_keys=3)
    recorder.record_outcome(None)
    recorder.record_outcome(ErrorClass.TIMEOUT)
    snapshot = recorder.snapshot(throttled_s=1.5, elapsed_s=2.0, circuit_open=None)
    assert (snapshot.rows, snapshot.rows_ok, snapshot.rows_failed) == (10, 6, 4)
    assert snapshot.rows_failed_by_class == {"http_4xx": 3, "timeout": 1}
    assert snapshot.distinct_keys == 7
    assert snapshot.outcomes == {"ok": 1, "timeout": 1}
    assert snapshot.rows_per_s == 5.0
