"""The mock API's quota mode: fixed windows of ``window_s`` seconds, ``quota`` requests each, told
in every answer's headers (as a quota-limited API does), and a 429 past the quota."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal

QuotaHeaders = Literal["ietf", "x"]


class QuotaWindows:
    """What a quota-limited API counts; ``take()`` for each request."""

    def __init__(
        self,
        quota: int,
        window_s: float,
        form: QuotaHeaders = "ietf",
        *,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.quota = quota
        self.window_s = window_s
        self.form = form
        self._now = now
        self._wall = wall
        self._start = now()
        self._window = 0
        self.used = 0  # in the current window
        self.refused = 0  # over all windows

    def take(self) -> tuple[bool, dict[str, str]]:
        """Count one request: whether it is within the quota, and the headers its answer carries
        (a refusal's with ``Retry-After`` until the next window)."""
        elapsed = self._now() - self._start
        window = int(elapsed // self.window_s)
        if window != self._window:
            self._window, self.used = window, 0
        reset_s = (window + 1) * self.window_s - elapsed
        allowed = self.used < self.quota
        if allowed:
            self.used += 1
        else:
            self.refused += 1
        headers = self._headers(self.quota - self.used, reset_s)
        if not allowed:
            headers["Retry-After"] = str(math.ceil(reset_s))
        return allowed, headers

    def _headers(self, remaining: int, reset_s: float) -> dict[str, str]:
        # Whole seconds, rounded up, as the drafts and the common form send them: never early.
        if self.form == "x":
            return {
                "X-RateLimit-Limit": str(self.quota),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(math.ceil(self._wall() + reset_s)),
            }
        return {
            "RateLimit-Policy": f'"default";q={self.quota};w={math.ceil(self.window_s)}',
            "RateLimit": f'"default";r={remaining};t={math.ceil(reset_s)}',
        }
