"""Files that appear whole or not at all: written beside their place, flushed to disk, renamed.

A reader (a resumed job, a user opening OUT) never sees half a file: ``os.replace`` is atomic on
POSIX file systems, and the data is on disk before the name points at it, so a crash or a power
cut leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; when the block ends without an error,
    the temporary file is flushed to disk and renamed to ``path``. It is removed in every case."""
    # The process id keeps two writers (two runs of one job) from sharing a temporary file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all."""
    with replaced_atomically(path) as temporary:
        temporary.write_bytes(data)
