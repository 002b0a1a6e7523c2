"""``enrich demo``: the mock API in a child process, a generated input, one job, a summary."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import polars as pl

DEMO_SPEC = """\
# A demo spec: the built-in mock API on loopback.
[api]
url = "{url}/v1/lookup/{{ip}}"
timeout_s = 2

[input]
key = ["ip"]

[output.columns]
country = {{ path = "country.iso_code", type = "str" }}
in_eu   = {{ path = "country.eu", type = "bool" }}
asn     = {{ path = "asn", type = "i64" }}
score   = {{ path = "score", type = "f64" }}
lat     = {{ path = "location.lat", type = "f64" }}
seen    = {{ path = "seen", type = "timestamp" }}
tags    = {{ path = "tags", type = "json" }}

[limits]
concurrency = 64
rate = "5000/s"

[retry]
attempts = 4
backoff = {{ initial_s = 0.05, max_s = 1, jitter = 0.5 }}
"""


def demo_input(rows: int, seed: int = 7) -> pl.DataFrame:
    """Rows with many repeated keys (about one distinct key per 5 rows) and a few faulty ones."""
    rng = random.Random(seed)
    distinct = max(1, rows // 5)
    keys = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(distinct)]
    faulty = ["404-10.0.0.1", "400-10.0.0.2", "503-10.0.0.3"]
    ips = [rng.choice(keys) for _ in range(rows)]
    for i, key in enumerate(faulty):
        ips[(i + 1) * rows // (len(faulty) + 1)] = key
    return pl.DataFrame({"row": range(rows), "ip": ips})


def start_mock_api(*options: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``enrich mock-api`` on a free loopback port; return the process and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "mock-api", "--host", "127.0.0.1", "--port", "0", *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("mock API listening on "):
        process.kill()
        raise RuntimeError(f"the mock API did not start: {line!r}")
    return process, line.rsplit(" ", 1)[-1].strip()


def stop_mock_api(process: subprocess.Popen[str]) -> None:
    """Stop a mock API started by ``start_mock_api`` and release its pipe."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def write_demo_files(directory: Path, url: str, rows: int) -> tuple[Path, Path, Path]:
    """Write the spec and input into ``directory``; return (spec, input, output) paths."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / "spec.toml"
    spec.write_text(DEMO_SPEC.format(url=url))
    source = directory / "input.parquet"
    demo_input(rows).write_parquet(source)
    return spec, source, directory / "output.parquet"
