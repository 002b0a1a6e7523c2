"""Table formats, told by file extension: what Enrich reads and writes."""

from __future__ import annotations

from service.errors import InputError
from service.storage.locations import TableLocation

FORMATS = {".parquet": "parquet", ".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}


def input_format(path: TableLocation) -> str:
    """The format of ``path`` from its extension; ``InputError`` for one Enrich does not read."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: unknown input format {path.suffix!r} (use .parquet, .csv, .ndjson or .jsonl)"
        )
    return fmt


def output_format(path: TableLocation) -> str:
    """The output format from the extension; ``InputError`` for one Enrich does not write."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown output format {path.suffix!r} (use .parquet, .csv or .ndjson)")
    return fmt
