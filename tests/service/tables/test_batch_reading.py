"""Reading an input batch by batch: the same rows as reading it whole, in exact batches, read a
piece at a time (CSV records split only between records, whatever the block size)."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import InputError
from service.tables.batch_reading import iter_batches, rebatched, record_blocks

_ROWS = pl.DataFrame(
    {
        "row": range(2500),
        "k": [f"k{i % 70}" for i in range(2500)],
        "note": [None if i % 9 == 0 else f'line {i}, "quoted"\nand more' for i in range(2500)],
    }
)
_SCANS = {"parquet": pl.scan_parquet, "csv": pl.scan_csv, "ndjson": pl.scan_ndjson}


def _written(tmp_path: Path, fmt: str, frame: pl.DataFrame = _ROWS, name: str = "in") -> Path:
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "parquet":
        frame.write_parquet(path, row_group_size=300)
    elif fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_ndjson(path)
    return path


@pytest.mark.parametrize("fmt", list(_SCANS))
@pytest.mark.parametrize("block_bytes", [64, 10_000, 8 * 1024**2])
def test_every_format_reads_back_whole_in_exact_batches(tmp_path: Path, fmt: str, block_bytes: int) -> None:
    """Batches of exactly the batch size (the last shorter) that join back into what a whole
    read of the file gives, records with quotes and line breaks included."""
    path = _written(tmp_path, fmt)
    whole = _SCANS[fmt](path).collect()
    batches = list(iter_batches([path], whole.schema, 1000, block_bytes=block_bytes))
    assert [batch.height for batch in batches] == [1000, 1000, 500]
    assert pl.concat(batches).equals(whole)


@pytest.mark.parametrize("fmt", list(_SCANS))
def test_a_limit_stops_the_reading_at_that_row(tmp_path: Path, fmt: str) -> None:
    path = _written(tmp_path, fmt)
    whole = _SCANS[fmt](path).collect()
    batches = list(iter_batches([path], whole.schema, 1000, limit=1500, block_bytes=64))
    assert [batch.height for batch in batches] == [1000, 500]
    assert pl.concat(batches).equals(whole.head(1500))


def test_parquet_files_are_read_one_after_another_into_the_same_batches(tmp_path: Path) -> None:
    """A batch spans two files where one ends: batch N holds the same rows however the input is
    split into files."""
    first = _written(tmp_path, "parquet", _ROWS.head(1700), "a")
    second = _written(tmp_path, "parquet", _ROWS.slice(1700), "b")
    batches = list(iter_batches([first, second], _ROWS.schema, 1000))
    assert [batch.height for batch in batches] == [1000, 1000, 500]
    assert pl.concat(batches).equals(_ROWS)


def test_columns_pyarrow_types_apart_come_in_the_scans_types(tmp_path: Path) -> None:
    """A dictionary-encoded string column (as pandas writes a category) reads as the scan has
    it, so every batch has the job's schema."""
    path = tmp_path / "in.parquet"
    frame = pl.DataFrame({"k": ["a", "b", "a"]}, schema={"k": pl.Categorical})
    frame.write_parquet(path)
    schema = pl.scan_parquet(path).collect_schema()
    (batch,) = iter_batches([path], pl.Schema({"k": pl.String}), 10)
    assert batch.schema == pl.Schema({"k": pl.String})
    assert batch["k"].to_list() == ["a", "b", "a"]
    assert next(iter(iter_batches([path], schema, 10))).schema == schema


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    cells=st.lists(
        st.tuples(st.none() | st.text(alphabet='ab ,"\n\ré', max_size=12), st.integers(-5, 5)),
        min_size=1,
        max_size=25,
    ),
    block_bytes=st.integers(1, 40),
    crlf=st.booleans(),
)
def test_csv_blocks_end_between_records_whatever_the_fields_hold(
    cells: list[tuple[str | None, int]], block_bytes: int, crlf: bool
) -> None:
    """Quotes, doubled quotes, commas and line breaks (LF or CRLF) inside fields: read in blocks
    of any size, the rows are those of a whole read."""
    frame = pl.DataFrame(cells, schema={"text": pl.String, "n": pl.Int64}, orient="row")
    data = frame.write_csv(line_terminator="\r\n" if crlf else "\n").encode()
    blocks = list(record_blocks(io.BytesIO(data), block_bytes, csv=True))
    assert b"".join(blocks) == data
    header, *records = blocks
    assert header == data[: len(header)]
    assert header.rstrip(b"\r\n") == b"text,n"
    rows = [pl.read_csv(io.BytesIO(block), has_header=False, schema=frame.schema) for block in records]
    assert pl.concat(rows).equals(pl.read_csv(io.BytesIO(data), schema=frame.schema))


def test_an_ndjson_record_longer_than_a_block_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_text('{"k": "a"}\n\n{"k": "' + "b" * 500 + '"}\n\n\n{"k": "c"}')  # no final line break
    schema = pl.Schema({"k": pl.String})
    (batch,) = iter_batches([path], schema, 10, block_bytes=16)
    assert batch["k"].to_list() == ["a", "b" * 500, "c"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("in.csv", "k,n\n" + "".join(f"k{i},{i}\n" for i in range(300)) + "k300,not a number\n"),
        ("in.ndjson", "".join(f'{{"k": "k{i}"}}\n' for i in range(300)) + '{"k": "unterminated\n'),
    ],
)
def test_a_file_bad_past_what_the_scan_looked_at_is_named(tmp_path: Path, name: str, text: str) -> None:
    """A row the scan's look at the file did not reach and that does not parse: ``InputError``
    naming the file, raised when its batch is read."""
    path = tmp_path / name
    path.write_text(text)
    schema = (
        pl.Schema({"k": pl.String, "n": pl.Int64}) if name.endswith("csv") else pl.Schema({"k": pl.String})
    )
    with pytest.raises(InputError, match=rf"{name}: cannot read: "):
        list(iter_batches([path], schema, 100, block_bytes=256))


@given(
    heights=st.lists(st.integers(0, 30), max_size=12),
    batch_size=st.integers(1, 25),
    limit=st.none() | st.integers(0, 200),
)
def test_rebatching_keeps_rows_and_order_in_exact_batches(
    heights: list[int], batch_size: int, limit: int | None
) -> None:
    start = 0
    pieces = []
    for height in heights:
        pieces.append(pl.DataFrame({"i": range(start, start + height)}))
        start += height
    batches = list(rebatched(pieces, batch_size, limit))
    expected = list(range(start if limit is None else min(start, limit)))
    assert [i for batch in batches for i in batch["i"]] == expected
    assert all(batch.height == batch_size for batch in batches[:-1])
    assert all(0 < batch.height <= batch_size for batch in batches)


def test_a_csv_header_holding_a_quoted_line_break_is_one_record(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b'"first\nname",n\r\n"x\r\ny",1\r\nz,2')
    whole = pl.scan_csv(path).collect()
    assert whole.columns == ["first\nname", "n"]
    (batch,) = iter_batches([path], whole.schema, 10, block_bytes=3)
    assert batch.equals(whole)
