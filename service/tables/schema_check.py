"""Checking an input's columns against a spec before any request is made."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from service.errors import InputError
from service.spec import RESERVED_PREFIX, Spec

_USABLE_KEY_TYPES = (
    pl.String, pl.Categorical, pl.Enum, pl.Boolean, pl.Date, pl.Datetime, pl.Time,
    pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
    pl.Float32, pl.Float64, pl.Decimal,
)  # fmt: skip


def check_schema(schema: Mapping[str, pl.DataType], spec: Spec) -> None:
    """Raise ``InputError`` naming the problem if an input with ``schema`` cannot be enriched."""
    columns = list(schema)
    for name in spec.key:
        if name not in schema:
            raise InputError(f"input.key column '{name}' is not in the input (columns: {_listing(columns)})")
        dtype = schema[name]
        if not isinstance(dtype, _USABLE_KEY_TYPES) and dtype not in _USABLE_KEY_TYPES:
            raise InputError(
                f"input.key column '{name}' has type {dtype}, which cannot be put in a request "
                "(use a string, number, boolean or date column)"
            )
    for name in spec.output_names:
        if name in schema:
            raise InputError(
                f"output column '{name}' already exists in the input: rename it in [output.columns]"
            )
    for name in columns:
        if name.startswith(RESERVED_PREFIX):
            raise InputError(
                f"input column '{name}' uses the prefix '{RESERVED_PREFIX}', reserved for Enrich's "
                "own columns (is this file already enriched?)"
            )


def _listing(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:20])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > 20 else "")
