"""Writing an output table from a stream of frames, atomically, by file extension.

Memory holds one frame (one row group, for Parquet) at a time; the file appears only whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from service.files import replaced_atomically
from service.tables.formats import output_format

PARQUET_ROW_GROUP_ROWS = 128 * 1024  # large enough for efficient scans, small enough to stream


def write_frames_atomically(frames: Iterable[pl.DataFrame], schema: pl.Schema, path: Path) -> None:
    """Write ``frames`` one after another to a temporary file beside ``path``, then rename."""
    fmt = output_format(path)
    with replaced_atomically(path) as temporary:
        if fmt == "parquet":
            _write_parquet(frames, schema, temporary)
        else:
            _write_text(frames, schema, temporary, csv=fmt == "csv")


def _write_text(frames: Iterable[pl.DataFrame], schema: pl.Schema, path: Path, *, csv: bool) -> None:
    with open(path, "wb") as handle:
        wrote_any = False
        for frame in frames:
            if csv:
                frame.write_csv(handle, include_header=not wrote_any)
            else:
                frame.write_ndjson(handle)
            wrote_any = True
        if not wrote_any and csv:
            pl.DataFrame(schema=schema).write_csv(handle)


def _write_parquet(frames: Iterable[pl.DataFrame], schema: pl.Schema, path: Path) -> None:
    arrow_schema = pl.DataFrame(schema=schema).to_arrow().schema
    pending: list[pa.Table] = []
    pending_rows = 0
    with pq.ParquetWriter(path, arrow_schema) as writer:
        for frame in frames:
            pending.append(frame.to_arrow().cast(arrow_schema))
            pending_rows += frame.height
            if pending_rows >= PARQUET_ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(pending), row_group_size=PARQUET_ROW_GROUP_ROWS)
                pending, pending_rows = [], 0
        if pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=PARQUET_ROW_GROUP_ROWS)
