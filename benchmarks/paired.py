"""Figures measured in rounds, each round with and without what is measured: each figure's median,
and the median of the round-by-round differences (a slow round slows both sides: its drift cancels).
A round's figures are a dataclass of floats."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any, TypeVar

Figures = TypeVar("Figures")


def medians(rounds: Sequence[Figures]) -> Figures:
    """Each figure's median over ``rounds``."""
    kind: Any = type(rounds[0])
    names = [field.name for field in dataclasses.fields(kind)]
    result: Figures = kind(*(statistics.median(getattr(each, name) for each in rounds) for name in names))
    return result


def difference(minuend: Figures, subtrahend: Figures) -> Figures:
    """Each figure of ``minuend`` less the same of ``subtrahend``."""
    kind: Any = type(minuend)
    names = [field.name for field in dataclasses.fields(kind)]
    result: Figures = kind(*(getattr(minuend, name) - getattr(subtrahend, name) for name in names))
    return result


def paired_differences(with_it: Sequence[Figures], without: Sequence[Figures]) -> Figures:
    """The median, figure by figure, of each round's ``with_it`` less its ``without``."""
    return medians([difference(each, other) for each, other in zip(with_it, without, strict=True)])
