"""The inbox sweep: outputs never collide, a failed file is filed with its reason, and dropping it
again starts afresh."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.inbox import enrich_inbox
from service import folder_location, make_folder, state_dir_for
from service.storage import objects
from tests.object_store import Bucket

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]


def _spec(tmp_path: Path, url: str) -> Path:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[api]\nurl = "{url}/v1/lookup/{{ip}}"\n[input]\nkey = "ip"\n'
        '[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n'
    )
    return spec


@pytest.mark.asyncio
async def test_files_of_one_name_in_two_formats_get_two_outputs(tmp_path: Path, server: str) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    pl.DataFrame({"ip": ["c1", "c2"]}).write_csv(inbox / "a.csv")
    pl.DataFrame({"ip": ["n1"]}).write_ndjson(inbox / "a.ndjson")
    results = await enrich_inbox(str(inbox), str(outbox), str(_spec(tmp_path, server)))
    assert results == {"a.csv": "done", "a.ndjson": "done"}
    assert pl.read_parquet(outbox / "a.csv.enriched.parquet")["ip"].to_list() == ["c1", "c2"]
    assert pl.read_parquet(outbox / "a.ndjson.enriched.parquet")["ip"].to_list() == ["n1"]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a.csv", "a.ndjson"]


@pytest.mark.asyncio
async def test_a_failed_file_is_filed_with_its_reason_and_a_new_drop_starts_afresh(
    tmp_path: Path, server: str
) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    spec = _spec(tmp_path, server)
    (inbox / "b.csv").write_text("address\nnowhere\n")  # no ip column: the job fails
    assert await enrich_inbox(str(inbox), str(outbox), str(spec)) == {"b.csv": "failed"}
    reason = (inbox / "failed" / "b.csv.reason.txt").read_text()
    assert "input.key column 'ip' is not in the input" in reason
    output = outbox / "b.csv.enriched.parquet"
    # A state left from an earlier, different run of that name (what used to fail every new drop).
    state_dir_for(output).mkdir(exist_ok=True)
    (state_dir_for(output) / "manifest.json").write_text('{"version": 1, "fingerprint": "old"}')
    (inbox / "b.csv").write_text("address\nstill nowhere\n")
    assert await enrich_inbox(str(inbox), str(outbox), str(spec)) == {"b.csv": "failed"}
    assert not state_dir_for(output).exists()  # cleared with the failure
    (inbox / "b.csv").write_text("ip\nb1\n")
    assert await enrich_inbox(str(inbox), str(outbox), str(spec)) == {"b.csv": "done"}
    assert pl.read_parquet(output)["_enrich_status"].to_list() == ["ok"]


@pytest.mark.asyncio
async def test_hidden_and_foreign_files_are_left_alone(tmp_path: Path, server: str) -> None:
    """A hidden file (being written, to be renamed into place) and a file of no table format are
    neither read nor moved; the sweep enriches the rest."""
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    pl.DataFrame({"ip": ["h1"]}).write_csv(inbox / ".half-written.csv")
    (inbox / "notes.txt").write_text("not a table\n")
    pl.DataFrame({"ip": ["v1"]}).write_csv(inbox / "visible.csv")
    results = await enrich_inbox(str(inbox), str(outbox), str(_spec(tmp_path, server)))
    assert results == {"visible.csv": "done"}
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == [".half-written.csv", "notes.txt"]
    assert sorted(p.name for p in outbox.iterdir()) == ["visible.csv.enriched.parquet"]


def test_a_sweep_due_while_one_runs_is_skipped_not_queued() -> None:
    """The served inbox deployment lets one sweep run at a time and cancels a new one that comes
    due meanwhile (Prefect's CANCEL_NEW): a file is swept once, and sweeps never pile up."""
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy

    from flows.serve import _deployments

    _, sweep = _deployments(Path("inbox"), Path("outbox"), Path("spec.toml"), 5, None)
    assert sweep.concurrency_limit == 1
    assert sweep.concurrency_options is not None
    assert sweep.concurrency_options.collision_strategy is ConcurrencyLimitStrategy.CANCEL_NEW
    assert [schedule.schedule.interval.total_seconds() for schedule in sweep.schedules] == [5.0]


@pytest.mark.asyncio
async def test_an_inbox_in_a_bucket_is_swept_as_a_folder_is(
    tmp_path: Path, server: str, bucket: Bucket
) -> None:
    """A prefix as INBOX and OUTBOX: new objects directly in it are enriched into the outbox and
    moved to done/ (or failed/, with the reason beside); hidden, foreign and deeper ones stay."""
    good, bad = pl.DataFrame({"ip": ["s1", "s2"]}), pl.DataFrame({"address": ["nowhere"]})
    for key, frame in (
        ("inbox/a.csv", good),
        ("inbox/b.csv", bad),
        ("inbox/.half.csv", good),
        ("inbox/sub/c.csv", good),
    ):
        objects.put(bucket.location(key), frame.write_csv().encode())
    objects.put(bucket.location("inbox/notes.txt"), b"not a table\n")
    # A state left by an earlier, different run of b's name: cleared with its failure.
    objects.put(bucket.location("outbox/b.csv.enriched.parquet.enrich/manifest.json"), b"{}")
    results = await enrich_inbox(bucket.url("inbox"), bucket.url("outbox/"), str(_spec(tmp_path, server)))
    assert results == {"a.csv": "done", "b.csv": "failed"}
    assert pl.read_parquet(bucket.url("outbox/a.csv.enriched.parquet"))["ip"].to_list() == ["s1", "s2"]
    assert bucket.listed("inbox/") == [
        "inbox/.half.csv", "inbox/done/a.csv", "inbox/failed/b.csv", "inbox/failed/b.csv.reason.txt",
        "inbox/notes.txt", "inbox/sub/c.csv",
    ]  # fmt: skip
    reason = objects.read_bytes(bucket.location("inbox/failed/b.csv.reason.txt")) or b""
    assert "input.key column 'ip' is not in the input" in reason.decode()
    assert bucket.listed("outbox/") == ["outbox/a.csv.enriched.parquet"]  # b's state cleared


def test_a_served_inbox_in_a_bucket_keeps_its_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve's sweep deployment gets the prefixes as URLs (a path would be resolved, and a URL
    mangled into a local folder ``s3:/...``), and says so at start."""
    from flows.serve import _deployments, what_is_served

    monkeypatch.chdir(tmp_path)
    inbox, outbox = folder_location("s3://bucket/inbox"), folder_location("s3://bucket/outbox/")
    make_folder(inbox)
    _, sweep = _deployments(inbox, outbox, Path("spec.toml"), 5, None)
    assert (sweep.parameters["inbox"], sweep.parameters["outbox"]) == (
        "s3://bucket/inbox/",
        "s3://bucket/outbox/",
    )
    said = what_is_served(
        inbox, outbox, Path("spec.toml"), 5, {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, 1
    )
    assert "every 5 s: each new file of s3://bucket/inbox/ into s3://bucket/outbox/" in said[2]
    assert list(tmp_path.iterdir()) == []  # no local folder made for a bucket
