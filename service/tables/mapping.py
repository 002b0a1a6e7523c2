"""From JSON answers to typed columns: pure, one compiled JMESPath per column.

A missing path gives null. A value that cannot be converted to the column's type gives null in that
column and a ``mapping`` error for the row, naming the column, never a crash.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jmespath.exceptions
import orjson
import polars as pl

from service.redact import shorten
from service.spec import ColumnType, OutputColumn
from service.spec.templates import value_text

_INT = re.compile(r"^\s*[+-]?\d+\s*$")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1

POLARS_TYPES: dict[ColumnType, pl.DataType] = {
    "str": pl.String(),
    "i64": pl.Int64(),
    "f64": pl.Float64(),
    "bool": pl.Boolean(),
    "timestamp": pl.Datetime("us", "UTC"),
    "json": pl.String(),
}


class _UnconvertibleError(Exception):
    pass


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return value_text(value)
    if isinstance(value, int | float):
        return orjson.dumps(value).decode()
    raise _UnconvertibleError


def _to_i64(value: Any) -> int:
    if isinstance(value, bool):
        raise _UnconvertibleError
    if (isinstance(value, float) and value.is_integer()) or (isinstance(value, str) and _INT.match(value)):
        value = int(value)
    if isinstance(value, int) and _I64_MIN <= value <= _I64_MAX:
        return value
    raise _UnconvertibleError


def _to_f64(value: Any) -> float:
    if isinstance(value, bool):
        raise _UnconvertibleError
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise _UnconvertibleError from None
    raise _UnconvertibleError


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _UnconvertibleError


def _to_timestamp(value: Any) -> dt.datetime:
    if isinstance(value, bool):
        raise _UnconvertibleError
    if isinstance(value, int | float):
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise _UnconvertibleError from None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise _UnconvertibleError from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    raise _UnconvertibleError


def _to_json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson writes 64-bit integers and 254 levels of nesting, no more
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        except (RecursionError, ValueError):  # nested deeper than Python's own encoder goes
            raise _UnconvertibleError from None


_CONVERTERS: dict[ColumnType, Callable[[Any], Any]] = {
    "str": _to_str,
    "i64": _to_i64,
    "f64": _to_f64,
    "bool": _to_bool,
    "timestamp": _to_timestamp,
    "json": _to_json,
}


@dataclass(frozen=True, slots=True)
class MappedColumns:
    """Typed columns for a sequence of answers, and the first mapping error of each answer (or None)."""

    columns: dict[str, pl.Series]
    errors: list[str | None]


def _short(value: Any, redact: Callable[[str], str]) -> str:
    try:
        text = _to_json(value)
    except _UnconvertibleError:
        return "(nested too deep to show)"
    return shorten(redact(text), 40)  # redacted whole, then cut: no secret's start left behind


def map_answers(
    answers: Sequence[Any],
    columns: Sequence[OutputColumn],
    present: Sequence[bool],
    redact: Callable[[str], str] = str,
) -> MappedColumns:
    """Evaluate every output column on every answer.

    ``present[i]`` is False where there is no answer (the call failed): that row's columns are null
    and it gets no mapping error. Values shown in error messages go through ``redact`` first.
    """
    errors: list[str | None] = [None] * len(answers)
    result = {column.name: _map_column(column, answers, present, errors, redact) for column in columns}
    return MappedColumns(result, errors)


def _map_column(
    column: OutputColumn,
    answers: Sequence[Any],
    present: Sequence[bool],
    errors: list[str | None],
    redact: Callable[[str], str],
) -> pl.Series:
    """``column``'s values over every answer; each answer's first error goes into ``errors``."""
    convert = _CONVERTERS[column.type]
    search = column.expression.search
    values: list[Any] = []
    append = values.append
    for i, answer in enumerate(answers):
        if not present[i]:
            append(None)
            continue
        try:
            raw = search(answer)
        except (jmespath.exceptions.JMESPathError, RecursionError) as exc:
            append(None)
            if errors[i] is None:
                errors[i] = f"column '{column.name}': {str(exc).splitlines()[0][:80]}"
            continue
        if raw is None:
            append(None)
            continue
        try:
            append(convert(raw))
        except _UnconvertibleError:
            append(None)
            if errors[i] is None:
                got = f"{_kind(raw)} {_short(raw, redact)}"
                errors[i] = f"column '{column.name}': expected {column.type}, got {got}"
    return pl.Series(column.name, values, dtype=POLARS_TYPES[column.type])
