"""Telling object-storage URLs from paths, and matching keys against globs (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import InputError
from service.storage.locations import ObjectLocation, key_matches, literal_prefix, table_location


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("s3://bucket/in/a.parquet", ObjectLocation("s3", "bucket", "in/a.parquet")),
        ("S3://bucket/in/", ObjectLocation("s3", "bucket", "in/")),
        # What pathlib makes of a URL (Path("s3://b/k") is s3:/b/k): still the object.
        (Path("gs://bucket/out.csv"), ObjectLocation("gs", "bucket", "out.csv")),
        ("az://container", ObjectLocation("az", "container", "")),
        ("data/in.parquet", Path("data/in.parquet")),
        ("/abs/in.csv", Path("/abs/in.csv")),
    ],
)
def test_a_location_is_a_path_or_an_object(given: str | Path, expected: object) -> None:
    assert table_location(given) == expected


def test_an_object_location_names_itself_as_a_url() -> None:
    location = table_location("s3://bucket/in/a.parquet")
    assert isinstance(location, ObjectLocation)
    assert (str(location), location.name, location.suffix) == (
        "s3://bucket/in/a.parquet",
        "a.parquet",
        ".parquet",
    )


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ("http://host/in.parquet", "http://host/in.parquet: Enrich reads and writes local paths and object"),
        ("s3://", "s3://: no bucket named (write s3://BUCKET/KEY)"),
    ],
)
def test_a_url_enrich_cannot_use_is_named(given: str, needle: str) -> None:
    with pytest.raises(InputError, match=r"^--output ") as raised:
        table_location(given, "--output ")
    assert needle in str(raised.value)


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("in/part-*.parquet", "in/part-0.parquet", True),
        ("in/part-*.parquet", "in/sub/part-0.parquet", False),  # * stays in its segment
        ("in/*/p.parquet", "in/a/p.parquet", True),
        ("in/p?.parquet", "in/p10.parquet", False),
        ("in/p[0-9].parquet", "in/p7.parquet", True),
    ],
)
def test_a_glob_matches_keys_segment_by_segment(pattern: str, key: str, matches: bool) -> None:
    assert key_matches(pattern, key) is matches


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [("in/part-*.parquet", "in/"), ("*.parquet", ""), ("a/b/c?/d/*.csv", "a/b/"), ("x/[ab].parquet", "x/")],
)
def test_a_glob_is_listed_from_its_literal_prefix(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix
