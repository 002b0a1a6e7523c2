"""One job per output: an exclusive lock on a file in the job's state folder, held for its life.

``flock`` locks belong to the open file, so the kernel lets go when the process ends however it
ends (``kill -9`` included): a stale lock cannot outlive its job. The holder writes its PID in the
file, for the message the next job gives.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from service.errors import InputError
from service.files import PRIVATE_FILE


def hold_job_lock(path: Path, output: str) -> IO[bytes]:
    """The lock file at ``path``, open and exclusively locked by this process (close it to let
    go). ``InputError`` naming the holder's PID, and ``output``, when another job holds it."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    lock = os.fdopen(descriptor, "r+b")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = lock.read(32).decode(errors="replace").strip() or "unknown"
        lock.close()
        raise InputError(
            f"another enrich job (pid {holder}) is writing {output} (its lock: {path}); wait for it "
            "to finish, or stop it"
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n".encode())
    lock.flush()
    return lock
