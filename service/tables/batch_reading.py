"""Reading an input batch by batch in memory bounded by the batch, not the file.

Polars' streaming ``collect_batches`` decodes ahead of its consumer whatever the consumer's pace
(pola-rs/polars#28569): a job pulling 10,000-row batches while it waits on an API held the
decoded file instead (+274 MB for 1M rows of a 200-byte payload, +391 MB for 3M). Here each
format is read a piece at a time, only when the next batch is asked for:

- Parquet a slice of a batch at a time, file after file;
- NDJSON in blocks of whole lines (a JSON text holds no raw line break);
- CSV in blocks of whole records: a line break ends a record only outside quotes, that is after
  an even number of quote characters since the record began (a doubled "" inside a field adds
  two). A record longer than a block makes the block grow until it ends.

Every piece is parsed with the job's schema (the one the scan inferred), and ``rebatched`` cuts
the pieces into exact batches, so batch N holds the same rows however the file was split.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import polars as pl
import pyarrow.parquet as pq

from service.errors import InputError
from service.storage.locations import ObjectLocation, TableLocation
from service.tables.formats import input_format
from service.tables.reading import first_line, open_binary

BLOCK_BYTES = 8 * 1024**2
# The most rows of an object's row group read at once (polars' own groups hold 250,000 at most).
ROW_GROUP_PIECE_ROWS = 256 * 1024
_QUOTE = ord('"')


def iter_batches(
    paths: list[TableLocation],
    schema: pl.Schema,
    batch_size: int,
    limit: int | None = None,
    *,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[pl.DataFrame]:
    """The input's first ``limit`` rows (all: None) in batches of ``batch_size`` (the last may be
    shorter), each read when asked for (text formats ``block_bytes`` at a time); ``InputError``
    naming the file that cannot be read."""
    return rebatched(_pieces(paths, schema, batch_size, block_bytes), batch_size, limit)


def rebatched(
    pieces: Iterable[pl.DataFrame], batch_size: int, limit: int | None = None
) -> Iterator[pl.DataFrame]:
    """``pieces`` cut and joined into frames of exactly ``batch_size`` rows (the last may be
    shorter), stopping after ``limit`` rows."""
    held: list[pl.DataFrame] = []
    held_rows = 0
    left = limit
    for piece in pieces:
        if left is not None:
            piece = piece.head(left)
            left -= piece.height
        while piece.height:
            take = piece.head(batch_size - held_rows)
            piece = piece.slice(take.height)
            held.append(take)
            held_rows += take.height
            if held_rows == batch_size:
                yield pl.concat(held, rechunk=True) if len(held) > 1 else held[0]
                held, held_rows = [], 0
        if left == 0:
            break
    if held_rows:
        yield pl.concat(held, rechunk=True) if len(held) > 1 else held[0]


def _pieces(
    paths: list[TableLocation], schema: pl.Schema, batch_size: int, block_bytes: int
) -> Iterator[pl.DataFrame]:
    fmt = input_format(paths[0])
    for path in paths:
        try:
            if fmt == "parquet":
                yield from _parquet_pieces(path, schema, batch_size)
            else:
                with open_binary(path) as file:
                    yield from _text_pieces(file, schema, block_bytes, csv=fmt == "csv")
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise InputError(f"{path}: cannot read: {first_line(exc)}") from None


def _parquet_pieces(path: TableLocation, schema: pl.Schema, batch_size: int) -> Iterator[pl.DataFrame]:
    # A slice reads only the row groups and pages it covers, and nothing runs between slices.
    # (Read as pyarrow's record batches, a 1M-row job peaked 63 MB higher: pyarrow's allocator
    # kept what each reading thread had freed.)
    lazy = pl.scan_parquet(str(path))
    if isinstance(path, ObjectLocation):
        yield from _row_group_pieces(path, lazy, schema)
        return
    offset = 0
    while (piece := lazy.slice(offset, batch_size).collect()).height:
        yield _as_schema(piece, schema)
        offset += piece.height


def _row_group_pieces(path: ObjectLocation, lazy: pl.LazyFrame, schema: pl.Schema) -> Iterator[pl.DataFrame]:
    """An object a row group at a time: a slice fetches every row group it touches, so 10,000-row
    slices of 250,000-row groups fetched the object 13 times over (benchmarks.object_storage)."""
    with open_binary(path) as file:
        metadata = pq.read_metadata(file)
    offset = 0
    for group in range(metadata.num_row_groups):
        end = offset + metadata.row_group(group).num_rows
        while offset < end:  # a huge group in parts: memory holds at most ROW_GROUP_PIECE_ROWS
            piece = lazy.slice(offset, min(end - offset, ROW_GROUP_PIECE_ROWS)).collect()
            if not piece.height:  # fewer rows than its metadata said (replaced meanwhile)
                return
            yield _as_schema(piece, schema)
            offset += piece.height


def _text_pieces(file: BinaryIO, schema: pl.Schema, block_bytes: int, *, csv: bool) -> Iterator[pl.DataFrame]:
    blocks = record_blocks(file, block_bytes, csv=csv)
    if csv:
        next(blocks, None)  # the header: the schema already names the columns
    for block in blocks:
        if not block.strip():  # blank lines only: no record
            continue
        if csv:
            frame = pl.read_csv(io.BytesIO(block), has_header=False, schema=schema)
        else:
            frame = pl.read_ndjson(io.BytesIO(block), schema=schema)
        yield frame


def record_blocks(file: BinaryIO, block_bytes: int, *, csv: bool) -> Iterator[bytes]:
    """``file`` in blocks of whole records, about ``block_bytes`` each (more for a longer record);
    for CSV, the first block is the header record alone."""
    pending = b""
    header = csv
    while True:
        chunk = file.read(block_bytes)
        data = pending + chunk if pending else chunk
        if not chunk:  # the end: what is left is the last record, with or without its line break
            if data.strip():
                yield data
            return
        end = _first_record_end(data) if header else _last_record_end(data, csv=csv)
        if end is None:
            pending = data
            continue
        yield data[:end]
        pending = data[end:]
        header = False


def _last_record_end(data: bytes, *, csv: bool) -> int | None:
    """Where the last whole record in ``data`` (which starts at a record's start) ends, after its
    line break; None when none ends in it."""
    end = data.rfind(b"\n")
    if end < 0 or not csv:
        return None if end < 0 else end + 1
    quotes_before = data.count(_QUOTE, 0, end)
    while quotes_before % 2:  # this line break is inside a quoted field: try the one before
        previous = data.rfind(b"\n", 0, end)
        if previous < 0:
            return None
        quotes_before -= data.count(_QUOTE, previous, end)
        end = previous
    return end + 1


def _first_record_end(data: bytes) -> int | None:
    """Where the first CSV record in ``data`` ends, after its line break; None when it does not."""
    end = data.find(b"\n")
    if end < 0:
        return None
    quotes_before = data.count(_QUOTE, 0, end)
    while quotes_before % 2:
        following = data.find(b"\n", end + 1)
        if following < 0:
            return None
        quotes_before += data.count(_QUOTE, end, following)
        end = following
    return end + 1


def _as_schema(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``frame`` with the job's columns and types (one of several files may type a column apart
    from the first, which the job's schema comes from)."""
    if frame.schema == schema:
        return frame
    return frame.select(list(schema)).cast(schema)
