"""Parsing of the human-friendly quantities in spec files: rates ("500/s"), durations ("7d") and
sizes ("16 MiB")."""

from __future__ import annotations

import re

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(ms|s|sec|second|m|min|minute|h|hour)\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_BYTES = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}
_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}


def parse_rate(value: str | float) -> float:
    """Requests per second from ``"500/s"``, ``"30/min"``, ``"1000/h"`` or a bare number (per second)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        per_second = float(value)
    else:
        match = _RATE.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a rate: write it like '500/s', '30/min' or '1000/h'")
        per_second = float(match.group(1)) / _SECONDS[match.group(2)]
    if per_second <= 0:
        raise ValueError(f"rate must be positive, got {value!r}")
    return per_second


def parse_duration(value: str | float) -> float:
    """Seconds from ``"500ms"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"7d"``, ``"1w"`` or a bare number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration: write it like '30s', '5m', '2h' or '7d'")
        seconds = float(match.group(1)) * _SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    return seconds


def parse_size(value: str | int) -> int:
    """Bytes from ``"16 MiB"``, ``"512KiB"``, ``"2 MB"``, ``"1GiB"`` or a bare number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a size: write it like '16 MiB', '512 KiB' or 1048576")
        size = int(float(match.group(1)) * _BYTES[(match.group(2) or "b").lower()])
    if size < 1:
        raise ValueError(f"size must be at least 1 byte, got {value!r}")
    return size
