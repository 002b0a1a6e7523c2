"""Finding and scanning inputs by file extension: their files, schema and row count.

Inputs: one .parquet/.csv/.ndjson/.jsonl file, or for Parquet a directory or a glob. They are
scanned lazily here (schema, row count); ``service.tables.batch_reading`` pulls them batch by
batch, so memory depends on the batch size, not the input.
"""

from __future__ import annotations

import csv
import glob
import io
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import polars as pl

from service.errors import InputError
from service.storage import objects
from service.storage.locations import (
    ObjectLocation,
    TableLocation,
    key_matches,
    literal_prefix,
    table_location,
)
from service.tables.formats import input_format


def resolve_inputs(spec: str | Path) -> list[TableLocation]:
    """The input files named by ``spec``: a file, a directory (a prefix, in object storage) of
    .parquet files, or a glob."""
    location = table_location(spec)
    if isinstance(location, ObjectLocation):
        return _resolve_objects(location)
    text = str(spec)
    path = location
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".parquet")
        if not files:
            raise InputError(f"{path}: directory holds no .parquet file")
        return list(files)
    if glob.has_magic(text):
        return _only_parquet(text, sorted(Path(p) for p in glob.glob(text) if Path(p).is_file()))
    input_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return [path]


def _resolve_objects(location: ObjectLocation) -> list[TableLocation]:
    """As ``resolve_inputs``, in a bucket: a glob over keys, a prefix (``KEY/`` or a key that is
    no object but has some under it), or one object."""
    key = location.key
    if glob.has_magic(key):
        listed = objects.listing(location.with_key(literal_prefix(key)))
        return _only_parquet(location.url, [o for o in listed if key_matches(key, o.key)])
    if key and not key.endswith("/"):
        found = objects.info(location)
        if found is not None:
            input_format(location)
            return [found]
        if location.suffix:  # a name with an extension Enrich does not read: said as such
            input_format(location)
        key += "/"  # a folder's name, as Spark writes a dataset (out.parquet/part-0.parquet)
    under = [o for o in objects.listing(location.with_key(key)) if "/" not in o.key[len(key) :]]
    files: list[TableLocation] = [o for o in under if o.suffix.lower() == ".parquet"]
    if files:
        return files
    if under or not location.key or location.key.endswith("/"):
        raise InputError(f"{location}: no .parquet object under this prefix")
    raise InputError(f"{location}: no such object")


def _only_parquet(pattern: str, files: Sequence[TableLocation]) -> list[TableLocation]:
    if not files:
        raise InputError(f"{pattern}: no file matches")
    if {input_format(p) for p in files} != {"parquet"}:
        raise InputError(f"{pattern}: a glob may name Parquet files only")
    return list(files)


def scan_inputs(paths: list[TableLocation]) -> pl.LazyFrame:
    """A lazy scan of the input files (all of one format); ``InputError`` if unreadable."""
    fmt = input_format(paths[0])
    try:
        if fmt == "parquet":
            lazy = pl.scan_parquet([str(p) for p in paths])
        elif fmt == "csv":
            _refuse_duplicate_headers(paths[0])
            lazy = pl.scan_csv(str(paths[0]))
        else:
            lazy = pl.scan_ndjson(str(paths[0]))
        lazy.collect_schema()
    except InputError:
        raise
    except Exception as exc:  # polars raises many unrelated types for one cause: an unreadable file
        raise InputError(f"{paths[0]}: cannot read as {fmt}: {first_line(exc)}") from None
    return lazy


def _refuse_duplicate_headers(path: TableLocation) -> None:
    """Polars renames a repeated CSV column (``ip_duplicated_0``): which one is the key would be a
    guess, so the file is refused, naming the columns."""
    with io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", errors="replace", newline="") as file:
        header = next(csv.reader(file), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputError(f"{path}: column names appear more than once in the header: {', '.join(repeated)}")


def read_schema(path: str | Path) -> dict[str, pl.DataType]:
    """Column names and types of the input named by ``path``, without reading its rows."""
    return dict(scan_inputs(resolve_inputs(path)).collect_schema())


def count_rows(lazy: pl.LazyFrame, paths: list[TableLocation]) -> int:
    """Rows in the input (Parquet: from metadata; text formats: one scan)."""
    try:
        return int(lazy.select(pl.len()).collect().item())
    except Exception as exc:  # as above
        raise InputError(f"{paths[0]}: cannot read: {first_line(exc)}") from None


def open_binary(location: TableLocation) -> BinaryIO:
    """The local file or the object, open for reading bytes."""
    if isinstance(location, ObjectLocation):
        return objects.open_for_reading(location)
    return open(location, "rb")


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (polars' messages go on for lines), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
