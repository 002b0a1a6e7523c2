"""Files that appear whole or not at all: written beside their place, flushed to disk, renamed.

A reader (a resumed job, a user opening OUT) never sees half a file: ``os.replace`` is atomic on
POSIX file systems, and the data is on disk before the name points at it, so a crash or a power
cut leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

# Files holding answers (the cache, a job's state) are the user's alone: answers may carry
# personal data, or a credential an API echoes back.
PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


@contextlib.contextmanager
def replaced_atomically(path: Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; when the block ends without an error,
    the temporary file is flushed to disk, given ``mode`` (if any) and renamed to ``path``. It is
    removed in every case."""
    # The process id keeps two writers (two runs of one job) from sharing a temporary file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_bytes_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` whole or not at all (with ``mode``, if given)."""
    with replaced_atomically(path, mode) as temporary:
        temporary.write_bytes(data)


def user_cache_home(environ: Mapping[str, str]) -> Path:
    """The user's cache folder: ``$XDG_CACHE_HOME``, else ``~/.cache``."""
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def private_folder(path: Path) -> None:
    """Create ``path`` (and its parents) if missing, itself readable by its owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)


def touch_private(path: Path) -> None:
    """Create ``path`` empty, readable by its owner only, unless it exists."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
