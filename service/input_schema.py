"""Reading an input file's schema (column names and types) without reading its rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from service.errors import InputError

FORMATS = {".parquet": "parquet", ".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}


def input_format(path: Path) -> str:
    """The format of ``path`` from its extension; ``InputError`` for one Enrich does not read."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: unknown input format {path.suffix!r} (use .parquet, .csv, .ndjson or .jsonl)"
        )
    return fmt


def read_schema(path: str | Path) -> dict[str, pl.DataType]:
    """Column names and types of the file at ``path``."""
    path = Path(path)
    fmt = input_format(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        if fmt == "parquet":
            schema = pl.read_parquet_schema(path)
        elif fmt == "csv":
            schema = pl.scan_csv(path).collect_schema()
        else:
            schema = pl.scan_ndjson(path).collect_schema()
    except Exception as exc:  # polars raises many unrelated types for one cause: an unreadable file
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read as {fmt}: {detail}") from None
    return dict(schema)
