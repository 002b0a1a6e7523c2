"""Backoff and ``Retry-After``: pure functions of their inputs (randomness and time passed in)."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Callable

from service.spec import BackoffSection

_DELAY_SECONDS = re.compile(r"[0-9]+")


def backoff_delay(attempt: int, policy: BackoffSection, random: Callable[[], float]) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential, capped at ``max_s``, then reduced by up to ``jitter`` of itself so that clients
    that failed together do not retry together: the result lies in ``[base * (1 - jitter), base]``
    where ``base = min(max_s, initial_s * multiplier ** (attempt - 1))``.
    """
    exponent = max(0, attempt - 1)
    try:
        base = policy.initial_s * policy.multiplier**exponent
    except OverflowError:
        base = policy.max_s
    base = min(policy.max_s, base)
    return base * (1.0 - policy.jitter * random())


def parse_retry_after(value: str | None, wall_now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date (RFC 9110 10.2.3).

    A date in the past gives 0; a value that is neither form gives None (the caller backs off).
    Whatever a server sends, the result is None or a number >= 0 (possibly ``inf``: callers cap it).
    """
    if value is None:
        return None
    text = value.strip()
    # delay-seconds is ASCII digits: str.isdigit() also accepts superscripts ('²'), which float() refuses.
    if _DELAY_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)  # an HTTP-date is always GMT
        return max(0.0, when.timestamp() - wall_now)
    except (TypeError, ValueError, IndexError):
        return None
