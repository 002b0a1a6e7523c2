"""The mock API's deterministic answers and fault decisions: pure functions of the key.

Faults chosen by key prefix make tests exact; faults chosen by rate are drawn from a hash of
(seed, key, attempt number), so the same run of requests meets the same faults every time.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

COUNTRIES = ("DE", "FR", "US", "JP", "BR", "IN", "NG", "AU", "CA", "SE")

# Keys with these prefixes always get the named fault.
PREFIX_FAULTS = {
    "404-": "not_found",
    "400-": "bad_request",
    "401-": "unauthorized",
    "500-": "http_500",
    "503-": "http_503",
    "429-": "rate_limited",
    "429date-": "rate_limited_date",
    "reset-": "reset",
    "hang-": "hang",
    # Answered normally once POST /_release is called: a test holds a job mid-way, no clock involved.
    "held-": "held",
    "badjson-": "malformed",
    "ghost-": "bulk_missing",
    # Answers that say more than their status (200): a failure, or "not ready yet".
    "apierror-": "error_in_200",
    "pending-": "pending",
    # Hostile answers (service.testing.hostile).
    "gzip-": "gzip",
    "bomb-": "gzip_bomb",
    "huge-": "huge_body",
    "sized-": "huge_declared",
    "endless-": "endless_body",
    "drip-": "drip",
    "bigerror-": "huge_error",
    "echo-": "echo_request",
    # Redirects (service.testing.hostile): to --redirect-to's landed- key, or elsewhere.
    "redirect-": "redirect",
    "redirect307-": "redirect_307",
    "redirectrel-": "redirect_relative",
    "redirectrel307-": "redirect_relative_307",
    "redirectloop-": "redirect_loop",
    "redirectfile-": "redirect_file",
    "redirectcopy-": "redirect_copying_query",
}
REDIRECT_FAULTS = frozenset(fault for prefix, fault in PREFIX_FAULTS.items() if prefix.startswith("redirect"))
HOSTILE_FAULTS = frozenset(
    {"gzip", "gzip_bomb", "huge_body", "huge_declared", "endless_body", "drip", "huge_error", "echo_request"}
)


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Share of requests (0..1) that meet each fault, drawn per (key, attempt)."""

    http_500: float = 0.0
    http_503: float = 0.0
    rate_limited: float = 0.0
    reset: float = 0.0
    hang: float = 0.0
    malformed: float = 0.0
    bulk_missing: float = 0.0

    @property
    def any_request_fault(self) -> bool:
        """True when some fault is drawn per request (so the draw can be skipped otherwise)."""
        return any((self.http_500, self.http_503, self.rate_limited, self.reset, self.hang, self.malformed))


def unit_draw(seed: int, *parts: object) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``parts``."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def answer_for(key: str) -> dict[str, Any]:
    """The document the mock API returns for ``key``: several types, nested, some fields missing."""
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    doc: dict[str, Any] = {
        "key": key,
        "country": {"iso_code": COUNTRIES[h % len(COUNTRIES)], "eu": h % len(COUNTRIES) in (0, 1, 9)},
        "asn": h % 65_000,
        "score": round((h % 10_000) / 100, 2),
        "seen": (dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=h % 31_536_000))
        .isoformat()
        .replace("+00:00", "Z"),
        "tags": ["anycast"] if h % 7 == 0 else [],
    }
    if h % 10 != 0:  # one key in ten has no location
        doc["location"] = {
            "lat": round((h % 18_000) / 100 - 90, 2),
            "lon": round((h % 36_000) / 100 - 180, 2),
        }
    return doc


@functools.lru_cache(maxsize=65_536)
def answer_bytes(key: str) -> bytes:
    """``answer_for(key)`` as JSON, cached: the mock must never be a benchmark's bottleneck."""
    return orjson.dumps(answer_for(key))


def fault_for(key: str, attempt: int, rates: FaultRates, seed: int) -> str | None:
    """The fault this request meets, or None: a prefix fault first, then one drawn by rate."""
    for prefix, fault in PREFIX_FAULTS.items():
        if key.startswith(prefix):
            return fault
    if not rates.any_request_fault:
        return None
    draw = unit_draw(seed, key, attempt)
    for fault in ("http_500", "http_503", "rate_limited", "reset", "hang", "malformed"):
        rate = getattr(rates, fault)
        if draw < rate:
            return fault
        draw -= rate
    return None
