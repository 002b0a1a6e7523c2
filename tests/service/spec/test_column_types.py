"""Column types as a spec writes them: scalars, list[T], struct{name: T, ...}; canonical text,
and mistakes named."""

from __future__ import annotations

import re

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


HOW = " (a type is str, i64, f64, bool, date, timestamp, json, list[TYPE] or struct{name: TYPE, ...})"


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("", "empty in type ''"),
        ("   ", "empty in type '   '"),
        ("list", "expected '[' at the end in type 'list'"),
        ("list[", "expected a type at the end in type 'list['"),
        ("list[str", "expected ']' at the end in type 'list[str'"),
        ("list(str)", "unexpected '(' in type 'list(str)'"),
        ("struct", "expected '{' at the end in type 'struct'"),
        ("struct{", "a struct needs fields in type 'struct{'"),
        ("struct{}", "expected a field name at '}' in type 'struct{}'"),
        ("struct{a: str, a: i64}", "field 'a' is declared twice in type 'struct{a: str, a: i64}'"),
        ("struct{a str}", "expected ':' at 'str' in type 'struct{a str}'"),
        ("struct{a: str", "expected '}' at the end in type 'struct{a: str'"),
        ("struct{a: str,}", "expected a field name at '}' in type 'struct{a: str,}'"),
        ("map[str]", "expected a type at 'map' in type 'map[str]'"),
        ("str extra", "unexpected 'extra' after the type in type 'str extra'"),
        ("list<str>", "unexpected '<' in type 'list<str>'"),
        ("struct{a: list[str}", "expected ']' at '}' in type 'struct{a: list[str}'"),
    ],
)
def test_mistakes_name_the_problem(written: str, problem: str) -> None:
    """Each mistake is a ValueError saying what is wrong, where, and what a type looks like."""
    with pytest.raises(ValueError, match=f"^{re.escape(problem + HOW)}$"):
        parse_column_type(written)


def test_nesting_is_bounded() -> None:
    """32 levels of lists and structs read; 33 are refused (a spec cannot exhaust the stack)."""
    deep = "list[" * 16 + "struct{a: " * 16 + "str" + "}" * 16 + "]" * 16
    assert str(parse_column_type(deep)) == deep
    deeper = "list[" + deep + "]"
    with pytest.raises(
        ValueError, match=f"^{re.escape(f'nested deeper than 32 levels in type {deeper!r}' + HOW)}$"
    ):
        parse_column_type(deeper)


def test_field_names_may_start_with_an_underscore_or_be_quoted() -> None:
    """An identifier (``_id``, ``a1`` too) or any text in double quotes names a field."""
    assert (
        str(parse_column_type('struct{_id: i64, a1: bool, "a b": str}'))
        == "struct{_id: i64, a1: bool, a b: str}"
    )


def test_a_bad_type_in_a_spec_names_its_column() -> None:
    """In a spec, the error names the column's type field."""
    with pytest.raises(SpecError, match=r"output\.columns\.city\.type: .*expected ':'"):
        make_spec('[output.columns]\ncity = { path = "city", type = "struct{name str}" }\n')
