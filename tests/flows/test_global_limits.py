"""Two processes sharing one Prefect global concurrency limit stay within it together."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import (
    enrich_command,
    most_per_second_allowed,
    running_mock_api,
    server_stats,
    write_lookup_job,
)

# Two flow runs of about 5-15 s each, every wait for them bounded at 240 s.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# 360 keys at 100 ms, 4 at a time: 9 s of work per job, long enough that two jobs started together
# overlap despite Prefect's start-up (with 4 s, a loaded machine once started the second job after
# the first had finished: no wait to see); without the shared limit the server sees 8 in flight.
KEYS = 360
LIMITS = '[limits]\nconcurrency = 4\nglobal_limit = "geo"\n'
RATE_KEYS = 120  # 240 requests at 20/s together: 12 s


@pytest.fixture(scope="module")
def slow_api() -> Iterator[str]:
    with running_mock_api("--latency-ms", "100") as url:
        yield url


def run_two_jobs(
    tmp_path: Path, prefect_server: str, api: str, keys_per_job: int, limits: str
) -> tuple[dict[str, Any], list[str]]:
    """Start two `enrich run` processes at once against ``api``; the server's counters and their logs."""
    httpx.post(f"{api}/_reset", timeout=5)
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "PREFECT_HOME": str(tmp_path / "client-home"),
        "ENRICH_CACHE_DIR": str(tmp_path / "cache"),
    }
    jobs = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        keys = [f"{name}{i:03d}" for i in range(keys_per_job)]
        source, spec = write_lookup_job(folder, api, keys, limits)
        command = enrich_command("run", str(source), "--spec", str(spec))
        # -v: the job's own log lines (how it shares the limit) are Prefect log lines.
        command += ["--output", str(folder / "out.parquet"), "--batch-size", "40", "-v"]
        jobs.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    logs = []
    for job in jobs:
        output, _ = job.communicate(timeout=240)
        assert job.returncode == 0, output
        logs.append(output)
    stats = server_stats(api)
    assert stats["requests"] == 2 * keys_per_job
    return stats, logs


def counters(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k not in ("per_key", "times")}


def test_two_processes_share_the_limit(tmp_path: Path, prefect_server: str, slow_api: str) -> None:
    """Each job may have 4 in flight; sharing the 4-slot limit 'geo', the server never sees more,
    and sees 4. The two ran at once (rather than one after the other, which would pass "never
    more" by itself): one of them waited for the slots the other held, and says so."""
    stats, logs = run_two_jobs(tmp_path, prefect_server, slow_api, KEYS, LIMITS)
    assert stats["most_in_flight"] == 4, (counters(stats), logs)
    # Whichever took the slots second waited at least for one batch of the other (40 keys, 4 at a
    # time, 100 ms each: 1 s); jobs run one after the other would wait a server round trip.
    waits = [
        float(wait)
        for wait in re.findall(r"waited ([0-9.]+) s for 4 slots of global limit 'geo'", "".join(logs))
    ]
    assert max(waits, default=0.0) >= 1.0, logs


def test_two_processes_share_the_rate(tmp_path: Path, prefect_server: str, server: str) -> None:
    """Alone, each job would pace itself at 20/s; holding 2 of the 4 slots each, they run side by
    side at half the rate each, and together stay within 20/s (plus one burst of 2 per process)."""
    limits = '[limits]\nconcurrency = 4\nrate = "20/s"\nburst = 2\nglobal_limit = "geo2"\nglobal_share = 2\n'
    stats, logs = run_two_jobs(tmp_path, prefect_server, server, RATE_KEYS, limits)
    assert "2 of its 4 slots per process, 10 of its 20 requests/s" in logs[0], logs[0]
    first = {
        name: min(t for key, times in stats["times"].items() if key[0] == name for t in times)
        for name in "ab"
    }
    last = {
        name: max(t for key, times in stats["times"].items() if key[0] == name for t in times)
        for name in "ab"
    }
    overlap = min(last.values()) - max(first.values())
    # Side by side for seconds: unshared, the two would have sent up to 40 in a second.
    assert overlap > 2, (first, last)
    assert stats["most_per_second"] <= most_per_second_allowed(20, burst=2, senders=2), counters(stats)
