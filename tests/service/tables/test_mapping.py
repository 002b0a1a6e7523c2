"""Response mapping: every type, nulls for missing paths, per-row mapping errors."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.redact import Redactor
from service.tables.mapping import AnswerMapper, map_answers
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


def _mapped(
    columns: str, *answers: object, exact: dict[int, object] | None = None
) -> tuple[list[object], list[str | None]]:
    spec = make_spec(f"[output.columns]\n{columns}\n")
    found = exact or {}
    mapped = map_answers(list(answers), spec.columns, [True] * len(answers), exact=found.get)
    (series,) = mapped.columns.values()
    return series.to_list(), mapped.errors


@pytest.mark.usefixtures("zone_behind_utc")
def test_the_edges_of_each_type() -> None:
    """i64 takes exactly -2**63 to 2**63-1; a float as text keeps its exponent; epoch seconds and
    naive times are UTC and an offset is converted, whatever the machine's zone (read here five
    hours behind); a date is a date's text or a date-time's date as written."""
    edges = _mapped('v = { path = "v", type = "i64" }', {"v": -(2**63)}, {"v": 2**63 - 1}, {"v": 2**63})[0]
    assert edges == [-(2**63), 2**63 - 1, None]
    assert _mapped('v = { path = "v", type = "str" }', {"v": 2.5}, {"v": 1e20})[0] == ["2.5", "1e+20"]
    stamps = _mapped(
        'v = { path = "v", type = "timestamp" }', {"v": 86400}, {"v": "2024-01-02T03:04:05"},
        {"v": "2024-01-02T03:04:05+02:00"},
    )[0]  # fmt: skip
    utc = dt.UTC
    assert stamps == [
        dt.datetime(1970, 1, 2, tzinfo=utc), dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc),
        dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=utc),
    ]  # fmt: skip
    days, errors = _mapped(
        'v = { path = "v", type = "date" }', {"v": "2024-03-01"}, {"v": "20240301T01"}, {"v": " 2024-03-01 "}
    )
    assert (days, errors) == ([dt.date(2024, 3, 1)] * 3, [None] * 3)


def test_a_json_column_keeps_every_digit_and_character() -> None:
    """An integer beyond 64 bits (which orjson cannot write) and non-ASCII text come out as
    compact JSON, exactly."""
    values, _ = _mapped('v = { path = "v", type = "json" }', {"v": {"big": 2**70, "é": "ü", "l": [1, 2]}})
    assert values == ['{"big":1180591620717411303424,"é":"ü","l":[1,2]}']


def test_a_lost_integer_is_read_again_from_the_exact_answer() -> None:
    """A value orjson read as a float beyond 64 bits (1e20 for 100000000000000000001) is taken
    from the answer read exactly, in str and json columns; an i64 column refuses it; a float that
    is not integral, or within 64 bits, is left as it is."""
    exact = {0: {"v": 100000000000000000001}, 1: {"v": [100000000000000000001]}}
    assert _mapped('v = { path = "v", type = "str" }', {"v": 1e20}, exact=exact)[0] == [
        "100000000000000000001"
    ]
    json_values = _mapped('v = { path = "v", type = "json" }', {"v": 1e20}, {"v": [1e20]}, exact=exact)[0]
    assert json_values == ["100000000000000000001", "[100000000000000000001]"]
    assert _mapped('v = { path = "v", type = "i64" }', {"v": 1e20}, exact=exact)[1][0] == (
        "column 'v': expected i64, got number 1e+20"
    )
    kept = {0: {"v": 7}, 1: {"v": 7}, 2: {"v": 7}}
    left = _mapped('v = { path = "v", type = "str" }', {"v": 2.5}, {"v": 1e3}, {"v": "1e20"}, exact=kept)[0]
    assert left == ["2.5", "1000.0", "1e20"]
    unknown = _mapped('v = { path = "v", type = "str" }', {"v": 1e20}, exact={})[0]
    assert unknown == ["1e+20"]  # no exact answer to read: the float's text


def test_an_expression_failing_on_one_answer_fails_that_row_only() -> None:
    """A JMESPath function meeting a value of another type fails its row (its first line, at most
    80 characters); the next answer is mapped."""
    values, errors = _mapped('v = { path = "abs(n)", type = "f64" }', {"n": "x"}, {"n": -2})
    assert values == [None, 2.0]
    assert errors == [
        "column 'v': In function abs(), invalid type for value: x, expected one of: ['number'], recei",
        None,
    ]


def test_a_mapping_error_shows_the_values_kind_and_a_cut_value() -> None:
    """The message names what came: its JSON kind and its text cut at 40 characters; a value
    nested too deep to write is not shown."""
    deep: object = []
    for _ in range(2000):
        deep = [deep]
    _, errors = _mapped(
        'v = { path = "v", type = "i64" }', {"v": True}, {"v": "y" * 50}, {"v": {"a": 1}}, {"v": deep}
    )
    assert errors == [
        "column 'v': expected i64, got boolean true",
        f"column 'v': expected i64, got string \"{'y' * 36}...",
        "column 'v': expected i64, got object {\"a\":1}",
        "column 'v': expected i64, got array (nested too deep to show)",
    ]


def test_an_absent_answer_before_a_present_one_and_an_empty_column_keeps_its_type() -> None:
    """A row without an answer does not stop the rows after it; a column no answer fills is
    still of its type (a null column would change the output's schema)."""
    spec = make_spec('[output.columns]\nv = { path = "v", type = "str" }\nn = { path = "n", type = "i64" }\n')
    mapped = map_answers([{"v": "skipped"}, {"v": "x"}], spec.columns, [False, True])
    assert mapped.columns["v"].to_list() == [None, "x"]
    assert (mapped.columns["v"].dtype, mapped.columns["n"].dtype) == (pl.String, pl.Int64)


def test_a_value_missing_from_the_exact_answer_is_null() -> None:
    """Read again exactly, the answer no longer holds the value: null, not an error."""
    assert _mapped('v = { path = "v", type = "str" }', {"v": 1e20}, exact={0: {}}) == ([None], [None])


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.sampled_from(["1", " -7 ", "true", "2024-02-29", "2024-02-29T10:00:00+02:00", "x"])
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abn"), inner, max_size=3),
    max_leaves=8,
)
_EVERY_KIND = make_spec(
    """
    [output.columns]
    s = { path = "a", type = "str" }
    i = { path = "b", type = "i64" }
    f = { path = "a.n", type = "f64" }
    b = { path = "b", type = "bool" }
    d = { path = "a", type = "date" }
    t = { path = "n", type = "timestamp" }
    j = { path = "a", type = "json" }
    l = { path = "n", type = "list[i64]" }
    r = { path = "a", type = "struct{n: i64, b: str}" }
    v = { path = "abs(n)", type = "f64" }
    """
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from("abn"), _JSON_VALUES, max_size=3), max_size=6))
def test_answers_mapped_together_are_mapped_as_one_by_one(answers: list[dict[str, object]]) -> None:
    """A bulk answer's results are mapped column by column (``AnswerMapper.rows``): every value
    and every row's first error as mapping each answer alone gives, whatever the values' kinds
    (JMESPath errors, unconvertible values, nulls, integers beyond 64 bits, in any column)."""
    mapper = AnswerMapper(_EVERY_KIND.columns, Redactor(("secret",)))
    assert mapper.rows(answers) == [mapper.row(answer) for answer in answers]
