"""The state of a job whose OUT is in object storage: its record under the prefix ``OUT.enrich/``
beside OUT, so a job killed on one machine resumes from the bucket.

An object is put whole or not at all, and a store has no append, so the journal is one empty
marker object per batch (``done/000000007``), put after the batch's part: a batch is done when
both are there, as with local state (``service.jobs.checkpoint``). The manifest is an object too.

What cannot live in a bucket stays in a local working folder (``scratch_dir_for``): the local
lock, the answer log (SQLite; on another machine a rerun asks again for the batches that were in
flight), and each part between its writing and its upload. One job per OUT across machines is the
lease's (``service.jobs.object_lease``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from service.files import user_cache_home
from service.jobs.checkpoint import JobState, state_dir_for
from service.jobs.object_lease import ObjectLease
from service.storage import objects
from service.storage.locations import ObjectLocation, TableLocation

_DONE = "done/"
_MANIFEST = "manifest.json"
_LEASE = "lock"


def state_prefix_for(output: ObjectLocation) -> ObjectLocation:
    """The prefix holding the record of the job writing ``output``."""
    return output.with_key(output.key + ".enrich/")


def scratch_dir_for(output: ObjectLocation) -> Path:
    """The local working folder of the job writing ``output``: the same one for every run of it on
    this machine (a rerun finds its answer log), in the user's cache folder."""
    base = user_cache_home(os.environ)
    digest = hashlib.sha256(output.url.encode()).hexdigest()[:16]
    return base / "enrich" / "object-storage-jobs" / f"{output.name}-{digest}.enrich"


def state_for(output: TableLocation) -> JobState:
    """The state of the job writing ``output`` (not opened yet)."""
    if isinstance(output, ObjectLocation):
        return ObjectStoreJobState(scratch_dir_for(output), state_prefix_for(output))
    return JobState(state_dir_for(output))


def has_state(output: TableLocation) -> bool:
    """Whether a job writing ``output`` left its state (it was interrupted: a rerun resumes it)."""
    if isinstance(output, ObjectLocation):
        prefix = state_prefix_for(output)
        return objects.info(prefix.with_key(prefix.key + _MANIFEST)) is not None
    return state_dir_for(output).exists()


def discard_state(output: TableLocation) -> None:
    """Delete the state a job writing ``output`` left (it failed for good: the next starts afresh)."""
    if isinstance(output, ObjectLocation):
        objects.delete(objects.listing(state_prefix_for(output)))
        shutil.rmtree(scratch_dir_for(output), ignore_errors=True)
        return
    shutil.rmtree(state_dir_for(output), ignore_errors=True)


class ObjectStoreJobState(JobState):
    """A job's record under ``prefix`` in a bucket; ``directory`` is the local working folder."""

    def __init__(self, directory: Path, prefix: ObjectLocation) -> None:
        super().__init__(directory)
        self.prefix = prefix
        self._lease: ObjectLease | None = None

    def _hold_record(self) -> None:
        """The lease under the prefix: one job per OUT across machines (the local lock covers
        this one)."""
        lease = ObjectLease(self._object(_LEASE), self.output_name)
        lease.acquire()
        self._lease = lease

    def __getstate__(self) -> dict[str, object]:
        return {**super().__getstate__(), "_lease": None}

    def close(self) -> None:
        """Release the lease, then the local lock (the record stays, for a rerun to resume)."""
        try:
            if self._lease is not None:
                self._lease.release()
        finally:
            self._lease = None
            super().close()

    def _object(self, name: str) -> ObjectLocation:
        return self.prefix.with_key(self.prefix.key + name)

    def _remote_part(self, index: int) -> ObjectLocation:
        return self._object(self.part_path(index).name)

    def name_of(self, item: str = "") -> str:
        return self._object(item).url

    @property
    def output_name(self) -> str:
        return self.prefix.url.removesuffix(".enrich/")

    def _read_manifest(self) -> bytes | None:
        return objects.read_bytes(self._object(_MANIFEST))

    def _write_manifest(self, data: bytes) -> None:
        objects.put(self._object(_MANIFEST), data)

    def _read_journal(self) -> set[int]:
        keys = {found.key for found in objects.listing(self.prefix)}
        marked = (
            key[len(self._object(_DONE).key) :] for key in keys if key.startswith(self._object(_DONE).key)
        )
        return {int(name) for name in marked if name.isdigit() and self._remote_part(int(name)).key in keys}

    def _clear(self) -> None:
        super()._clear()
        objects.delete(self._record_objects())

    def _record_objects(self) -> list[ObjectLocation]:
        """Every object under the prefix but the lease (which this job holds)."""
        lease = self._object(_LEASE)
        return [found for found in objects.listing(self.prefix) if found != lease]

    def is_done(self, index: int) -> bool:
        return index in self._done

    def record_done(self, index: int) -> None:
        """Upload batch ``index``'s part, then its marker: from then on it counts as done."""
        if self._lease is not None:
            self._lease.check_held()
        objects.put(self._remote_part(index), self.part_path(index))
        objects.put(self._object(f"{_DONE}{index:09d}"), b"")
        self._done.add(index)
        self.remove_part(index)

    def parts(self) -> list[str]:
        return [self._remote_part(index).url for index in sorted(self._done)]

    def remove(self) -> None:
        objects.delete(self._record_objects())
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)
        self.close()
