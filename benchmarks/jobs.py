"""Whole jobs from file to file, each in its own process: `enrich run` with and without the flow.

A wrapper process runs the job and reports its child's peak resident memory (``ru_maxrss`` of
RUSAGE_CHILDREN covers only the wrapper's children: that one job), and the largest part of it seen
mapped from files (Linux: the libraries' code, read from the page cache). That part moves with the
page cache, not with the job: the same 1M-row job peaked at 296-297 MB with the libraries' files
as `scripts/setup` had just written them to the cache, and at 263-267 MB after
`echo 3 > /proc/sys/vm/drop_caches` (2026-12-03, a throwaway script over ``run_job``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from benchmarks.contenders import engine_spec
from flows.environment import prefect_environment

_WRAPPER = """
import json, resource, subprocess, sys, threading, time
mapped_kib = []
def sample_mapped_files(pid, done):
    # RssFile grows as the job first touches the libraries' code and seldom shrinks: a sample
    # every 10 ms sees about its largest.
    while not done.wait(0.01):
        try:
            with open(f"/proc/{pid}/status") as status:
                line = next(line for line in status if line.startswith("RssFile:"))
        except (OSError, StopIteration):
            return
        mapped_kib.append(int(line.split()[1]))
started = time.perf_counter()
job = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
finished = threading.Event()
sampler = threading.Thread(target=sample_mapped_files, args=(job.pid, finished))
sampler.start()
_, err = job.communicate()
seconds = time.perf_counter() - started
finished.set()
sampler.join()
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
report = {"code": job.returncode, "seconds": seconds, "peak_kib": peak_kib, "err": err[-2000:]}
report["mapped_kib"] = max(mapped_kib) if mapped_kib else None
print(json.dumps(report))
"""


# A Prefect server the flow runs share instead of each starting a temporary one (--prefect-api-url:
# the test suite's smoke run). Their start-up figures then measure connecting, not starting.
SHARED_PREFECT_API = "ENRICH_BENCH_PREFECT_API_URL"


def flow_environment(prefect_home: Path, prefect_api: str | None = None) -> dict[str, str]:
    """The environment of a process running flows: Prefect's local mode with ``prefect_home``, as
    a user's first `enrich run` has it, unless a server was given (``prefect_api``, or shared)."""
    env = prefect_environment(os.environ, PREFECT_HOME=str(prefect_home))
    shared = prefect_api or os.environ.get(SHARED_PREFECT_API)
    if shared:
        env["PREFECT_API_URL"] = shared
    else:
        env.pop("PREFECT_API_URL", None)
    return env


@dataclass(frozen=True)
class JobRun:
    seconds: float
    peak_mb: float
    # The largest part of the job's RSS seen mapped from files; None where /proc does not say.
    mapped_files_mb: float | None


def write_input(folder: Path, rows: int) -> Path:
    """A Parquet input of ``rows`` distinct keys."""
    path = folder / f"in-{rows}.parquet"
    if not path.exists():
        pl.select(pl.format("k{}", pl.int_range(rows)).alias("k")).write_parquet(path)
    return path


WIDE_DISTINCT_KEYS = 20_000
WIDE_PAYLOAD_BYTES = 200
WIDE_ROW_GROUP_ROWS = 125_000


def write_wide_input(folder: Path, rows: int) -> Path:
    """A Parquet input of the memory targets' shape: a row id, a key of ``WIDE_DISTINCT_KEYS``
    distinct values and a ``WIDE_PAYLOAD_BYTES`` payload, in row groups of ``WIDE_ROW_GROUP_ROWS``;
    written a row group at a time (10M rows are 2 GB of payload)."""
    path = folder / f"wide-{rows}.parquet"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    writer: pq.ParquetWriter | None = None
    try:
        for start in range(0, rows, WIDE_ROW_GROUP_ROWS):
            ids = pl.int_range(start, min(rows, start + WIDE_ROW_GROUP_ROWS), dtype=pl.Int64)
            group = pl.select(
                ids.alias("row"),
                pl.format("k{}", ids % WIDE_DISTINCT_KEYS).alias("k"),
                pl.format("{}", ids).str.pad_end(WIDE_PAYLOAD_BYTES, "x").alias("payload"),
            ).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(partial, group.schema)
            writer.write_table(group, row_group_size=WIDE_ROW_GROUP_ROWS)
    finally:
        if writer is not None:
            writer.close()
    partial.rename(path)
    return path


HOSTILE_KINDS = ("bomb", "huge", "sized", "endless")


def write_hostile_input(folder: Path, per_kind: int, normal: int = 1000) -> Path:
    """Keys answered with gzip bombs, huge chunked bodies, huge announced bodies and endless
    bodies (``per_kind`` of each), among ``normal`` keys answered as usual."""
    keys = [f"{kind}-{i}" for kind in HOSTILE_KINDS for i in range(per_kind)] + [
        f"k{i}" for i in range(normal)
    ]
    path = folder / f"hostile-{per_kind}.parquet"
    pl.DataFrame({"k": keys}).write_parquet(path)
    return path


def job_command(
    base: str, source: Path, folder: Path, *, flow: bool, bulk: int, in_flight: int = 64
) -> tuple[list[str], Path]:
    """The `enrich run` command line over ``source`` against the mock API at ``base`` (no
    response cache; its spec written in ``folder``), and the output it writes (in a folder of its
    own under ``folder``)."""
    spec = folder / f"spec-{bulk}.toml"
    spec.write_text(engine_spec(base, in_flight, bulk))
    output = Path(tempfile.mkdtemp(dir=folder)) / "out.parquet"
    command = [sys.executable, "-m", "enrich", "run", str(source), "--spec", str(spec)]
    command += ["--output", str(output), "--no-cache"]
    if not flow:
        command.append("--no-flow")
    return command, output


def run_job(
    base: str,
    source: Path,
    folder: Path,
    *,
    flow: bool,
    bulk: int,
    in_flight: int = 64,
    batch_rows: int | None = None,
    prefect_api: str | None = None,
) -> JobRun:
    """`enrich run` over ``source`` (no response cache), in a fresh process; its time and peak memory.
    ``batch_rows`` None keeps `enrich run`'s default batch size; ``prefect_api``: the Prefect
    server a flow reports to (None: a temporary one of its own, unless one is shared)."""
    command, output = job_command(base, source, folder, flow=flow, bulk=bulk, in_flight=in_flight)
    if batch_rows is not None:
        command += ["--batch-size", str(batch_rows)]
    env = flow_environment(folder / "prefect-home", prefect_api)
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *command], capture_output=True, text=True, env=env, check=True
    )
    report = json.loads(done.stdout)
    if report["code"] != 0:
        raise RuntimeError(f"enrich run failed ({report['code']}): {report['err']}")
    output.unlink()
    mapped = report["mapped_kib"]
    return JobRun(
        seconds=report["seconds"],
        peak_mb=report["peak_kib"] / 1024,
        mapped_files_mb=None if mapped is None else mapped / 1024,
    )
