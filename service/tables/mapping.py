"""From JSON answers to typed columns: pure, one compiled JMESPath per column.

A missing path gives null. A value that cannot be converted to the column's type gives null in that
column and a ``mapping`` error for the row, naming the column, never a crash.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jmespath.exceptions
import orjson
import polars as pl

from service.redact import shorten
from service.spec import ColumnKind, ListOf, OutputColumn, Scalar, StructOf
from service.spec.templates import value_text

_INT = re.compile(r"^\s*[+-]?\d+\s*$")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1

_SCALAR_TYPES: dict[str, pl.DataType] = {
    "str": pl.String(),
    "i64": pl.Int64(),
    "f64": pl.Float64(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "timestamp": pl.Datetime("us", "UTC"),
    "json": pl.String(),
}


def polars_type(kind: ColumnKind) -> pl.DataType:
    """The polars type of a column of type ``kind`` (lists and structs nest)."""
    if isinstance(kind, Scalar):
        return _SCALAR_TYPES[kind.name]
    if isinstance(kind, ListOf):
        return pl.List(polars_type(kind.item))
    return pl.Struct({name: polars_type(field) for name, field in kind.fields})


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
    if isinstance(value, int):
        return str(value)  # exact at any size
    if isinstance(value, float):
        return orjson.dumps(value).decode()
    raise _UnconvertibleError


def _to_i64(value: Any) -> int:
    if type(value) is int and _I64_MIN <= value <= _I64_MAX:  # the usual value, at once
        return value
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


def _to_date(value: Any) -> dt.date:
    """A ``YYYY-MM-DD`` text, or an ISO 8601 date-time's date as written (no time zone change):
    numbers are refused, since days and seconds since the epoch look alike."""
    if not isinstance(value, str):
        raise _UnconvertibleError
    try:
        return dt.datetime.fromisoformat(value.strip()).date()  # a date alone reads as its midnight
    except ValueError:
        raise _UnconvertibleError from None


def _to_json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson writes 64-bit integers and 254 levels of nesting, no more
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        except (RecursionError, ValueError):  # nested deeper than Python's own encoder goes
            raise _UnconvertibleError from None


_SCALAR_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": _to_str,
    "i64": _to_i64,
    "f64": _to_f64,
    "bool": _to_bool,
    "date": _to_date,
    "timestamp": _to_timestamp,
    "json": _to_json,
}


def converter_for(kind: ColumnKind) -> Callable[[Any], Any]:
    """What turns a JSON value into a column's value of type ``kind``; ``_UnconvertibleError``
    for a value that is not one (a JSON null anywhere inside stays a null)."""
    if isinstance(kind, Scalar):
        return _SCALAR_CONVERTERS[kind.name]
    if isinstance(kind, ListOf):
        return _list_converter(converter_for(kind.item))
    return _struct_converter(kind)


def _list_converter(item: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    def convert(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise _UnconvertibleError
        return [None if v is None else item(v) for v in value]

    return convert


def _struct_converter(kind: StructOf) -> Callable[[Any], dict[str, Any]]:
    fields = [(name, converter_for(field)) for name, field in kind.fields]

    def convert(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _UnconvertibleError
        converted = {}
        for name, field in fields:
            inner = value.get(name)
            converted[name] = None if inner is None else field(inner)
        return converted

    return convert


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


# orjson keeps integers from -2**63 up to 2**64 exactly; beyond, a float stands for the integer.
_INTEGERS_KEPT = (-(2**63), 2**64)
# An orjson float from 1e18 up, in a json column's text: it may stand for such an integer.
_LARGE_EXPONENT = re.compile(r"e\+?(1[89]|[2-9][0-9]|[0-9]{3})")

ExactAnswer = Callable[[int], Any]  # answer i read again with every number exact (None: unknown)
# One answer's values in the columns' order, and its first mapping error (None: none).
MappedRow = tuple[tuple[Any, ...], str | None]
# A column, how its value is found and converted, and whether a value may be read again exactly.
_Reader = tuple[OutputColumn, Callable[[Any], Any], Callable[[Any], Any], bool]
_SEARCH_ERRORS = (jmespath.exceptions.JMESPathError, RecursionError)


def _search_failure(column: OutputColumn, error: Exception) -> str:
    return f"column '{column.name}': {str(error).splitlines()[0][:80]}"


def _may_have_lost_digits(value: Any, column_type: str, converted: Any) -> bool:
    if type(value) is float:
        return value.is_integer() and not _INTEGERS_KEPT[0] <= value < _INTEGERS_KEPT[1]
    return column_type == "json" and "e" in converted and _LARGE_EXPONENT.search(converted) is not None


class AnswerMapper:
    """The output columns read from one answer at a time, then typed columns of the rows read.

    A job maps each answer as it arrives and lets its parsed document go: a frame in flight then
    holds its answers' bodies and values, not their documents, which are several times a body's
    size in Python objects (docs/architecture.md, "Measured costs").
    """

    def __init__(self, columns: Sequence[OutputColumn], redact: Callable[[str], str] = str) -> None:
        self._columns = tuple(columns)
        # Only text can show lost digits: f64 is a float anyway, i64 refuses a value beyond 64 bits.
        self._readers: tuple[_Reader, ...] = tuple(
            (column, column.expression.search, converter_for(column.kind), column.type in ("str", "json"))
            for column in self._columns
        )
        self._redact = redact
        self.nulls: tuple[None, ...] = (None,) * len(self._columns)

    def row(self, answer: Any, exact: Callable[[], Any] | None = None) -> MappedRow:
        """``answer``'s value in each column, and its first mapping error. A value that may have
        lost digits (an integer beyond 64 bits read as a float) is taken from ``exact()``, the
        answer read again exactly, when that knows it (is not None)."""
        values: list[Any] = []
        append = values.append
        error: str | None = None
        for column, search, convert, recovers in self._readers:
            try:
                raw = search(answer)
            except _SEARCH_ERRORS as exc:
                append(None)
                error = error or _search_failure(column, exc)
                continue
            if raw is None:
                append(None)
                continue
            try:
                converted = convert(raw)
                # A json column's value may hide a lost integer anywhere in it.
                if recovers and exact is not None and (column.type == "json" or type(raw) is float):
                    converted = _exactly(column, raw, converted, exact)
            except _UnconvertibleError:
                append(None)
                error = error or self._conversion_failure(column, raw)
                continue
            append(converted)
        return tuple(values), error

    def rows(self, answers: Sequence[Any]) -> list[MappedRow]:
        """Each of ``answers`` mapped as ``row`` maps it, none read again (a bulk answer's results,
        made exact with their chunk). Column by column: a pass per column over every answer costs
        half what a pass per answer does (docs/architecture.md, "Measured costs")."""
        errors: list[str | None] = [None] * len(answers)
        by_column = [self._column(reader, answers, errors) for reader in self._readers]
        if not by_column:
            return [((), None) for _ in answers]
        return list(zip(zip(*by_column, strict=True), errors, strict=True))

    def _column(self, reader: _Reader, answers: Sequence[Any], errors: list[str | None]) -> list[Any]:
        """One column's values of ``answers``; an answer it fails in gets its error in ``errors``
        (unless an earlier column gave one)."""
        column, search, convert, _ = reader
        try:
            return [None if raw is None else convert(raw) for raw in map(search, answers)]
        except (*_SEARCH_ERRORS, _UnconvertibleError):
            pass  # some answer fails here: each on its own, to know which and why
        # The same steps as row()'s loop, which keeps them inline: it runs once per request.
        values: list[Any] = []
        for index, answer in enumerate(answers):
            try:
                raw = search(answer)
            except _SEARCH_ERRORS as exc:
                values.append(None)
                errors[index] = errors[index] or _search_failure(column, exc)
                continue
            try:
                values.append(None if raw is None else convert(raw))
            except _UnconvertibleError:
                values.append(None)
                errors[index] = errors[index] or self._conversion_failure(column, raw)
        return values

    def _conversion_failure(self, column: OutputColumn, raw: Any) -> str:
        return f"column '{column.name}': expected {column.type}, got {_kind(raw)} {_short(raw, self._redact)}"

    def columns(self, rows: Sequence[tuple[Any, ...]]) -> dict[str, pl.Series]:
        """Typed columns of ``rows`` (``nulls`` for a row without an answer); a column no row
        fills still has its type (a null column would change the output's schema)."""
        by_column = list(zip(*rows, strict=True)) if rows else [()] * len(self._columns)
        return {
            column.name: pl.Series(column.name, values, dtype=polars_type(column.kind))
            for column, values in zip(self._columns, by_column, strict=True)
        }


def map_answers(
    answers: Sequence[Any],
    columns: Sequence[OutputColumn],
    present: Sequence[bool],
    redact: Callable[[str], str] = str,
    exact: ExactAnswer | None = None,
) -> MappedColumns:
    """Evaluate every output column on every answer.

    ``present[i]`` is False where there is no answer (the call failed): that row's columns are null
    and it gets no mapping error. Values shown in error messages go through ``redact`` first. A
    value that may have lost digits (an integer beyond 64 bits read as a float) is taken from
    ``exact(i)`` instead, when it knows answer i exactly.
    """
    mapper = AnswerMapper(columns, redact)
    rows: list[tuple[Any, ...]] = []
    errors: list[str | None] = []
    for i, answer in enumerate(answers):
        if present[i]:
            values, error = mapper.row(answer, None if exact is None else functools.partial(exact, i))
        else:
            values, error = mapper.nulls, None
        rows.append(values)
        errors.append(error)
    return MappedColumns(mapper.columns(rows), errors)


def _exactly(column: OutputColumn, raw: Any, converted: Any, exact: Callable[[], Any]) -> Any:
    """``converted``, or, when ``raw`` may have lost digits and the answer is known exactly, the
    value taken from the exact answer."""
    if not _may_have_lost_digits(raw, column.type, converted):
        return converted
    answer = exact()
    if answer is None:
        return converted
    value = column.expression.search(answer)
    return None if value is None else converter_for(column.kind)(value)
