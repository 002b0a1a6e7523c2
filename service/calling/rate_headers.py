"""What an API says of its own quota, read from an answer's headers: pure.

Four forms are in use:

    RateLimit: "default";r=50;t=30             IETF httpapi draft 07 and later (a list of
    RateLimit-Policy: "default";q=100;w=60      policies; r remaining, t seconds to reset)
    RateLimit: limit=100, remaining=50, reset=30    the same draft, versions 03-06
    RateLimit-Remaining: 50 / RateLimit-Reset: 30   the same draft, versions 00-02
    X-RateLimit-Remaining: 50 / X-RateLimit-Reset: 1700000030
                                                the common form: reset as seconds to wait, or as
                                                the Unix time of the reset (seconds or milliseconds)

``quota_of`` returns the most restrictive quota found (the fewest requests per second left), or
None when the answer says nothing usable; anything malformed is ignored rather than guessed at:
a server's header must never make a job faster than its spec allows, and the caller never lets it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Resets larger than these are points in time, not durations: 2001-09-09 in seconds, in milliseconds.
_EPOCH_SECONDS = 1_000_000_000
_EPOCH_MILLISECONDS = 1_000_000_000_000
_INTEGER = re.compile(r"[0-9]{1,15}")
_NUMBER = re.compile(r"[0-9]{1,15}(\.[0-9]{1,6})?")
# Read on every answer: a header absent (the usual case) costs one lookup, not two.
_SEPARATE_HEADERS = (
    ("RateLimit-Remaining", "RateLimit-Reset"),
    ("X-RateLimit-Remaining", "X-RateLimit-Reset"),
)


@dataclass(frozen=True, slots=True)
class Quota:
    """``remaining`` requests may start in the next ``reset_s`` seconds."""

    remaining: int
    reset_s: float

    @property
    def per_second(self) -> float:
        """The pace that spends what remains by the reset (infinite when it is due now)."""
        return self.remaining / self.reset_s if self.reset_s > 0 else float("inf")


def quota_of(headers: Mapping[str, str], wall_now: float) -> Quota | None:
    """The tightest quota ``headers`` announce, ``wall_now`` being the time of the answer (Unix)."""
    found: list[Quota] = []
    combined = headers.get("RateLimit")
    if combined is not None:
        found += _combined(combined)
    for remaining_name, reset_name in _SEPARATE_HEADERS:
        remaining = headers.get(remaining_name)
        reset = None if remaining is None else headers.get(reset_name)
        if remaining is not None and reset is not None:
            quota = _separate(remaining, reset, wall_now)
            if quota is not None:
                found.append(quota)
    if not found:
        return None
    return min(found, key=lambda quota: quota.per_second)


def _combined(value: str) -> list[Quota]:
    """``RateLimit``'s policies: ``"name";r=50;t=30`` items (draft 07+), or one
    ``remaining=50, reset=30`` dictionary (drafts 03-06)."""
    members = [member.strip() for member in value.split(",") if member.strip()]
    if any(";" in member for member in members):
        policies = [_parameters(member.split(";")[1:]) for member in members]
        quotas = [_quota(policy.get("r"), policy.get("t")) for policy in policies]
    else:
        dictionary = _parameters(members)
        remaining = dictionary.get("remaining", dictionary.get("r"))
        quotas = [_quota(remaining, dictionary.get("reset", dictionary.get("t")))]
    return [quota for quota in quotas if quota is not None]


def _parameters(pairs: list[str]) -> dict[str, str]:
    parsed = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if equals:
            parsed[name.strip().lower()] = value.strip()
    return parsed


def _quota(remaining: str | None, reset: str | None) -> Quota | None:
    if (
        remaining is None
        or reset is None
        or not _INTEGER.fullmatch(remaining)
        or not _INTEGER.fullmatch(reset)
    ):
        return None
    return Quota(int(remaining), float(reset))


def _separate(remaining: str, reset: str, wall_now: float) -> Quota | None:
    """``*-Remaining`` and ``*-Reset``: the reset a duration, or a Unix time in s or ms."""
    remaining, reset = remaining.strip(), reset.strip()
    if not _INTEGER.fullmatch(remaining) or not _NUMBER.fullmatch(reset):
        return None
    told = float(reset)
    if told >= _EPOCH_MILLISECONDS:
        told = told / 1000 - wall_now
    elif told >= _EPOCH_SECONDS:
        told -= wall_now
    return Quota(int(remaining), max(0.0, told))
