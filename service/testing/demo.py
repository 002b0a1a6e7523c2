"""The demo's files: a spec for the mock API, and an input with repeated and faulty keys."""

from __future__ import annotations

import random
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


def write_demo_files(directory: Path, url: str, rows: int) -> tuple[Path, Path, Path]:
    """Write the spec and input into ``directory``; return (spec, input, output) paths."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / "spec.toml"
    spec.write_text(DEMO_SPEC.format(url=url))
    source = directory / "input.parquet"
    demo_input(rows).write_parquet(source)
    return spec, source, directory / "output.parquet"
