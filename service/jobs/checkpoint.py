"""A job's state beside its output (``OUT.enrich/``): a lock, a manifest, part files, a done
journal and the answer log.

The lock (``service.jobs.job_lock``) is held for the job's life: one job per OUT.

A batch is done when its part file is written (to a temporary name, flushed, renamed: only whole
parts exist) *and* its index is appended to the journal ``done.log``. A job killed between the
two leaves a part that is not recorded: it is redone and overwritten, never trusted. Running the
job again skips recorded batches. The manifest binds the state to a fingerprint of the input, the spec's
request and output sections, and the batch size; a job with a different fingerprint refuses to
resume unless told to restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import IO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from service.errors import InputError
from service.files import (
    PRIVATE_FILE,
    private_folder,
    replaced_atomically,
    touch_private,
    write_bytes_atomically,
)
from service.jobs.job_lock import hold_job_lock
from service.spec import Spec, digest
from service.storage import objects
from service.storage.locations import ObjectLocation, TableLocation

_MANIFEST = "manifest.json"
_JOURNAL = "done.log"
_ANSWER_LOG = "answers.sqlite"
_LOCK = "lock"
_log = logging.getLogger("enrich.jobs")
_VERSION = 1


def state_dir_for(output: Path) -> Path:
    """Where the state of the job writing ``output`` lives."""
    return output.with_name(output.name + ".enrich")


def input_identity(paths: list[TableLocation]) -> list[dict[str, object]]:
    """Name, size and modification time (an object's: its ETag) of each input file: a change in
    any means a new input."""
    identity: list[dict[str, object]] = []
    for path in paths:
        if isinstance(path, ObjectLocation):
            found = path if path.version is not None else objects.info(path)  # listed: no HEAD
            if found is None:
                raise InputError(f"{path}: no such object (deleted since the job began)")
            identity.append({"path": path.url, "size": found.size, "version": found.version})
            continue
        stat = path.stat()
        identity.append({"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return identity


def fingerprint(inputs: list[TableLocation], spec: Spec, batch_size: int, limit: int | None = None) -> str:
    """A digest of everything a resumed job must share with the interrupted one (a row limit
    only when there is one: the states of jobs without one keep their fingerprint)."""
    identity: dict[str, object] = {
        "inputs": input_identity(inputs),
        "spec": spec.output_identity(),
        "batch_size": batch_size,
    }
    if limit is not None:
        identity["limit"] = limit
    return digest(identity)


class JobState:
    """The state directory of one job."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._done: set[int] = set()
        self._lock: IO[bytes] | None = None
        # How many batches the job has, once it has counted its rows (task runs are named by it).
        self.batches_planned: int | None = None

    def open(self, job_fingerprint: str, *, restart: bool) -> None:
        """Take the job's lock, then create the state, or check that the existing one belongs to
        this job. ``InputError`` when another job holds the lock, or the state is another job's."""
        private_folder(self.directory)
        self._lock = hold_job_lock(self.directory / _LOCK, self.output_name)
        try:
            self._hold_record()
            self._open_held(job_fingerprint, restart=restart)
        except BaseException:
            self.close()
            raise

    def _hold_record(self) -> None:
        """Take what keeps other jobs off the record beyond the local lock (here: nothing more)."""

    def _open_held(self, job_fingerprint: str, *, restart: bool) -> None:
        if restart:
            self._clear()
        raw = self._read_manifest()
        if raw is not None:
            try:
                manifest = json.loads(raw)
            except ValueError as exc:
                raise InputError(
                    f"{self.name_of(_MANIFEST)}: unreadable job state ({exc}); use --restart"
                ) from None
            if not isinstance(manifest, dict) or manifest.get("fingerprint") != job_fingerprint:
                raise InputError(
                    f"{self.name_of()} holds the state of a job with a different input, spec or batch "
                    "size: rerun with the same arguments to resume it, or pass --restart to start over"
                )
            self._done = self._read_journal()
            return
        self._write_manifest(json.dumps({"version": _VERSION, "fingerprint": job_fingerprint}).encode())

    @property
    def output_name(self) -> str:
        """The output the job writes, as messages name it."""
        return self.directory.name.removesuffix(".enrich")

    def name_of(self, item: str = "") -> str:
        """Where ``item`` of the job's record is (the record itself: ""), as messages name it."""
        return str(self.directory / item)

    def _read_manifest(self) -> bytes | None:
        try:
            return (self.directory / _MANIFEST).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputError(
                f"{self.name_of(_MANIFEST)}: unreadable job state ({exc}); use --restart"
            ) from None

    def _write_manifest(self, data: bytes) -> None:
        write_bytes_atomically(self.directory / _MANIFEST, data, PRIVATE_FILE)

    def _clear(self) -> None:
        """Remove everything but the lock (which this job holds)."""
        for path in self.directory.iterdir():
            if path.name == _LOCK:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    def __getstate__(self) -> dict[str, object]:
        """A copy (a Prefect transaction's, a Dask task's) never holds the lock: only this one."""
        return {**self.__dict__, "_lock": None}

    def close(self) -> None:
        """Let go of the job's lock (the state stays, for a rerun to resume)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @property
    def answer_log_path(self) -> Path:
        """The job's answer log (``service.caches.answer_log``)."""
        return self.directory / _ANSWER_LOG

    def part_path(self, index: int) -> Path:
        """The part file of batch ``index``."""
        return self.directory / f"part-{index:09d}.parquet"

    def is_done(self, index: int) -> bool:
        """True when batch ``index`` is recorded in the journal and has its part file."""
        return index in self._done and self.part_path(index).exists()

    def record_done(self, index: int) -> None:
        """Append batch ``index`` to the journal, flushed to disk: from now on it counts as done."""
        touch_private(self.directory / _JOURNAL)
        with open(self.directory / _JOURNAL, "a", encoding="ascii") as journal:
            journal.write(f"{index}\n")
            journal.flush()
            os.fsync(journal.fileno())
        self._done.add(index)

    def remove_part(self, index: int) -> None:
        """Delete batch ``index``'s part file (its batch failed before it was recorded)."""
        with contextlib.suppress(FileNotFoundError):
            self.part_path(index).unlink()

    def _read_journal(self) -> set[int]:
        journal = self.directory / _JOURNAL
        if not journal.exists():
            return set()
        # A torn last line (killed mid-append) is not a record.
        recorded = {int(line) for line in journal.read_text(encoding="ascii").splitlines() if line.isdigit()}
        return {index for index in recorded if self._part_reads(index)}

    def _part_reads(self, index: int) -> bool:
        """Whether a recorded part is still whole (a disk fault, a hand edit): one that is not is
        redone, from the answer log, rather than trusted."""
        try:
            pq.read_metadata(self.part_path(index))
        except FileNotFoundError:
            return False
        except (OSError, pa.ArrowException):
            _log.warning("enrich: warning: %s is damaged; its batch is done again", self.part_path(index))
            return False
        return True

    def write_part(self, index: int, frame: pl.DataFrame) -> None:
        """Write batch ``index``'s part file atomically (recording it is ``record_done``)."""
        with replaced_atomically(self.part_path(index), PRIVATE_FILE) as temporary:
            frame.write_parquet(temporary)

    def parts(self) -> list[str]:
        """The part files of every recorded batch, in batch order, as polars reads them."""
        return [str(self.part_path(i)) for i in sorted(self._done) if self.part_path(i).exists()]

    def remove(self) -> None:
        """Delete the state (after a successful finish), then let go of the lock."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self.close()
