"""Small frames find each row's answer through a dict (``SMALL_FRAME_ROWS``), large ones through a
polars join: both give the same rows in the same order, and the same outcome counts."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from service.engine import ERROR, STATUS, _joined, _key_of_each_row, _row_outcomes

KEY = ("k", "n")
floats = st.sampled_from([0.0, -0.0, 1.5, float("nan"), None])
rows = st.lists(
    st.tuples(st.sampled_from(["a", "b", "", None]), floats, st.integers(0, 9)), min_size=1, max_size=30
)


def answers_for(frame: pl.DataFrame, errors: list[str | None]) -> pl.DataFrame:
    distinct = frame.select(KEY).unique(maintain_order=True)
    picked = [errors[i % len(errors)] for i in range(distinct.height)]
    return distinct.with_columns(
        answer=pl.Series([f"answer {i}" for i in range(distinct.height)], dtype=pl.String),
        **{
            STATUS: pl.Series(["ok" if e is None else "failed" for e in picked], dtype=pl.String),
            ERROR: pl.Series(picked, dtype=pl.String),
        },
    )


@settings(max_examples=200)
@given(rows, st.lists(st.sampled_from([None, "http_4xx", "timeout"]), min_size=1, max_size=4))
def test_the_dict_path_and_the_join_agree(
    values: list[tuple[str | None, float | None, int]], errors: list[str | None]
) -> None:
    frame = pl.DataFrame(values, schema={"k": pl.String, "n": pl.Float64, "row": pl.Int64}, orient="row")
    answers = answers_for(frame, errors)
    keys = answers.select(KEY).rows()
    rows_keys = _key_of_each_row(frame, keys, KEY)
    joined = _joined(frame, answers, KEY, None)
    if rows_keys is not None:
        assert _joined(frame, answers, KEY, rows_keys).equals(joined)
        assert _row_outcomes(joined, answers, rows_keys) == _row_outcomes(joined, answers, None)
    assert joined["row"].to_list() == frame["row"].to_list()


def test_keys_python_cannot_tell_apart_as_polars_does_take_the_join() -> None:
    """NaN is not equal to itself in Python: the dict cannot find it, so the join answers."""
    frame = pl.DataFrame({"k": ["a", "a"], "n": [float("nan"), 1.0]})
    keys = frame.select(KEY).unique(maintain_order=True).rows()
    assert _key_of_each_row(frame, keys, KEY) is None
    same = pl.DataFrame({"k": ["a", "b", "a"], "n": [1.0, 2.0, 1.0]})
    assert _key_of_each_row(same, same.select(KEY).unique(maintain_order=True).rows(), KEY) == [0, 1, 0]
