"""Objects in a bucket read, listed, written and deleted through obstore.

Credentials and endpoint come from the standard environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for an S3-compatible store,
``GOOGLE_*``, ``AZURE_*``), read by the same Rust crate (object_store) that polars reads tables
with, so both see one configuration. A store is made per call (cheap next to a request): a
changed environment is always honoured. obstore is imported on the first request: a job on
local files does without its 6.5 MB and 7 ms.

Every failure becomes ``ObjectStorageError`` (an ``OSError``: the machine's or the store's fault,
not the user's table), one line naming the object; a missing object is ``None`` where asking is
normal (``info``, ``read_bytes``).
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from service.storage.locations import ObjectLocation

if TYPE_CHECKING:
    from obstore.store import RetryConfig

# object_store's default retries a failing request for up to 3 minutes: a wrong endpoint or a
# stopped store would look like a hung job. A few quick retries ride out a blip.
_RETRY: RetryConfig = {"max_retries": 4, "retry_timeout": timedelta(seconds=60)}


_INSTANCE_METADATA = "169.254.169.254"
_S3_CODE = re.compile(r"<Code>([^<]+)</Code>")
_S3_MESSAGE = re.compile(r"<Message>([^<]+)</Message>")
_TIMING = re.compile(r" in [0-9.]+[µmn]?s\b")


class ObjectStorageError(OSError):
    """A request to object storage failed (unreachable, refused, denied): the message names the
    object and the first line of the cause."""


def _store(location: ObjectLocation) -> Any:
    from obstore.store import from_url

    return from_url(f"{location.scheme}://{location.bucket}", retry_config=_RETRY)


def _failure(location: ObjectLocation, exc: BaseException) -> ObjectStorageError:
    return ObjectStorageError(f"{location}: object storage: {describe_failure(str(exc))}")


def describe_failure(text: str) -> str:
    """obstore's message in one line: the store's own error code and message when it sent one
    (``NoSuchBucket: The specified bucket does not exist``), else the first line without timings."""
    if _INSTANCE_METADATA in text:  # no credentials in the environment: the crate asked the VM's
        return (
            "no credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with "
            "AWS_ENDPOINT_URL for an S3-compatible store) and no instance credentials to fall back on"
        )
    code, message = _S3_CODE.search(text), _S3_MESSAGE.search(text)
    if code is not None:
        return f"{code[1]}: {message[1]}" if message is not None else code[1]
    first = text.strip().splitlines()[0] if text.strip() else "failed"
    return _TIMING.sub("", first)


def _described(location: ObjectLocation, meta: Any) -> ObjectLocation:
    """The object ``meta`` (a listing's or a HEAD's) names, with its size and version (the ETag, or
    the modification time when the store gives none): enough to notice that it changed."""
    version = meta.get("e_tag") or str(meta.get("last_modified"))
    return ObjectLocation(location.scheme, location.bucket, meta["path"], int(meta["size"]), version)


@contextlib.contextmanager
def _requesting(location: ObjectLocation) -> Iterator[None]:
    """Any failure of the block as ``ObjectStorageError`` naming ``location``."""
    from obstore.exceptions import BaseError

    try:
        yield
    except (BaseError, OSError) as exc:
        raise _failure(location, exc) from None


def info(location: ObjectLocation) -> ObjectLocation | None:
    """The object with its size and version; None when there is no such object."""
    import obstore

    with _requesting(location), contextlib.suppress(FileNotFoundError):
        return _described(location, obstore.head(_store(location), location.key))
    return None


def listing(prefix: ObjectLocation) -> list[ObjectLocation]:
    """Every object whose key starts with ``prefix.key`` (with its size and version), in key order."""
    import obstore

    with _requesting(prefix):
        chunks = obstore.list(_store(prefix), prefix=prefix.key or None)
        found = [_described(prefix, meta) for chunk in chunks for meta in chunk]
    return sorted(found, key=lambda found_object: found_object.key)


def read_bytes(location: ObjectLocation) -> bytes | None:
    """The object's content; None when there is no such object."""
    found = read_versioned(location)
    return None if found is None else found[0]


def read_versioned(location: ObjectLocation) -> tuple[bytes, str] | None:
    """The object's content and ETag; None when there is no such object."""
    import obstore

    with _requesting(location), contextlib.suppress(FileNotFoundError):
        result = obstore.get(_store(location), location.key)
        return bytes(result.bytes()), str(result.meta["e_tag"])
    return None


def put(location: ObjectLocation, data: bytes | Path) -> None:
    """Put ``data`` (or a local file's content) as the object: it appears whole or not at all (a
    large file goes in parts, and an upload in parts is invisible until its last part is in)."""
    import obstore

    with _requesting(location):
        obstore.put(_store(location), location.key, data)


def create(location: ObjectLocation, data: bytes) -> str | None:
    """Put ``data`` as the object only if there is none (one request, decided by the store); its
    ETag, or None when the object exists already."""
    import obstore
    from obstore.exceptions import AlreadyExistsError

    with _requesting(location), contextlib.suppress(AlreadyExistsError):
        return str(obstore.put(_store(location), location.key, data, mode="create")["e_tag"])
    return None


def replace_if_unchanged(location: ObjectLocation, data: bytes, e_tag: str) -> str | None:
    """Put ``data`` as the object only if it still has ``e_tag``; its new ETag, or None when it
    changed (or went) since."""
    import obstore
    from obstore.exceptions import PreconditionError

    with _requesting(location), contextlib.suppress(PreconditionError, FileNotFoundError):
        return str(obstore.put(_store(location), location.key, data, mode={"e_tag": e_tag})["e_tag"])
    return None


def rename(source: ObjectLocation, target: ObjectLocation) -> None:
    """Move the object to ``target`` in the same bucket (a copy, then a delete)."""
    import obstore

    with _requesting(source):
        obstore.rename(_store(source), source.key, target.key)


def delete(locations: Iterable[ObjectLocation]) -> None:
    """Delete the objects (all in one bucket); one missing already is no error."""
    import obstore

    targets = list(locations)
    if targets:
        with _requesting(targets[0]), contextlib.suppress(FileNotFoundError):
            obstore.delete(_store(targets[0]), [target.key for target in targets])


def open_for_reading(location: ObjectLocation) -> BinaryIO:
    """The object as a buffered, seekable binary file, read in ranges as it is consumed."""
    import obstore

    with _requesting(location):
        reader = obstore.open_reader(_store(location), location.key)
    return io.BufferedReader(_RangeReader(location, reader), buffer_size=1024**2)


class _RangeReader(io.RawIOBase):
    """obstore's reader as a raw file (it returns its own buffer type, not ``bytes``)."""

    def __init__(self, location: ObjectLocation, reader: Any) -> None:
        self._location = location
        self._reader = reader

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._reader.seek(offset, whence))

    def tell(self) -> int:
        return int(self._reader.tell())

    def readinto(self, buffer: Any) -> int:
        with _requesting(self._location):
            chunk = memoryview(self._reader.read(len(buffer)))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._reader.close()
        super().close()
