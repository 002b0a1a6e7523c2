"""How big each benchmark run is: --smoke (CI), --quick (< 2 min), default, --full."""

from __future__ import annotations

from dataclasses import dataclass, replace

# A guess of the engine's per-row rate at 0 ms, only to size measurements (not a result).
ZERO_LATENCY_ROWS_PER_S = 15_000


@dataclass(frozen=True)
class Plan:
    name: str
    seconds: float  # aimed duration of one throughput measurement
    repeats: int
    latencies_ms: tuple[float, ...]
    in_flights: tuple[int, ...]
    naive_rows: int
    flow_rows: int
    memory_rows: tuple[int, ...]
    min_round_trips: int = 10
    max_keys: int = 400_000
    # The flow's overhead is also measured with batches this big (None: only the default size).
    large_batch_rows: int | None = None
    # Keys of each hostile kind (gzip bomb, huge chunked, huge announced, endless) in the job whose
    # peak memory is measured against them.
    hostile_keys: int = 64
    # An untimed first flow run (it creates Prefect's database) before start-up is timed; the
    # smoke plan, which only runs the scenarios, spares its ten seconds.
    warm_prefect_first: bool = True
    # (latency ms, in flight) at which the HTTP libraries and the engine's senders are compared.
    sender_points: tuple[tuple[float, int], ...] = ((0, 64), (20, 256), (50, 500))
    # How many callers at once ask ``enrich api`` (and the API straight) for its latency figures.
    online_callers: tuple[int, ...] = (1, 64, 512)

    def keys_for(self, latency_ms: float, in_flight: int, per_request: int = 1) -> int:
        """Keys for one measurement of about ``seconds`` at the bound (at least 200), and of at
        least ``min_round_trips`` round trips per slot (the last one is a tail at partial load)."""
        if latency_ms > 0:
            rate = in_flight / (latency_ms / 1000) * per_request
            rate = min(rate, ZERO_LATENCY_ROWS_PER_S * per_request)
        else:
            rate = ZERO_LATENCY_ROWS_PER_S * per_request
        trips = in_flight * per_request * self.min_round_trips if latency_ms > 0 else 0
        return int(min(self.max_keys, max(200, rate * self.seconds, trips)))


_DEFAULT = Plan(
    "default",
    2.0,
    3,
    (0, 20, 50),
    (16, 64, 100, 256, 500),
    300,
    1_000_000,
    (100_000, 1_000_000, 10_000_000),
    80,
    large_batch_rows=50_000,
)

PLANS = {
    "smoke": Plan(
        "smoke",
        0.05,
        1,
        (0, 20),
        (16, 64),
        10,
        2_000,
        # One size: growth is judged on given figures (tests/benchmarks), each size costs a job
        # with and without its flow.
        (1_000,),
        hostile_keys=2,
        warm_prefect_first=False,
        sender_points=((0, 16),),
        online_callers=(1, 64),  # 512 callers: seconds of queueing that show nothing the run checks
    ),
    "quick": Plan("quick", 0.5, 1, (0, 20, 50), (16, 64, 100, 256, 500), 100, 100_000, (100_000, 1_000_000)),
    "default": _DEFAULT,
    # The default plan, longer and repeated more.
    "full": replace(_DEFAULT, name="full", seconds=3.0, repeats=5, naive_rows=500),
}
