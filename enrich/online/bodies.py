"""Request and response bodies of the online endpoint: JSON rows or an Arrow IPC stream in, the
same format out. Pure: bytes to a frame and back, or a ``RefusedError`` naming what is wrong."""

from __future__ import annotations

from typing import Any

import orjson
import polars as pl
import pyarrow as pa

JSON = "application/json"
ARROW = "application/vnd.apache.arrow.stream"
FORMATS = (JSON, ARROW)


class RefusedError(Exception):
    """A request the endpoint does not answer with rows: its HTTP status and a message for the
    caller (4xx: the request's fault; 503: busy or shutting down; 500: the server's)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def body_format(content_type: str | None) -> str:
    """Which of ``FORMATS`` a ``Content-Type`` header names (parameters ignored); JSON if none."""
    media = (content_type or JSON).split(";", 1)[0].strip().lower()
    if media not in FORMATS:
        raise RefusedError(415, f"Content-Type {media!r} is not one of {', '.join(FORMATS)}")
    return media


def rows_from(body: bytes, media: str, key: tuple[str, ...]) -> pl.DataFrame:
    """The rows a request body holds; every JSON row must name every ``key`` column (a null value
    is a row of its own that fails as ``invalid_key``; a missing one is the caller's mistake)."""
    return _json_rows(body, key) if media == JSON else _arrow_rows(body)


def _json_rows(body: bytes, key: tuple[str, ...]) -> pl.DataFrame:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RefusedError(400, f"the body is not JSON: {exc}") from None
    rows = document.get("rows") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise RefusedError(400, 'the body must be a JSON object {"rows": [{...}, ...]}')
    for index, row in enumerate(rows):
        _check_row(index, row, key)
    if not rows:
        return pl.DataFrame()
    try:
        return pl.from_dicts(rows, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError) as exc:
        raise RefusedError(400, f"rows: the values do not make a table: {_first_line(exc)}") from None


def _check_row(index: int, row: Any, key: tuple[str, ...]) -> None:
    if not isinstance(row, dict):
        raise RefusedError(400, f"rows[{index}]: a row is a JSON object, not {type(row).__name__}")
    missing = [name for name in key if name not in row]
    if missing:
        raise RefusedError(422, f"rows[{index}]: no key column {', '.join(map(repr, missing))}")


def _arrow_rows(body: bytes) -> pl.DataFrame:
    try:
        table = pa.ipc.open_stream(body).read_all()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise RefusedError(400, f"the body is not an Arrow IPC stream: {_first_line(exc)}") from None
    try:
        frame = pl.from_arrow(table)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise RefusedError(400, f"the Arrow stream's columns cannot be read: {_first_line(exc)}") from None
    assert isinstance(frame, pl.DataFrame)  # a table, not a single array
    return frame


def encoded(frame: pl.DataFrame, media: str) -> bytes:
    """``frame`` as a response body in ``media``: ``{"rows": [...]}`` or an Arrow IPC stream."""
    if media == JSON:
        return b'{"rows":' + (frame.write_json().encode() if frame.width else b"[]") + b"}"
    sink = pa.BufferOutputStream()
    table = frame.to_arrow()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def error_body(message: str) -> bytes:
    """The JSON body of a refused request."""
    return orjson.dumps({"error": message})


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
