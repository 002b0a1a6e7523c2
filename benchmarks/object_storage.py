"""Which library reads and writes object storage, measured: the same Parquet table (1M rows, a
100-byte payload) read whole, read in 10,000-row slices (as a job reads it), and written, against
moto's S3 server on loopback, three interleaved repeats, medians.

    .venv/bin/python -m benchmarks.object_storage     (s3fs: pip install s3fs, else skipped)

moto is a Python server: the figures say how the clients compare on one machine, not what a real
store gives. Each contender uses the same environment (AWS_ENDPOINT_URL, keys, AWS_ALLOW_HTTP).
"""

from __future__ import annotations

import importlib.util
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import obstore
import polars as pl
import pyarrow.fs
import pyarrow.parquet as pq
from obstore.store import from_url

from benchmarks.run import free_port
from service.storage.locations import ObjectLocation
from service.tables.batch_reading import iter_batches
from service.testing.s3_server import create_bucket, running_s3_server, s3_environment

ROWS = 1_000_000
SLICE = 10_000
BUCKET = "enrich-bench"


def table() -> pl.DataFrame:
    # A payload of digits from hashes: incompressible, so the bytes moved are the table's.
    payload = pl.concat_str([pl.col("row").hash(seed=seed).cast(pl.String) for seed in range(5)])
    keys = [f"k{i % 20_000}" for i in range(ROWS)]
    return pl.DataFrame({"row": range(ROWS), "ip": keys}).with_columns(payload=payload)


Operations = dict[str, Callable[[], object]]
URL = f"s3://{BUCKET}/in.parquet"


def polars_native(local: Path) -> Operations:
    schema = pl.scan_parquet(URL).collect_schema()

    def slices() -> None:
        lazy = pl.scan_parquet(URL)
        offset = 0
        while (piece := lazy.slice(offset, SLICE).collect()).height:
            offset += piece.height

    def as_enrich_reads() -> None:
        for _ in iter_batches([ObjectLocation("s3", BUCKET, "in.parquet")], schema, SLICE):
            pass

    return {
        "read": lambda: pl.read_parquet(URL),
        f"read in {SLICE:,}-row slices": slices,
        f"{SLICE:,}-row batches, a row group per request (enrich)": as_enrich_reads,
        "write (decode, encode, upload)": lambda: pl.read_parquet(local).write_parquet(
            f"s3://{BUCKET}/out-polars.parquet"
        ),
    }


def contenders(endpoint: str, local: Path) -> dict[str, Operations]:
    store = from_url(f"s3://{BUCKET}")
    arrow = pyarrow.fs.S3FileSystem(endpoint_override=endpoint, scheme="http", region="us-east-1")
    found: dict[str, Operations] = {
        "polars (native, object_store)": polars_native(local),
        "obstore (object_store)": {
            "read": lambda: pl.read_parquet(io.BytesIO(bytes(obstore.get(store, "in.parquet").bytes()))),
            "write": lambda: obstore.put(store, "out-obstore.parquet", local),
        },
        "pyarrow.fs (AWS SDK for C++)": {
            "read": lambda: pq.read_table(f"{BUCKET}/in.parquet", filesystem=arrow),
            "write": lambda: pyarrow.fs.copy_files(
                str(local), f"{BUCKET}/out-arrow.parquet", destination_filesystem=arrow
            ),
        },
    }
    if importlib.util.find_spec("s3fs") is not None:
        import s3fs  # type: ignore[import-not-found]

        fs = s3fs.S3FileSystem(endpoint_url=endpoint)
        found["s3fs (fsspec, aiobotocore)"] = {
            "read": lambda: pl.read_parquet(fs.open(f"{BUCKET}/in.parquet", "rb")),
            "write": lambda: fs.put(str(local), f"{BUCKET}/out-s3fs.parquet"),
        }
    return found


def main() -> None:
    with running_s3_server(free_port()) as endpoint, tempfile.TemporaryDirectory() as folder:
        os.environ.update(s3_environment(endpoint))
        create_bucket(endpoint, BUCKET)
        local = Path(folder) / "in.parquet"
        table().write_parquet(local)
        obstore.put(from_url(f"s3://{BUCKET}"), "in.parquet", local)
        megabytes = local.stat().st_size / 1e6
        print(f"{ROWS:,} rows, {megabytes:.1f} MB of Parquet; moto on {endpoint}")
        runs = contenders(endpoint, local)
        seconds: dict[tuple[str, str], list[float]] = {}
        for _ in range(3):
            for name, operations in runs.items():
                for operation, run in operations.items():
                    started = time.perf_counter()
                    run()
                    seconds.setdefault((name, operation), []).append(time.perf_counter() - started)
        print("| library | operation | median s | MB/s |\n|---|---|---:|---:|")
        for (name, operation), taken in seconds.items():
            median = statistics.median(taken)
            print(f"| {name} | {operation} | {median:.2f} | {megabytes / median:.0f} |")


if __name__ == "__main__":
    main()
