"""Jobs reading and writing object storage, against a real S3-compatible server (moto's) on
loopback and the mock API."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.to_thread
import polars as pl
import pyarrow.parquet as pq
import pytest

from service import InputError, JobOptions, Spec, load_spec, run_job
from service.jobs.checkpoint import input_identity
from service.jobs.object_state import scratch_dir_for
from service.storage import objects
from service.storage.locations import ObjectLocation
from service.tables import batch_reading
from service.tables.reading import resolve_inputs
from tests.helpers import release_held_keys, server_stats, wait_until, write_lookup_job
from tests.object_store import Bucket

pytestmark = pytest.mark.integration


def put_table(bucket: Bucket, key: str, frame: pl.DataFrame) -> str:
    """``frame`` as the object ``key`` (its format from the extension); its URL."""
    url = bucket.url(key)
    if key.endswith(".parquet"):
        frame.write_parquet(url)
    else:
        objects.put(bucket.location(key), frame.write_csv().encode())
    return url


@pytest.fixture
def spec(tmp_path: Path, server: str) -> Spec:
    """A spec looking each ip up on the mock API."""
    _, spec_path = write_lookup_job(tmp_path, server, [])
    return load_spec(spec_path, environ={})


def keys_frame(count: int, start: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {"row": range(start, start + count), "ip": [f"k{i:04d}" for i in range(start, start + count)]}
    )


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_table_in_a_bucket_is_enriched_into_the_bucket(
    tmp_path: Path, server: str, bucket: Bucket, fmt: str, spec: Spec
) -> None:
    source = put_table(bucket, f"in/table.{fmt}", keys_frame(50))
    output = bucket.url("out/enriched.parquet")
    stats = anyio.run(run_job, source, spec, output, JobOptions(batch_size=20))
    written = pl.read_parquet(output).sort("row")
    assert written["row"].to_list() == list(range(50))
    assert written["country"].null_count() == 0
    assert (stats.rows, stats.rows_ok) == (50, 50)
    assert server_stats(server)["requests"] == 50
    # The job's state (prefix and local working folder) goes once OUT is whole.
    assert bucket.listed("out/") == ["out/enriched.parquet"]
    assert not scratch_dir_for(bucket.location("out/enriched.parquet")).exists()


@pytest.mark.parametrize("named_as", ["in/part-*.parquet", "in/", "in"])
def test_a_glob_or_a_prefix_names_every_parquet_object_under_it(
    tmp_path: Path, server: str, bucket: Bucket, named_as: str, spec: Spec
) -> None:
    for part in range(3):
        put_table(bucket, f"in/part-{part}.parquet", keys_frame(10, start=part * 10))
    put_table(bucket, "in/_SUCCESS.csv", keys_frame(1, start=99))  # not Parquet: not the table's
    put_table(bucket, "in/nested/part-9.parquet", keys_frame(1, start=98))  # deeper: not under it
    output = tmp_path / "out.parquet"  # object storage in, a local file out
    anyio.run(run_job, bucket.url(named_as), spec, output, JobOptions())
    assert sorted(pl.read_parquet(output)["row"].to_list()) == list(range(30))


def test_a_local_table_is_enriched_into_a_bucket(
    tmp_path: Path, server: str, bucket: Bucket, spec: Spec
) -> None:
    source = tmp_path / "in.csv"
    keys_frame(5).write_csv(source)
    output = bucket.url("out.csv")
    anyio.run(run_job, str(source), spec, output, JobOptions())
    assert pl.read_csv(objects.read_bytes(bucket.location("out.csv")))["row"].to_list() == list(range(5))


def test_out_appears_only_when_the_job_is_done(
    tmp_path: Path, server: str, bucket: Bucket, spec: Spec
) -> None:
    """While a batch is held, the finished ones are recorded under OUT.enrich/, and OUT is absent."""
    frame = pl.DataFrame(
        {"row": range(30), "ip": [*(f"k{i}" for i in range(20)), *(f"held-{i}" for i in range(10))]}
    )
    source = put_table(bucket, "in.parquet", frame)
    output = bucket.location("out.parquet")
    options = JobOptions(batch_size=10)

    async def job_then_release() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(run_job, source, spec, output.url, options)
            await anyio.to_thread.run_sync(
                wait_until,
                lambda: len(bucket.listed("out.parquet.enrich/done/")) == 2,
                "two batches recorded",
                30,
            )
            assert objects.info(output) is None
            assert "out.parquet.enrich/manifest.json" in bucket.listed()
            await anyio.to_thread.run_sync(release_held_keys, server)

    anyio.run(job_then_release)
    assert pl.read_parquet(output.url).height == 30
    assert bucket.listed() == ["in.parquet", "out.parquet"]


def test_an_existing_object_is_not_replaced_without_overwrite(
    tmp_path: Path, server: str, bucket: Bucket, spec: Spec
) -> None:
    source = put_table(bucket, "in.parquet", keys_frame(3))
    objects.put(bucket.location("out.parquet"), b"someone's table")
    with pytest.raises(InputError, match=r"--output s3://.*/out.parquet exists: pass --overwrite"):
        anyio.run(run_job, source, spec, bucket.url("out.parquet"), JobOptions())
    anyio.run(run_job, source, spec, bucket.url("out.parquet"), JobOptions(overwrite=True))
    assert pl.read_parquet(bucket.url("out.parquet")).height == 3


@pytest.mark.parametrize(
    ("named_as", "needle"),
    [
        ("in/missing.parquet", "in/missing.parquet: no such object"),
        ("in/", "in/: no .parquet object under this prefix"),
        ("in/*.parquet", "in/*.parquet: no file matches"),
        ("in/table.xlsx", "unknown input format '.xlsx'"),
    ],
)
def test_a_missing_input_object_is_named(
    tmp_path: Path, server: str, bucket: Bucket, named_as: str, needle: str, spec: Spec
) -> None:
    with pytest.raises(InputError, match=needle.replace("*", r"\*").replace(".", r"\.")):
        anyio.run(run_job, bucket.url(named_as), spec, tmp_path / "o.parquet", JobOptions())
    assert server_stats(server)["requests"] == 0


def test_a_changed_input_object_is_a_new_input(
    tmp_path: Path, server: str, bucket: Bucket, spec: Spec
) -> None:
    """State kept from a job whose input object has been replaced since: refused, as for a file."""
    source = put_table(bucket, "in.parquet", keys_frame(4))
    anyio.run(run_job, source, spec, bucket.url("out.parquet"), JobOptions(keep_state=True))
    assert "out.parquet.enrich/manifest.json" in bucket.listed()
    put_table(bucket, "in.parquet", keys_frame(5))
    with pytest.raises(InputError, match="holds the state of a job with a different input"):
        anyio.run(run_job, source, spec, bucket.url("out.parquet"), JobOptions())
    anyio.run(run_job, source, spec, bucket.url("out.parquet"), JobOptions(restart=True))
    assert pl.read_parquet(bucket.url("out.parquet")).height == 5


def test_an_object_location_is_what_run_job_takes_too(
    tmp_path: Path, server: str, bucket: Bucket, spec: Spec
) -> None:
    source = put_table(bucket, "in.parquet", keys_frame(2))
    anyio.run(
        run_job,
        source,
        spec,
        ObjectLocation("s3", bucket.name, "o.ndjson"),
        JobOptions(),
    )
    assert pl.read_ndjson(objects.read_bytes(bucket.location("o.ndjson"))).height == 2


def test_an_object_is_read_a_row_group_at_a_time(bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slice fetches every row group it touches: batches cut from whole groups fetch each once
    (and a group larger than the cap is read in parts, never whole)."""
    frame = keys_frame(3000)
    frame.write_parquet(bucket.url("in.parquet"), row_group_size=1000)
    location = bucket.location("in.parquet")
    pieces = list(batch_reading._pieces([location], frame.schema, 100, batch_reading.BLOCK_BYTES))
    assert [piece.height for piece in pieces] == [1000, 1000, 1000]
    monkeypatch.setattr(batch_reading, "ROW_GROUP_PIECE_ROWS", 400)
    pieces = list(batch_reading._pieces([location], frame.schema, 100, batch_reading.BLOCK_BYTES))
    assert [piece.height for piece in pieces] == [400, 400, 200] * 3
    batches = list(batch_reading.iter_batches([location], frame.schema, 100))
    assert [batch.height for batch in batches] == [100] * 30
    assert pl.concat(batches).equals(frame)


