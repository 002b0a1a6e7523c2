"""The endpoint's bodies: JSON rows and Arrow streams in and out, every bad body refused by name."""

from __future__ import annotations

import json

import orjson
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enrich.online.bodies import ARROW, JSON, RefusedError, body_format, encoded, rows_from

KEY = ("ip",)


def arrow_bytes(frame: pl.DataFrame) -> bytes:
    sink = pa.BufferOutputStream()
    table = frame.to_arrow()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def refusal(body: bytes, media: str = JSON) -> RefusedError:
    with pytest.raises(RefusedError) as refused:
        rows_from(body, media, KEY)
    return refused.value


def test_json_rows_keep_their_order_and_columns() -> None:
    body = orjson.dumps({"rows": [{"ip": "b", "n": 1}, {"ip": "a", "n": 2}, {"ip": None, "n": 3}]})
    frame = rows_from(body, JSON, KEY)
    assert frame.to_dicts() == [{"ip": "b", "n": 1}, {"ip": "a", "n": 2}, {"ip": None, "n": 3}]


def test_json_out_wraps_the_rows() -> None:
    frame = pl.DataFrame({"ip": ["a"], "country": [None]}, schema={"ip": pl.String, "country": pl.String})
    assert orjson.loads(encoded(frame, JSON)) == {"rows": [{"ip": "a", "country": None}]}
    assert orjson.loads(encoded(pl.DataFrame(), JSON)) == {"rows": []}


def test_arrow_round_trip_keeps_types() -> None:
    frame = pl.DataFrame({"ip": ["a", None], "n": [1, 2]}, schema={"ip": pl.String, "n": pl.Int16})
    assert rows_from(arrow_bytes(frame), ARROW, KEY).equals(frame)
    back = pa.ipc.open_stream(encoded(frame, ARROW)).read_all()
    assert pl.from_arrow(back).equals(frame)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, '{"rows": [{...}, ...]}'),
        (b'{"rows": {"ip": "a"}}', 400, '{"rows": [{...}, ...]}'),
        (b'{"rows": [{"ip": "a"}, 7]}', 400, "rows[1]: a row is a JSON object, not int"),
        (b'{"rows": [{"ip": "a"}, {"n": 1}]}', 422, "rows[1]: no key column 'ip'"),
        (b'{"rows": [{"ip": "a", "n": 1}, {"ip": "b", "n": {"deep": [1]}}]}', 400, "rows: the values"),
    ],
)
def test_bad_json_bodies_are_refused_by_name(body: bytes, status: int, names: str) -> None:
    refused = refusal(body)
    assert refused.status == status
    assert names in refused.message


def test_a_body_that_is_not_an_arrow_stream_is_refused() -> None:
    refused = refusal(b"garbage", ARROW)
    assert refused.status == 400
    assert "not an Arrow IPC stream" in refused.message


@pytest.mark.parametrize(
    ("header", "media"),
    [(None, JSON), ("application/json; charset=utf-8", JSON), ("Application/Vnd.Apache.Arrow.Stream", ARROW)],
)
def test_content_types(header: str | None, media: str) -> None:
    assert body_format(header) == media


def test_another_content_type_is_refused_with_the_ones_taken() -> None:
    with pytest.raises(RefusedError) as refused:
        body_format("application/x-www-form-urlencoded")
    assert refused.value.status == 415
    assert JSON in refused.value.message
    assert ARROW in refused.value.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12,
)


@given(st.one_of(json_values, st.fixed_dictionaries({"rows": st.lists(json_values, max_size=4)})))
def test_any_json_document_makes_rows_or_a_refusal(document: object) -> None:
    """Whatever a caller sends: a frame or a 4xx naming the problem, never another exception."""
    body = json.dumps(document).encode()  # any JSON: integers past 64 bits, NaN
    refusals: list[RefusedError] = []
    try:
        rows_from(body, JSON, KEY)
    except RefusedError as refused:
        refusals.append(refused)
    assert all(400 <= refused.status < 500 and refused.message for refused in refusals)
