"""Response mapping: every type, nulls for missing paths, per-row mapping errors."""

from __future__ import annotations

import datetime as dt

import polars as pl

from service.redact import Redactor
from service.tables.mapping import map_answers
from tests.helpers import make_spec

SPEC = make_spec(
    """
    [output.columns]
    s = { path = "s", type = "str" }
    i = { path = "i", type = "i64" }
    f = { path = "nested.f", type = "f64" }
    b = { path = "b", type = "bool" }
    t = { path = "t", type = "timestamp" }
    j = { path = "nested", type = "json" }
    """
)


def _map(*answers: object) -> tuple[pl.DataFrame, list[str | None]]:
    mapped = map_answers(list(answers), SPEC.columns, [True] * len(answers))
    return pl.DataFrame(mapped.columns), mapped.errors


def test_every_type_converts() -> None:
    """Values of the right JSON type land in typed columns."""
    frame, errors = _map(
        {"s": "x", "i": 5, "nested": {"f": 1.5}, "b": True, "t": "2024-01-02T03:04:05Z"},
    )
    assert errors == [None]
    assert frame.schema == pl.Schema(
        {
            "s": pl.String,
            "i": pl.Int64,
            "f": pl.Float64,
            "b": pl.Boolean,
            "t": pl.Datetime("us", "UTC"),
            "j": pl.String,
        }
    )
    row = frame.row(0, named=True)
    assert row["s"] == "x"
    assert row["i"] == 5
    assert row["f"] == 1.5
    assert row["b"] is True
    assert row["t"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert row["j"] == '{"f":1.5}'


def test_lenient_conversions() -> None:
    """Numbers in strings, integral floats, epoch timestamps and naive times (as UTC) convert."""
    frame, errors = _map(
        {"s": 12, "i": "42", "nested": {"f": "2.5"}, "b": "false", "t": 0},
        {"s": True, "i": 3.0, "nested": {"f": 7}, "b": "TRUE", "t": "2024-01-02T03:04:05"},
    )
    assert errors == [None, None]
    assert frame["s"].to_list() == ["12", "true"]
    assert frame["i"].to_list() == [42, 3]
    assert frame["f"].to_list() == [2.5, 7.0]
    assert frame["b"].to_list() == [False, True]
    assert frame["t"].to_list() == [
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    ]


def test_missing_paths_give_null_without_error() -> None:
    """An absent field, or a null answer, is null and not an error."""
    frame, errors = _map({}, None, {"nested": None})
    assert errors == [None, None, None]
    assert frame.null_count().row(0) == (3, 3, 3, 3, 3, 3)


def test_unconvertible_value_is_a_mapping_error_naming_the_column() -> None:
    """A value of the wrong shape nulls that column and reports the column, the type, the value."""
    frame, errors = _map(
        {"s": "ok", "i": "abc"},
        {"s": {"obj": 1}},
        {"b": 1},
        {"t": "yesterday"},
        {"i": 1.5},
        {"i": 2**70},
        {"i": True},
    )
    assert errors[0] == "column 'i': expected i64, got string \"abc\""
    assert errors[1] == "column 's': expected str, got object {\"obj\":1}"
    assert errors[2] is not None
    assert errors[2].startswith("column 'b': expected bool")
    assert errors[3] is not None
    assert errors[3].startswith("column 't': expected timestamp")
    assert all(e is not None and e.startswith("column 'i'") for e in errors[4:])
    assert frame["s"][0] == "ok"
    assert frame["i"].null_count() == 7


def test_absent_answers_are_null_and_not_errors() -> None:
    """Rows whose call failed are skipped by the mapper."""
    mapped = map_answers([{"s": "x"}, {"i": "bad"}], SPEC.columns, [True, False])
    assert mapped.errors == [None, None]
    assert mapped.columns["s"].to_list() == ["x", None]


def test_a_value_shown_in_a_mapping_error_is_redacted_before_it_is_cut() -> None:
    """A secret straddling the 40-character cut of the value shown leaves none of itself behind."""
    secret = "sk-" + "q" * 30
    spec = make_spec('[output.columns]\nn = { path = "n", type = "i64" }\n')
    value = "z" * 30 + secret
    mapped = map_answers([{"n": value}], spec.columns, [True], Redactor([secret]))
    expected = "column 'n': expected i64, got string \"" + "z" * 30 + '***"'
    assert mapped.errors[0] == expected
