"""A job's memory follows its batches, not its input: checked on the peak resident memory of a
real `enrich run` process (memory, not time: it does not move with the machine's load)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from tests.helpers import CLI_TIMEOUT_S, enrich_command

pytestmark = pytest.mark.integration

# Runs COMMAND and prints its peak resident memory: RUSAGE_CHILDREN of a fresh process covers only
# that one child (a test worker's own children include mock APIs and Prefect servers).
_PEAK_OF_CHILD = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"code": done.returncode, "stderr": done.stderr[-2000:], "peak_mb": peak_mb}))
"""
_ROWS, _PAYLOAD_BYTES, _GROUP_ROWS = 100_000, 4_000, 10_000


def _write_wide_input(path: Path) -> None:
    """400 MB of payload once decoded (1 MB on disk: it compresses), a row group at a time."""
    with pq.ParquetWriter(
        path, pl.DataFrame(schema={"row": pl.Int64, "k": pl.String, "payload": pl.String}).to_arrow().schema
    ) as writer:
        for start in range(0, _ROWS, _GROUP_ROWS):
            ids = pl.int_range(start, start + _GROUP_ROWS, dtype=pl.Int64)
            group = pl.select(
                ids.alias("row"),
                pl.format("k{}", ids % 1000).alias("k"),
                pl.format("{}", ids).str.pad_end(_PAYLOAD_BYTES, "x").alias("payload"),
            )
            writer.write_table(group.to_arrow())


def test_a_job_holds_its_batches_not_its_input(tmp_path: Path, server: str) -> None:
    """100,000 rows of a 4 KB payload (400 MB decoded) in batches of 2,000: the job process
    peaks far below the input's size. Polars' streaming reader decoded ahead of the batches
    whatever their pace, and its sink held the parts while writing OUT: 1,048 MB there, 401-438
    MB here (the imports alone take about 180 MB)."""
    source, output, spec = tmp_path / "in.parquet", tmp_path / "out.parquet", tmp_path / "spec.toml"
    _write_wide_input(source)
    spec.write_text(
        f'[api]\nmethod = "POST"\nurl = "{server}/v1/lookup"\nbody = {{ keys = "{{@keys}}" }}\n'
        '[input]\nkey = "k"\n[bulk]\nsize = 100\nresults = "results"\nmatch = "key"\n'
        '[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n'
    )
    command = enrich_command(
        "run", str(source), "--spec", str(spec), "--output", str(output), "--no-flow", "--no-cache",
        "--batch-size", "2000",
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, *command],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=True,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert report["code"] == 0, report["stderr"]
    assert pq.ParquetFile(output).metadata.num_rows == _ROWS
    assert report["peak_mb"] < 650, f"peak {report['peak_mb']:.0f} MB"
