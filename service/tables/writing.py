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
from service.storage import objects
from service.storage.locations import ObjectLocation, TableLocation
from service.tables.formats import output_format

PARQUET_ROW_GROUP_ROWS = 128 * 1024  # large enough for efficient scans, small enough to stream
PARQUET_ROW_GROUP_BYTES = 16 * 1024**2  # or fewer rows when wide: writing OUT holds one group


def write_output(
    frames: Iterable[pl.DataFrame], schema: pl.Schema, output: TableLocation, working_dir: Path
) -> None:
    """Write ``frames`` to ``output`` so that it appears only whole: a local file beside it, then
    renamed; an object through a file in ``working_dir``, then uploaded (an upload in parts is
    invisible until its last part is in)."""
    if not isinstance(output, ObjectLocation):
        write_frames_atomically(frames, schema, output)
        return
    staged = working_dir / f"output{output.suffix}"
    try:
        write_frames_atomically(frames, schema, staged)
        objects.put(output, staged)
    finally:
        staged.unlink(missing_ok=True)


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
                nested_as_json_text(frame).write_csv(handle, include_header=not wrote_any)
            else:
                frame.write_ndjson(handle)  # lists and structs as JSON values
            wrote_any = True
        if not wrote_any and csv:
            nested_as_json_text(pl.DataFrame(schema=schema)).write_csv(handle)


def nested_as_json_text(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with each list and struct column as JSON text (CSV has no nested values); a null
    stays an empty cell."""
    nested = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List | pl.Struct)]
    if not nested:
        return frame
    # polars encodes structs only: each value is wrapped as {"v": ...}, then unwrapped.
    return frame.with_columns(
        pl.when(pl.col(name).is_null())
        .then(None)
        .otherwise(pl.struct(pl.col(name).alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}"))
        .alias(name)
        for name in nested
    )


def _write_parquet(frames: Iterable[pl.DataFrame], schema: pl.Schema, path: Path) -> None:
    arrow_schema = pl.DataFrame(schema=schema).to_arrow().schema
    pending: list[pa.Table] = []
    pending_rows = pending_bytes = 0
    with pq.ParquetWriter(path, arrow_schema) as writer:
        for frame in frames:
            table = frame.to_arrow().cast(arrow_schema)
            pending.append(table)
            pending_rows += table.num_rows
            pending_bytes += table.nbytes
            if pending_rows >= PARQUET_ROW_GROUP_ROWS or pending_bytes >= PARQUET_ROW_GROUP_BYTES:
                writer.write_table(pa.concat_tables(pending), row_group_size=PARQUET_ROW_GROUP_ROWS)
                pending, pending_rows, pending_bytes = [], 0, 0
        if pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=PARQUET_ROW_GROUP_ROWS)
