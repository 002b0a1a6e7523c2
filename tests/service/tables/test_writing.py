"""Writing OUT: Parquet row groups bounded by bytes as well as rows (writing holds one group)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from service.tables.writing import PARQUET_ROW_GROUP_BYTES, write_frames_atomically


def test_wide_rows_make_smaller_row_groups_not_a_bigger_buffer(tmp_path: Path) -> None:
    """30 frames of 1,000 rows of a 2 KB payload (60 MB): row groups of about 16 MB each, every
    row kept in order; narrow rows fill 128k-row groups."""
    frames = [
        pl.DataFrame({"i": range(start, start + 1000), "payload": ["x" * 2000] * 1000})
        for start in range(0, 30_000, 1000)
    ]
    path = tmp_path / "out.parquet"
    write_frames_atomically(frames, frames[0].schema, path)
    metadata = pq.ParquetFile(path).metadata
    groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
    assert len(groups) >= 3
    frame_bytes = frames[0].estimated_size()
    assert all(group.num_rows * 2000 <= PARQUET_ROW_GROUP_BYTES + frame_bytes for group in groups)
    assert pl.read_parquet(path)["i"].to_list() == list(range(30_000))

    narrow = [pl.DataFrame({"i": range(start, start + 10_000)}) for start in range(0, 300_000, 10_000)]
    write_frames_atomically(narrow, narrow[0].schema, path)
    metadata = pq.ParquetFile(path).metadata
    assert metadata.row_group(0).num_rows == 128 * 1024
