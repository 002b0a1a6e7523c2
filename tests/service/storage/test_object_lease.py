"""One job per OUT in object storage across machines: the lease object, against moto's S3 server."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.to_thread
import polars as pl
import pytest

from service import InputError, JobOptions, load_spec, run_job
from service.jobs import object_lease
from service.jobs.object_lease import LEASE_S, LeaseHolder, ObjectLease, holder_is_gone
from service.storage import objects
from service.storage.locations import ObjectLocation
from tests.helpers import release_held_keys, wait_until, write_lookup_job
from tests.object_store import Bucket

HOST = socket.gethostname()


def running(*pids: int) -> Callable[[int], bool]:
    return lambda pid: pid in pids


@pytest.mark.parametrize(
    ("holder", "gone"),
    [
        (None, True),  # nothing readable: a torn or foreign object
        (LeaseHolder(HOST, 41, "t", 999.0), False),  # on this host, running, renewed
        (LeaseHolder(HOST, 41, "t", 1000.0 - LEASE_S - 1), True),  # running, not renewed: a reused PID
        (LeaseHolder(HOST, 42, "t", 999.0), True),  # on this host, not running: however fresh
        (LeaseHolder("elsewhere", 41, "t", 1000.0 - LEASE_S + 1), False),  # renewed within the lease
        (LeaseHolder("elsewhere", 41, "t", 1000.0 - LEASE_S - 1), True),  # not renewed for too long
    ],
)
def test_a_lease_is_taken_over_only_from_a_holder_that_is_gone(
    holder: LeaseHolder | None, gone: bool
) -> None:
    assert holder_is_gone(holder, 1000.0, HOST, running(41)) is gone


@pytest.mark.parametrize(
    "data", [b"", b"{", b"[]", b'{"host": "h"}', b'{"host": "h", "pid": "x", "token": "t", "renewed_at": 1}']
)
def test_anything_but_a_holder_reads_as_none(data: bytes) -> None:
    assert LeaseHolder.decoded(data) is None


def test_a_held_lease_is_refused_naming_its_holder(bucket: Bucket) -> None:
    first = ObjectLease(bucket.location("out.enrich/lock"), bucket.url("out"))
    first.acquire()
    try:
        with pytest.raises(InputError, match=rf"another enrich job \(pid \d+ on {HOST}\) is writing s3://"):
            ObjectLease(bucket.location("out.enrich/lock"), bucket.url("out")).acquire()
    finally:
        first.release()
    assert bucket.listed() == []
    second = ObjectLease(bucket.location("out.enrich/lock"), bucket.url("out"))
    second.acquire()
    second.release()


def test_a_lease_from_elsewhere_is_taken_over_once_it_expired(bucket: Bucket) -> None:
    lock = bucket.location("out.enrich/lock")
    now = 10_000.0
    objects.put(lock, LeaseHolder("elsewhere", 7, "t", now - LEASE_S / 2).encoded())
    with pytest.raises(InputError, match=r"pid 7 on elsewhere"):
        ObjectLease(lock, "out", clock=lambda: now).acquire()
    objects.put(lock, LeaseHolder("elsewhere", 7, "t", now - LEASE_S - 1).encoded())
    taker = ObjectLease(lock, "out", clock=lambda: now)
    taker.acquire()
    holder = LeaseHolder.decoded(objects.read_bytes(lock) or b"")
    assert holder is not None
    assert (holder.host, holder.renewed_at) == (HOST, now)
    taker.release()


def test_a_killed_holders_lease_on_this_host_is_taken_over_at_once(bucket: Bucket) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock = bucket.location("out.enrich/lock")
    objects.put(lock, LeaseHolder(HOST, int(ended.stdout), "t", 0.0).encoded())
    lease = ObjectLease(lock, "out")
    lease.acquire()
    lease.release()


def test_a_holder_that_lost_its_lease_stops_and_leaves_the_new_holders(bucket: Bucket) -> None:
    lock = bucket.location("out.enrich/lock")
    stalled = ObjectLease(lock, bucket.url("out"))
    stalled.acquire()
    newcomer = LeaseHolder("elsewhere", 9, "t", 0.0).encoded()
    objects.put(lock, newcomer)  # as a job elsewhere does once the lease expired
    stalled.renew()
    with pytest.raises(
        InputError, match=r"another enrich job took over s3://.*: stopped rather than write it twice"
    ):
        stalled.check_held()
    stalled.release()
    assert objects.read_bytes(lock) == newcomer


@pytest.mark.parametrize("machine", ["this one", "another"])
def test_a_second_job_is_refused_while_the_first_runs(
    tmp_path: Path, server: str, bucket: Bucket, monkeypatch: pytest.MonkeyPatch, machine: str
) -> None:
    """A second job on one OUT, on this machine (its local lock) or another (another working
    folder: the lease), stops at once naming the first and its OUT; the first finishes, and leaves
    nothing under the prefix."""
    keys = [*(f"k{i}" for i in range(10)), "held-1"]
    source, spec_path = write_lookup_job(tmp_path, server, keys)
    pl.read_parquet(source).write_parquet(bucket.url("in.parquet"))
    spec = load_spec(spec_path, environ={})
    output = bucket.url("out.parquet")

    async def two_jobs() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(run_job, bucket.url("in.parquet"), spec, output, JobOptions(batch_size=5))
            await anyio.to_thread.run_sync(
                wait_until, lambda: len(bucket.listed("out.parquet.enrich/done/")) == 2, "two batches", 30
            )
            if machine == "another":
                monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "machine-2"))
            where = rf" on {HOST}" if machine == "another" else ""
            with pytest.raises(
                InputError, match=rf"another enrich job \(pid \d+{where}\) is writing {output} "
            ):
                await run_job(bucket.url("in.parquet"), spec, output, JobOptions(batch_size=5))
            await anyio.to_thread.run_sync(release_held_keys, server)

    anyio.run(two_jobs)
    assert pl.read_parquet(output).height == 11
    assert bucket.listed() == ["in.parquet", "out.parquet"]


def test_a_held_lease_is_renewed_until_released(bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    """The renewing thread stamps the lease again (a conditional put on its own ETag), so a job
    running for longer than the lease keeps it; release stops it and deletes the lease."""
    monkeypatch.setattr(object_lease, "RENEW_EVERY_S", 0.01)
    ticks = itertools.count(1000)
    lock = bucket.location("out.enrich/lock")
    lease = ObjectLease(lock, "out", clock=lambda: float(next(ticks)))
    lease.acquire()
    try:
        wait_until(lambda: stamped(lock) >= 1003, "three renewals", 30)
        assert not lease.lost
    finally:
        lease.release()
    assert objects.read_bytes(lock) is None


def stamped(lock: ObjectLocation) -> float:
    holder = LeaseHolder.decoded(objects.read_bytes(lock) or b"")
    return holder.renewed_at if holder is not None else 0.0
