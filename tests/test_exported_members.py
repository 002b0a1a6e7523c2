"""Each public front exports exactly what it binds, sorted (httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import importlib
import types

import pytest

FRONTS = ["service", "service.testing", "enrich", "enrich.cli"]
INCLUDED_PRIVATE_MEMBERS = {"__version__"}


def isort_order(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then the rest."""
    if name.isupper() and len(name) > 1:
        return 0, name
    return (1 if name[0].isupper() else 2), name


@pytest.mark.parametrize("front", FRONTS)
def test_all_imports_are_exported(front: str) -> None:
    """``__all__`` lists every public name the front binds (its subpackages aside), in order."""
    module = importlib.import_module(front)
    for lazy in getattr(module, "_HOME_OF", {}):  # a front that loads names on first use (PEP 562)
        getattr(module, lazy)
    members = [
        name
        for name, value in vars(module).items()
        if (not name.startswith("_") or name in INCLUDED_PRIVATE_MEMBERS)
        and not isinstance(value, types.ModuleType)
    ]
    assert module.__all__ == sorted(members, key=isort_order)
