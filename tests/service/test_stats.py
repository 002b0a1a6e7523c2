"""Statistics: latency percentiles from the histogram, snapshot totals."""

from __future__ import annotations

import pytest

from service import ErrorClass
from service.stats import StatsRecorder, WaitSpans


def test_percentiles_within_histogram_resolution() -> None:
    """p50/p95/p99 of 1..1000 ms come back within the buckets' ~5% resolution."""
    recorder = StatsRecorder()
    for ms in range(1, 1001):
        recorder.record_attempt(ms / 1000, None)
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
    recorder.record_attempt(0.010, None)
    recorder.record_attempt(0.020, ErrorClass.TIMEOUT)
    snapshot = recorder.snapshot(throttled_s=1.5, concurrency_wait_s=0, elapsed_s=2.0, circuit_open=None)
    assert (snapshot.rows, snapshot.rows_ok, snapshot.rows_failed) == (10, 6, 4)
    assert snapshot.rows_failed_by_class == {"http_4xx": 3, "timeout": 1}
    assert snapshot.distinct_keys == 7
    assert snapshot.outcomes == {"ok": 1, "timeout": 1}
    assert snapshot.rows_per_s == 5.0


def test_wait_spans_count_overlapping_waits_once() -> None:
    """Waits [0, 4] and [1, 3] and [6, 7] are 5 s of wall-clock waiting, not 7 (their sum); a wait
    still going counts up to now."""
    spans = WaitSpans()
    spans.begin(0.0)
    spans.begin(1.0)
    spans.end(3.0)
    assert spans.seconds(3.5) == 3.5
    spans.end(4.0)
    spans.begin(6.0)
    spans.end(7.0)
    assert spans.seconds(100.0) == 5.0
    spans.begin(10.0)
    assert spans.seconds(12.0) == 7.0


def test_rows_answered_count_calls_in_flight_by_their_keys() -> None:
    """A call with 1,000 rows over 40 keys, 10 of them settled, has answered a quarter of its rows;
    a finished frame counts whole."""
    call = StatsRecorder(frame_rows=1000, frame_keys=40, keys_settled=10)
    assert call.rows_answered_in_flight() == 250
    done = StatsRecorder()
    done.add_rows(ok=30, failed_by_class={"timeout": 2}, distinct_keys=5)
    snapshot = done.snapshot(
        throttled_s=0, concurrency_wait_s=0, elapsed_s=1.0, circuit_open=None, rows_in_flight=250
    )
    assert snapshot.rows_answered == 282