@pytest.mark.parametrize("named_as", ["in/", "in/*.parquet", "in/p-1.parquet"])
def test_an_inputs_identity_comes_from_its_listing_not_a_request_per_object(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch, named_as: str
) -> None:
    """A prefix of 10,000 objects would cost 10,000 HEADs (minutes) before the job starts."""
    for part in range(3):
        put_table(bucket, f"in/p-{part}.parquet", keys_frame(2))
    inputs = resolve_inputs(bucket.url(named_as))

    def no_more_requests(location: ObjectLocation) -> None:
        raise AssertionError(f"a HEAD for {location}")

    monkeypatch.setattr(objects, "info", no_more_requests)
    identity = input_identity(inputs)
    assert len(identity) == (1 if named_as.endswith("1.parquet") else 3)
    assert all(entry["version"] and entry["size"] for entry in identity)


def test_an_object_shorter_than_its_metadata_said_ends_its_reading(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Replaced between its metadata's read and its slices: the reading stops where the rows do
    (the job's fingerprint then refuses to resume it), never loops on empty slices."""
    keys_frame(3000).write_parquet(bucket.url("in.parquet"), row_group_size=1000)
    longer = tmp_path / "longer.parquet"
    keys_frame(4000).write_parquet(longer, row_group_size=1000)
    metadata = pq.read_metadata(longer)
    monkeypatch.setattr(batch_reading.pq, "read_metadata", lambda _file: metadata)
    location = bucket.location("in.parquet")
    pieces = list(batch_reading._pieces([location], keys_frame(1).schema, 100, batch_reading.BLOCK_BYTES))
    assert sum(piece.height for piece in pieces) == 3000
