"""A sample of a finished job's failed rows, read back from its output: what the Prefect UI shows
next to the summary, so a failure's cause is one click away."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from service.engine import ERROR, MESSAGE, STATUS
from service.storage.locations import table_location
from service.tables.formats import output_format


def failed_rows_sample(output: str | Path, key: Sequence[str], limit: int = 100) -> list[dict[str, Any]]:
    """Up to ``limit`` failed rows of ``output``, first first: their key columns (as text), error
    class and message (already redacted when it was written)."""
    fmt = output_format(table_location(output))
    scan: pl.LazyFrame
    if fmt == "parquet":
        scan = pl.scan_parquet(str(output))
    elif fmt == "csv":
        scan = pl.scan_csv(str(output))
    else:
        scan = pl.scan_ndjson(str(output))
    failed: pl.DataFrame = (
        scan.filter(pl.col(STATUS) == "failed")
        .select(*(pl.col(name).cast(pl.String) for name in key), pl.col(ERROR), pl.col(MESSAGE))
        .head(limit)
        .collect()
    )
    rows: list[dict[str, Any]] = failed.to_dicts()
    return rows
