"""Reading input tables and writing output tables atomically, by file extension."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import polars as pl

from service.errors import InputError
from service.input_schema import input_format


def read_table(path: str | Path) -> pl.DataFrame:
    """Read a .parquet, .csv or .ndjson/.jsonl file; ``InputError`` naming the file otherwise."""
    path = Path(path)
    fmt = input_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        if fmt == "parquet":
            return pl.read_parquet(path)
        if fmt == "csv":
            return pl.read_csv(path)
        return pl.read_ndjson(path)
    except Exception as exc:  # polars raises many unrelated types for one cause: an unreadable file
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read as {fmt}: {detail}") from None


def output_format(path: Path) -> str:
    """The output format from the extension; ``InputError`` for one Enrich does not write."""
    try:
        return input_format(path)
    except InputError:
        raise InputError(
            f"{path}: unknown output format {path.suffix!r} (use .parquet, .csv or .ndjson)"
        ) from None


def write_table_atomically(frame: pl.DataFrame, path: str | Path) -> None:
    """Write ``frame`` to a temporary file beside ``path``, then rename: ``path`` appears only whole."""
    path = Path(path)
    fmt = output_format(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        if fmt == "parquet":
            frame.write_parquet(temporary)
        elif fmt == "csv":
            frame.write_csv(temporary)
        else:
            frame.write_ndjson(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
