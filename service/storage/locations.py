"""Telling an object-storage URL from a local path, and naming objects beside one another.

Pure: no request is made here (``service.storage.objects`` does the I/O).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from service.errors import InputError

# The schemes of the stores object_store (polars' and obstore's Rust crate) reads and writes.
OBJECT_STORE_SCHEMES = ("s3", "gs", "az")

# A URL (s3://bucket/key), or what pathlib makes of one (s3:/bucket/key).
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/(?P<rest>.*)$", re.DOTALL)


@dataclass(frozen=True)
class ObjectLocation:
    """An object (or, with ``key`` ending in ``/`` or empty, a prefix) in a bucket."""

    scheme: str
    bucket: str
    key: str
    # What a listing said of the object (None: not listed): an input's identity without a HEAD
    # per object. Not part of what the location is.
    size: int | None = field(default=None, compare=False)
    version: str | None = field(default=None, compare=False)

    @property
    def url(self) -> str:
        """``scheme://bucket/key``: what polars and the user read."""
        return f"{self.scheme}://{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        """The last segment of the key."""
        return self.key.rstrip("/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        """The name's extension (``.parquet``), as ``Path.suffix``."""
        return PurePosixPath(self.name).suffix

    def with_key(self, key: str) -> ObjectLocation:
        """Another object in the same bucket."""
        return ObjectLocation(self.scheme, self.bucket, key)

    def __str__(self) -> str:
        return self.url


# Where a table is read from or written to.
TableLocation = Path | ObjectLocation


def is_object_url(text: str | Path) -> bool:
    """Whether ``text`` is a URL (of any scheme) rather than a local path."""
    return _URL.match(str(text)) is not None


def table_location(text: str | Path | ObjectLocation, what: str = "") -> TableLocation:
    """``text`` as a local path or, for an ``s3://``, ``gs://`` or ``az://`` URL, an
    ``ObjectLocation``; ``InputError`` for a URL of another scheme or without a bucket. ``what``
    prefixes the message (``"--output "``)."""
    if isinstance(text, ObjectLocation):
        return text
    match = _URL.match(str(text))
    if match is None:
        return Path(text)
    scheme, rest = match["scheme"].lower(), match["rest"].lstrip("/")
    url = f"{scheme}://{rest}"
    if scheme not in OBJECT_STORE_SCHEMES:
        known = ", ".join(f"{s}://" for s in OBJECT_STORE_SCHEMES)
        raise InputError(f"{what}{url}: Enrich reads and writes local paths and object storage ({known})")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise InputError(f"{what}{url}: no bucket named (write {scheme}://BUCKET/KEY)")
    return ObjectLocation(scheme, bucket, key)


def key_matches(pattern: str, key: str) -> bool:
    """Whether ``key`` matches the glob ``pattern`` segment by segment (``*`` never crosses a
    ``/``), as a local glob matches paths."""
    patterns, segments = pattern.split("/"), key.split("/")
    return len(patterns) == len(segments) and all(map(fnmatchcase, segments, patterns))


def literal_prefix(pattern: str) -> str:
    """The part of a glob's key before its first wildcard, up to a ``/``: where to list."""
    first = min((pattern.find(c) for c in "*?[" if c in pattern), default=len(pattern))
    return pattern[: pattern.rfind("/", 0, first) + 1]


def absolute_location(text: str | Path) -> str:
    """A URL as given; a path made absolute (not resolved: a link stays the name the user gave)."""
    location = table_location(text)
    return str(location) if isinstance(location, ObjectLocation) else os.path.abspath(location)


def resolved_location(text: str | Path | ObjectLocation) -> str:
    """A URL as given; a path resolved (links too): what a worker in another folder can find."""
    location = table_location(text)
    return str(location) if isinstance(location, ObjectLocation) else str(location.resolve())


def location_link(text: str | Path) -> str:
    """What a link to the table points at: the URL, or the file's ``file://`` URI."""
    location = table_location(text)
    return str(location) if isinstance(location, ObjectLocation) else location.absolute().as_uri()
