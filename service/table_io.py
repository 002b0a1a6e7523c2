"""Reading inputs in batches and writing outputs atomically, by file extension.

Inputs: one .parquet/.csv/.ndjson/.jsonl file, or for Parquet a directory or a glob. They are
scanned lazily and pulled batch by batch, so memory depends on the batch size, not the input.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from service.errors import InputError
from service.input_schema import input_format

PARQUET_ROW_GROUP_ROWS = 128 * 1024  # large enough for efficient scans, small enough to stream


def resolve_inputs(spec: str | Path) -> list[Path]:
    """The input files named by ``spec``: a file, a directory of .parquet files, or a glob."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".parquet")
        if not files:
            raise InputError(f"{path}: directory holds no .parquet file")
        return files
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        if not files:
            raise InputError(f"{text}: no file matches")
        formats = {input_format(p) for p in files}
        if formats != {"parquet"}:
            raise InputError(f"{text}: a glob may name Parquet files only")
        return files
    input_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return [path]


def scan_inputs(paths: list[Path]) -> pl.LazyFrame:
    """A lazy scan of the input files (all of one format); ``InputError`` if unreadable."""
    fmt = input_format(paths[0])
    try:
        if fmt == "parquet":
            lazy = pl.scan_parquet(paths)
        elif fmt == "csv":
            lazy = pl.scan_csv(paths[0])
        else:
            lazy = pl.scan_ndjson(paths[0])
        lazy.collect_schema()
    except Exception as exc:  # polars raises many unrelated types for one cause: an unreadable file
        raise InputError(f"{paths[0]}: cannot read as {fmt}: {_first_line(exc)}") from None
    return lazy


def read_schema(path: str | Path) -> dict[str, pl.DataType]:
    """Column names and types of the input named by ``path``, without reading its rows."""
    return dict(scan_inputs(resolve_inputs(path)).collect_schema())


def count_rows(lazy: pl.LazyFrame, paths: list[Path]) -> int:
    """Rows in the input (Parquet: from metadata; text formats: one scan)."""
    try:
        return int(lazy.select(pl.len()).collect().item())
    except Exception as exc:  # as above
        raise InputError(f"{paths[0]}: cannot read: {_first_line(exc)}") from None


def iter_batches(lazy: pl.LazyFrame, batch_size: int, paths: list[Path]) -> Iterator[pl.DataFrame]:
    """Batches of ``batch_size`` rows (the last may be shorter), pulled from the scan on demand."""
    try:
        yield from lazy.collect_batches(chunk_size=batch_size)
    except Exception as exc:  # as above: a file that turns out corrupt halfway
        raise InputError(f"{paths[0]}: cannot read: {_first_line(exc)}") from None


def output_format(path: Path) -> str:
    """The output format from the extension; ``InputError`` for one Enrich does not write."""
    try:
        return input_format(path)
    except InputError:
        raise InputError(
            f"{path}: unknown output format {path.suffix!r} (use .parquet, .csv or .ndjson)"
        ) from None


def write_frames_atomically(frames: Iterable[pl.DataFrame], schema: pl.Schema, path: Path) -> None:
    """Write ``frames`` one after another to a temporary file beside ``path``, then rename.

    ``path`` appears only whole; memory holds one frame (one row group, for Parquet) at a time.
    """
    fmt = output_format(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        if fmt == "parquet":
            _write_parquet(frames, schema, temporary)
        else:
            with open(temporary, "wb") as handle:
                wrote_any = False
                for frame in frames:
                    if fmt == "csv":
                        frame.write_csv(handle, include_header=not wrote_any)
                    else:
                        frame.write_ndjson(handle)
                    wrote_any = True
                if not wrote_any and fmt == "csv":
                    pl.DataFrame(schema=schema).write_csv(handle)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
