"""The tutorial's naive pattern: one Prefect task per row, fanned out with ``.map`` in a flow.

    python -m benchmarks.naive_prefect BASE_URL ROWS   ->  prints {"rows": N, "seconds": S}

Run in its own process (Prefect's local mode starts a temporary server there); the time is the
flow body's, without Prefect's start-up.
"""

from __future__ import annotations

import json
import sys
import time

import httpx
from prefect import flow, task, unmapped


@task
def lookup(base: str, key: str) -> dict[str, object]:
    return dict(httpx.get(f"{base}/v1/lookup/{key}", timeout=30).json())


@flow
def enrich_rows(base: str, keys: list[str]) -> float:
    started = time.perf_counter()
    futures = lookup.map(unmapped(base), keys)
    for future in futures:
        future.result()
    return time.perf_counter() - started


def main() -> None:
    base, rows = sys.argv[1], int(sys.argv[2])
    seconds = enrich_rows(base, [f"naive-{i}" for i in range(rows)])
    print(json.dumps({"rows": rows, "seconds": seconds}))


if __name__ == "__main__":
    main()
