"""Column types as a spec writes them: scalars, list[T], struct{name: T, ...}; canonical text,
and mistakes named."""

from __future__ import annotations

import pytest

from service import SpecError
from service.spec import ListOf, Scalar, StructOf, parse_column_type
from tests.helpers import make_spec


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("string", "str"),
        ("Date", "date"),
        ("list[int]", "list[i64]"),
        ("list[ list [ bool ] ]", "list[list[bool]]"),
        ("struct{name: string, pop: integer}", "struct{name: str, pop: i64}"),
        ('struct{"pop size": f64, tags: list[str], at: struct{day: date}}',
         "struct{pop size: f64, tags: list[str], at: struct{day: date}}"),
    ],
)  # fmt: skip
def test_types_read_as_written_and_print_canonically(written: str, canonical: str) -> None:
    """Aliases, spaces and nesting read; the canonical text is what the spec keeps."""
    assert str(parse_column_type(written)) == canonical


def test_the_tree_says_what_each_level_holds() -> None:
    """A struct's fields keep their order and their own types."""
    assert parse_column_type("struct{a: list[i64], b: date}") == StructOf(
        (("a", ListOf(Scalar("i64"))), ("b", Scalar("date")))
    )


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("", "empty"),
        ("list", "expected '\\['"),
        ("list[str", "expected '\\]'"),
        ("struct{}", "expected a field name at '}'"),
        ("struct{a: str, a: i64}", "field 'a' is declared twice"),
        ("struct{a str}", "expected ':'"),
        ("map[str]", "expected a type at 'map'"),
        ("str extra", "unexpected 'extra' after the type"),
        ("list<str>", "unexpected '<'"),
        ("list[" * 40 + "str" + "]" * 40, "nested deeper than 32 levels"),
    ],
)
def test_mistakes_name_the_problem(written: str, problem: str) -> None:
    """Each mistake is a ValueError saying what is wrong, and what a type looks like."""
    with pytest.raises(ValueError, match=problem) as raised:
        parse_column_type(written)
    assert "list[TYPE] or struct{name: TYPE, ...}" in str(raised.value)


def test_a_bad_type_in_a_spec_names_its_column() -> None:
    """In a spec, the error names the column's type field."""
    with pytest.raises(SpecError, match=r"output\.columns\.city\.type: .*expected ':'"):
        make_spec('[output.columns]\ncity = { path = "city", type = "struct{name str}" }\n')
