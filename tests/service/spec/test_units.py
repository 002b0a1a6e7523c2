"""Rates, durations and sizes as a spec writes them: every unit, bare numbers, and each mistake
refused with the message that says how to write it."""

from __future__ import annotations

import re

import pytest

from service.spec.units import parse_duration, parse_rate, parse_size


@pytest.mark.parametrize(
    ("written", "per_second"),
    [
        ("500/s", 500.0), ("500 / sec", 500.0), ("2/second", 2.0), (" 1/ms ", 1000.0),
        ("30/min", 0.5), ("30/m", 0.5), ("60/minute", 1.0), ("1800/h", 0.5), ("3600/hour", 1.0),
        ("2.5/s", 2.5), (7, 7.0), (0.25, 0.25),
    ],
)  # fmt: skip
def test_rates_in_every_unit(written: str | float, per_second: float) -> None:
    """Requests per second from each unit, spaced or not, and from a bare number."""
    assert parse_rate(written) == per_second


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("fast", "'fast' is not a rate: write it like '500/s', '30/min' or '1000/h'"),
        ("500", "'500' is not a rate: write it like '500/s', '30/min' or '1000/h'"),
        ("5/d", "'5/d' is not a rate: write it like '500/s', '30/min' or '1000/h'"),
        (True, "True is not a rate: write it like '500/s', '30/min' or '1000/h'"),
        ("0/s", "rate must be positive, got '0/s'"),
        (0, "rate must be positive, got 0"),
        (-1.5, "rate must be positive, got -1.5"),
    ],
)
def test_a_rate_that_is_not_one(written: str | float, message: str) -> None:
    """A text without a unit, an unknown unit, a boolean or a rate of zero or less is refused."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_rate(written)


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("250ms", 0.25), ("30s", 30.0), ("5m", 300.0), ("5 min", 300.0), (" 2h ", 7200.0),
        ("7d", 604800.0), ("1w", 604800.0), ("1.5h", 5400.0), ("0s", 0.0), (90, 90.0), (0.5, 0.5),
    ],
)  # fmt: skip
def test_durations_in_every_unit(written: str | float, seconds: float) -> None:
    """Seconds from each unit and from a bare number; zero is a duration."""
    assert parse_duration(written) == seconds


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("soon", "'soon' is not a duration: write it like '30s', '5m', '2h' or '7d'"),
        ("30", "'30' is not a duration: write it like '30s', '5m', '2h' or '7d'"),
        ("2y", "'2y' is not a duration: write it like '30s', '5m', '2h' or '7d'"),
        (False, "False is not a duration: write it like '30s', '5m', '2h' or '7d'"),
        (-1, "duration must not be negative, got -1"),
    ],
)
def test_a_duration_that_is_not_one(written: str | float, message: str) -> None:
    """A text without a unit, an unknown unit, a boolean or a negative number is refused."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(written)


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ("1", 1), ("10 b", 10), ("2 KB", 2000), ("2kib", 2048), ("3 MB", 3_000_000), ("16 MiB", 16 * 1024**2),
        ("1 GB", 10**9), ("1GiB", 1024**3), ("0.5 KiB", 512), (4096, 4096),
    ],
)  # fmt: skip
def test_sizes_in_every_unit(written: str | int, size: int) -> None:
    """Bytes from each unit, in either case, and from a bare number (of bytes)."""
    assert parse_size(written) == size


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("big", "'big' is not a size: write it like '16 MiB', '512 KiB' or 1048576"),
        ("3 TB", "'3 TB' is not a size: write it like '16 MiB', '512 KiB' or 1048576"),
        (True, "True is not a size: write it like '16 MiB', '512 KiB' or 1048576"),
        ("0.5 b", "size must be at least 1 byte, got '0.5 b'"),
        (0, "size must be at least 1 byte, got 0"),
    ],
)
def test_a_size_that_is_not_one(written: str | int, message: str) -> None:
    """An unknown unit, a boolean or less than one byte is refused."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_size(written)
