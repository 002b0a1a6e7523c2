"""An output column's type as a spec writes it: a scalar (``str``, ``i64``, ``f64``, ``bool``,
``date``, ``timestamp``, ``json``), a ``list[T]`` of any type, or a ``struct{name: T, ...}``
whose fields are declared (so that every batch, and every run, writes the same schema).

    country = { path = "country.iso_code", type = "str" }
    tags    = { path = "tags",             type = "list[str]" }
    city    = { path = "city",             type = "struct{name: str, population: i64}" }

Parsing is pure: text in, a frozen tree out, whose ``str()`` is the canonical text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ScalarName = Literal["str", "i64", "f64", "bool", "date", "timestamp", "json"]

SCALAR_ALIASES: dict[str, ScalarName] = {
    "str": "str", "string": "str", "utf8": "str",
    "i64": "i64", "int": "i64", "int64": "i64", "integer": "i64",
    "f64": "f64", "float": "f64", "float64": "f64", "double": "f64",
    "bool": "bool", "boolean": "bool",
    "date": "date",
    "timestamp": "timestamp", "datetime": "timestamp",
    "json": "json",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Scalar:
    """One value: text, a number, a boolean, a date, a timestamp, or any JSON as text."""

    name: ScalarName

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ListOf:
    """A JSON array, each item of type ``item``."""

    item: ColumnKind

    def __str__(self) -> str:
        return f"list[{self.item}]"


@dataclass(frozen=True, slots=True)
class StructOf:
    """A JSON object's declared fields, each of its type (other fields are left out)."""

    fields: tuple[tuple[str, ColumnKind], ...]

    def __str__(self) -> str:
        return "struct{" + ", ".join(f"{name}: {kind}" for name, kind in self.fields) + "}"


ColumnKind = Scalar | ListOf | StructOf

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<quoted>\"[^\"]*\")|(?P<mark>[\[\]{}:,]))")
_MAX_DEPTH = 32


def parse_column_type(text: str) -> ColumnKind:
    """The type ``text`` names; ``ValueError`` saying what is wrong and what a type looks like."""
    tokens = _tokens(text)
    kind, rest = _parse(tokens, 0, text)
    if rest < len(tokens):
        raise _error(text, f"unexpected {tokens[rest]!r} after the type")
    return kind


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while text[position:].strip():
        found = _TOKEN.match(text, position)
        if found is None:
            raise _error(text, f"unexpected {text[position:].strip()[0]!r}")
        tokens.append(found.group().strip())
        position = found.end()
    if not tokens:
        raise _error(text, "empty")
    return tokens


def _parse(tokens: list[str], at: int, text: str, depth: int = 0) -> tuple[ColumnKind, int]:
    if depth > _MAX_DEPTH:
        raise _error(text, f"nested deeper than {_MAX_DEPTH} levels")
    word = tokens[at].lower() if at < len(tokens) else ""
    if word == "list":
        _expect(tokens, at + 1, "[", text)
        item, at = _parse(tokens, at + 2, text, depth + 1)
        _expect(tokens, at, "]", text)
        return ListOf(item), at + 1
    if word == "struct":
        _expect(tokens, at + 1, "{", text)
        return _parse_fields(tokens, at + 2, text, depth)
    if word in SCALAR_ALIASES:
        return Scalar(SCALAR_ALIASES[word]), at + 1
    shown = repr(tokens[at]) if at < len(tokens) else "the end"
    raise _error(text, f"expected a type at {shown}")


def _parse_fields(tokens: list[str], at: int, text: str, depth: int) -> tuple[StructOf, int]:
    fields: list[tuple[str, ColumnKind]] = []
    while True:
        name = tokens[at] if at < len(tokens) else ""
        if name.startswith('"'):
            name = name[1:-1]
        elif not name[:1].isalpha() and not name.startswith("_"):
            raise _error(text, f"expected a field name at {name!r}" if name else "a struct needs fields")
        if any(name == seen for seen, _ in fields):
            raise _error(text, f"field {name!r} is declared twice")
        _expect(tokens, at + 1, ":", text)
        kind, at = _parse(tokens, at + 2, text, depth + 1)
        fields.append((name, kind))
        if at < len(tokens) and tokens[at] == ",":
            at += 1
            continue
        _expect(tokens, at, "}", text)
        return StructOf(tuple(fields)), at + 1


def _expect(tokens: list[str], at: int, mark: str, text: str) -> None:
    if at >= len(tokens) or tokens[at] != mark:
        found = repr(tokens[at]) if at < len(tokens) else "the end"
        raise _error(text, f"expected {mark!r} at {found}")


def _error(text: str, problem: str) -> ValueError:
    return ValueError(
        f"{problem} in type {text!r} (a type is str, i64, f64, bool, date, timestamp, json, "
        "list[TYPE] or struct{name: TYPE, ...})"
    )
