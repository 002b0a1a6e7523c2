"""``GET /metrics``: the endpoint's and each spec's session figures in Prometheus' text format.

Read from the sessions' own statistics at scrape time (a collector, not counters bumped on every
request): the per-request path stays as fast as a job's, and the figures are the ones ``enrich run``
reports, the latency histogram's buckets included (within the sessions' ~5% buckets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from enrich.online.endpoint import SpecEndpoint

LATENCY_BOUNDS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]


class SessionsCollector(Collector):
    """Every spec's figures, labelled ``spec``."""

    def __init__(self, endpoints: Callable[[], Mapping[str, SpecEndpoint]]) -> None:
        self._endpoints = endpoints

    def collect(self) -> Iterable[Metric]:
        """The metric families, read now."""
        families = _families()
        for name, endpoint in self._endpoints().items():
            _add_endpoint(families, name, endpoint)
        return families.values()


def _families() -> dict[str, Metric]:
    counter, gauge = CounterMetricFamily, GaugeMetricFamily
    return {
        "requests": counter(
            "enrich_api_requests",
            "Requests to /v1/enrich/NAME answered, by HTTP status",
            labels=["spec", "code"],
        ),
        "rows": counter(
            "enrich_api_rows", "Rows answered, by outcome: ok or the error class", labels=["spec", "outcome"]
        ),
        "in_flight": gauge("enrich_api_requests_in_flight", "Requests being answered", labels=["spec"]),
        "pending": gauge(
            "enrich_api_rows_pending",
            "Rows being enriched, requests past their deadline included",
            labels=["spec"],
        ),
        "upstream": counter(
            "enrich_upstream_requests", "Requests to the API, by outcome class", labels=["spec", "outcome"]
        ),
        "latency": HistogramMetricFamily(
            "enrich_upstream_latency_seconds", "Latency of requests to the API", labels=["spec"]
        ),
        "waits": counter(
            "enrich_limiter_wait_seconds",
            "Wall-clock seconds during which some request waited for a limit (rate or concurrency)",
            labels=["spec", "limit"],
        ),
        "cache_hits": counter("enrich_cache_hits", "Keys answered by the response cache", labels=["spec"]),
        "circuit": gauge(
            "enrich_circuit_open", "1 while the API is not called: it kept failing", labels=["spec"]
        ),
    }


def _add_endpoint(families: dict[str, Any], name: str, endpoint: SpecEndpoint) -> None:
    counts, stats = endpoint.counts, endpoint.session.statistics()
    for code, count in counts.requests.items():
        families["requests"].add_metric([name, code], count)
    for outcome, count in counts.rows.items():
        families["rows"].add_metric([name, outcome], count)
    families["in_flight"].add_metric([name], counts.in_flight)
    families["pending"].add_metric([name], endpoint.pending_rows)
    for outcome, count in stats.outcomes.items():
        families["upstream"].add_metric([name, outcome], count)
    at_most, count, total = endpoint.session.latency_histogram(LATENCY_BOUNDS_S)
    buckets = [(f"{bound:g}", float(n)) for bound, n in zip(LATENCY_BOUNDS_S, at_most, strict=True)]
    families["latency"].add_metric([name], [*buckets, ("+Inf", float(count))], total)
    families["waits"].add_metric([name, "rate"], stats.throttled_s)
    families["waits"].add_metric([name, "concurrency"], stats.concurrency_wait_s)
    families["cache_hits"].add_metric([name], stats.cache_hits)
    families["circuit"].add_metric([name], 0 if stats.circuit_open is None else 1)


def registry_for(endpoints: Callable[[], Mapping[str, SpecEndpoint]]) -> CollectorRegistry:
    """A registry of the endpoint's own (not the process-wide default one) holding its metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SessionsCollector(endpoints))
    return registry
