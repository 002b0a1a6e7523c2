"""The dotted-field fast path gives exactly what JMESPath gives."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest

from service.spec.answer_paths import FieldPath, compile_path

DOCUMENTS: list[Any] = [
    {"a": {"b": {"c": 1}}},
    {"a": {"b": None}},
    {"a": {"b": [1, 2]}},
    {"a": "text"},
    {"a": 3},
    {"a": {"b": {"c": {"d": False}}}},
    {"x": 1},
    [1, 2],
    "text",
    None,
    {"a": {"b": {"c": 0}}},
]


@pytest.mark.parametrize("path", ["a", "a.b", "a.b.c", "a.b.c.d", "x", "_under.score9"])
def test_fast_path_matches_jmespath(path: str) -> None:
    """For plain dotted paths the fast path and JMESPath agree on every document shape."""
    fast = compile_path(path)
    assert isinstance(fast, FieldPath)
    reference = jmespath.compile(path)
    for document in DOCUMENTS:
        assert fast.search(document) == reference.search(document), (path, document)


@pytest.mark.parametrize("path", ["a[0]", "a.b[*].c", "length(a)", '"quoted key".b', "a || b", "@"])
def test_other_paths_use_jmespath(path: str) -> None:
    """Anything beyond plain field names is compiled by JMESPath."""
    assert not isinstance(compile_path(path), FieldPath)


@pytest.mark.parametrize("path", ["a", "a.b", "a.b.c"])
def test_a_fast_path_survives_pickling(path: str) -> None:
    """A spec goes to other processes (Dask workers) pickled: its paths still search there."""
    import pickle

    copy = pickle.loads(pickle.dumps(compile_path(path)))
    assert [copy.search(document) for document in DOCUMENTS] == [
        jmespath.search(path, document) for document in DOCUMENTS
    ]
