"""Finding and scanning inputs by file extension: their files, schema and row count.

Inputs: one .parquet/.csv/.ndjson/.jsonl file, or for Parquet a directory or a glob. They are
scanned lazily here (schema, row count); ``service.tables.batch_reading`` pulls them batch by
batch, so memory depends on the batch size, not the input.
"""

from __future__ import annotations

import csv
import glob
import re
from pathlib import Path

import polars as pl

from service.errors import InputError
from service.tables.formats import input_format

# A URL (s3://bucket/key), or what pathlib makes of one (s3:/bucket/key).
_OBJECT_STORE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def refuse_object_storage(name: str | Path, what: str) -> None:
    """``InputError`` for a URL where a local path must be (object storage is not read yet):
    said as such, rather than as a file missing under a path the URL was mangled into."""
    text = str(name)
    if _OBJECT_STORE_URL.match(text):
        url = re.sub(r"^([^:]+):/(?!/)", r"\1://", text)
        raise InputError(
            f"{what}{url}: object storage (s3://, gs://, az://) is not supported yet: "
            "copy it to (or from) a local path"
        )


def resolve_inputs(spec: str | Path) -> list[Path]:
    """The input files named by ``spec``: a file, a directory of .parquet files, or a glob."""
    text = str(spec)
    refuse_object_storage(text, "")
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
            _refuse_duplicate_headers(paths[0])
            lazy = pl.scan_csv(paths[0])
        else:
            lazy = pl.scan_ndjson(paths[0])
        lazy.collect_schema()
    except InputError:
        raise
    except Exception as exc:  # polars raises many unrelated types for one cause: an unreadable file
        raise InputError(f"{paths[0]}: cannot read as {fmt}: {first_line(exc)}") from None
    return lazy


def _refuse_duplicate_headers(path: Path) -> None:
    """Polars renames a repeated CSV column (``ip_duplicated_0``): which one is the key would be a
    guess, so the file is refused, naming the columns."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as file:
        header = next(csv.reader(file), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputError(f"{path}: column names appear more than once in the header: {', '.join(repeated)}")


def read_schema(path: str | Path) -> dict[str, pl.DataType]:
    """Column names and types of the input named by ``path``, without reading its rows."""
    return dict(scan_inputs(resolve_inputs(path)).collect_schema())


def count_rows(lazy: pl.LazyFrame, paths: list[Path]) -> int:
    """Rows in the input (Parquet: from metadata; text formats: one scan)."""
    try:
        return int(lazy.select(pl.len()).collect().item())
    except Exception as exc:  # as above
        raise InputError(f"{paths[0]}: cannot read: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (polars' messages go on for lines), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
