"""Lists, structs and dates from answers: typed columns in memory, native in Parquet, JSON values
in NDJSON, JSON text in CSV."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from service import OnThisLoop, run_job
from service.tables.mapping import map_answers
from service.testing.mock_answers import answer_for
from tests.helpers import make_spec

COLUMNS = """
[output.columns]
tags = { path = "tags", type = "list[str]" }
country = { path = "country", type = "struct{iso_code: str, eu: bool}" }
location = { path = "location", type = "struct{lat: f64, lon: f64}" }
day = { path = "seen", type = "date" }
"""


def test_nested_values_map_to_lists_structs_and_dates() -> None:
    """Arrays and objects become lists and structs of the declared types (fields not declared are
    left out, missing ones null); ISO dates and date-times become dates."""
    spec = make_spec(COLUMNS)
    answers = [
        {"tags": ["a", None], "country": {"iso_code": "FR", "eu": True, "extra": 1}, "seen": "2024-03-01"},
        {"tags": [], "country": {"eu": False}, "location": {"lat": 1, "lon": 2.5},
         "seen": "2024-03-01T23:59:59+05:00"},
    ]  # fmt: skip
    mapped = map_answers(answers, spec.columns, [True, True])
    frame = pl.DataFrame(mapped.columns)
    assert mapped.errors == [None, None]
    assert frame.schema == pl.Schema(
        {
            "tags": pl.List(pl.String),
            "country": pl.Struct({"iso_code": pl.String, "eu": pl.Boolean}),
            "location": pl.Struct({"lat": pl.Float64, "lon": pl.Float64}),
            "day": pl.Date,
        }
    )
    assert frame.to_dicts() == [
        {"tags": ["a", None], "country": {"iso_code": "FR", "eu": True}, "location": None,
         "day": dt.date(2024, 3, 1)},
        {"tags": [], "country": {"iso_code": None, "eu": False}, "location": {"lat": 1.0, "lon": 2.5},
         "day": dt.date(2024, 3, 1)},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"tags": "a"}, "column 'tags': expected list[str], got string \"a\""),
        ({"tags": [1, {"x": 1}]}, "column 'tags': expected list[str], got array"),
        ({"country": ["FR"]}, "column 'country': expected struct{iso_code: str, eu: bool}, got array"),
        ({"country": {"eu": "maybe"}}, "column 'country': expected struct{iso_code: str, eu: bool}"),
        ({"seen": 19_000}, "column 'day': expected date, got number 19000"),
        ({"seen": "March 1st"}, "column 'day': expected date, got string"),
    ],
)
def test_a_value_of_another_shape_fails_its_row_naming_the_column(
    answer: dict[str, object], problem: str
) -> None:
    """A value that does not fit the declared shape is a mapping error for that row only."""
    mapped = map_answers([answer, {"tags": ["ok"]}], make_spec(COLUMNS).columns, [True, True])
    assert mapped.errors[0] is not None
    assert mapped.errors[0].startswith(problem)
    assert mapped.errors[1] is None


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.parametrize("suffix", [".parquet", ".ndjson", ".csv"])
async def test_nested_columns_in_every_output_format(tmp_path: Path, server: str, suffix: str) -> None:
    """Against the mock API: Parquet keeps the types, NDJSON writes JSON values, CSV JSON text."""
    keys = [f"n{i}" for i in range(30)]
    source = tmp_path / "in.parquet"
    pl.DataFrame({"k": keys}).write_parquet(source)
    output = tmp_path / f"out{suffix}"
    spec = make_spec(COLUMNS, url=f"{server}/v1/lookup/{{k}}")
    await run_job(source, spec, output, batches=OnThisLoop())
    expected = [_expected(key) for key in keys]
    if suffix == ".parquet":
        written = pl.read_parquet(output)
        assert written.schema["tags"] == pl.List(pl.String)
        assert written.schema["day"] == pl.Date
        assert written.select("tags", "country", "location", "day").to_dicts() == [
            {**row, "day": dt.date.fromisoformat(row["day"])} for row in expected
        ]
    elif suffix == ".ndjson":
        lines = [json.loads(line) for line in output.read_text().splitlines()]
        assert [
            {name: line[name] for name in ("tags", "country", "location", "day")} for line in lines
        ] == expected
    else:
        written = pl.read_csv(output, infer_schema=False)
        for row, want in zip(written.to_dicts(), expected, strict=True):
            assert json.loads(row["tags"]) == want["tags"]
            assert json.loads(row["country"]) == want["country"]
            assert (None if row["location"] is None else json.loads(row["location"])) == want["location"]
            assert row["day"] == want["day"]


def _expected(key: str) -> dict[str, object]:
    doc = answer_for(key)
    return {
        "tags": doc["tags"],
        "country": doc["country"],
        "location": doc.get("location"),
        "day": doc["seen"][:10],
    }
