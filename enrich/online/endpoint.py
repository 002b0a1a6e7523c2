"""One spec behind the online endpoint: a ``Session`` every request shares (one pool, one set of
limits, one cache; a key two requests ask at once is requested once), each request's deadline,
and a bound on the work waiting.

A request's rows are enriched by a task of the endpoint's own, not of the request: when the
request's deadline passes first, its rows come back failed as ``timeout`` at once, and the work
goes on, so the answers land in the cache and a caller asking again gets them (or waits for the
same requests, still in flight) instead of starting over.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import polars as pl
from anyio.abc import TaskGroup

from enrich.api import Session
from enrich.online.bodies import RefusedError
from service import (
    ERROR,
    STATUS,
    CircuitOpenError,
    EnrichResult,
    ErrorClass,
    InputError,
    check_schema,
    unanswered_frame,
)

log = logging.getLogger("enrich.api")


@dataclass(frozen=True, slots=True)
class EndpointLimits:
    """How long a request's rows may wait, how much may wait at once, when to try a failing API."""

    default_timeout_s: float = 30.0
    max_timeout_s: float = 300.0
    max_pending_rows: int = 100_000  # rows being enriched for every request together; past it, 503
    circuit_cooldown_s: float = 30.0  # after the breaker opened, the API is tried again this late


@dataclass(slots=True)
class RowCounts:
    """What the endpoint answered for one spec: requests by HTTP status, rows by outcome."""

    requests: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0

    def count_request(self, status: int) -> None:
        """One request answered with ``status``."""
        self.requests[str(status)] = self.requests.get(str(status), 0) + 1

    def count_rows(self, frame: pl.DataFrame) -> None:
        """The rows of an answer, by outcome: ``ok`` or their error class."""
        if not frame.height:
            return
        outcomes = frame.select(pl.coalesce(pl.col(ERROR), pl.col(STATUS)).alias("o"))["o"]
        for outcome, count in outcomes.value_counts().iter_rows():
            self.rows[outcome] = self.rows.get(outcome, 0) + count


class SpecEndpoint:
    """Enriches requests' rows with one spec's session, each within its deadline."""

    def __init__(
        self,
        name: str,
        session: Session,
        tasks: TaskGroup,
        limits: EndpointLimits,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.session = session
        self.counts = RowCounts()
        self._tasks = tasks
        self._limits = limits
        self._now = now
        self._pending_rows = 0
        self._open_since: float | None = None

    @property
    def pending_rows(self) -> int:
        """Rows being enriched for this spec's requests (those past their deadline included)."""
        return self._pending_rows

    def timeout_of(self, asked: str | None) -> float:
        """The deadline a request asked for (``X-Enrich-Timeout`` or ``?timeout=``), in seconds."""
        if asked is None:
            return self._limits.default_timeout_s
        try:
            seconds = float(asked)
        except ValueError:
            seconds = float("nan")
        if not 0 < seconds <= self._limits.max_timeout_s:
            raise RefusedError(
                400, f"timeout {asked!r}: a number of seconds above 0, at most {self._limits.max_timeout_s:g}"
            )
        return seconds

    async def enrich(self, frame: pl.DataFrame, timeout_s: float) -> pl.DataFrame:
        """``frame``'s rows with the spec's columns and ``_enrich_*``, in order; those not answered
        within ``timeout_s`` failed as ``timeout``."""
        try:
            check_schema(frame.schema, self.session.spec)
        except InputError as exc:
            raise RefusedError(422, str(exc)) from None
        if self._pending_rows and self._pending_rows + frame.height > self._limits.max_pending_rows:
            raise RefusedError(503, f"busy: {self._pending_rows} rows are being enriched; ask again soon")
        self._close_circuit_after_cooldown()
        done = anyio.Event()
        result: list[pl.DataFrame] = []
        self._pending_rows += frame.height
        self._tasks.start_soon(self._enriched, frame, result, done)
        with anyio.move_on_after(timeout_s):
            await done.wait()
        if result:
            return result[0]
        if done.is_set():
            raise RefusedError(500, "enriching the rows failed: the server's log says why")
        message = f"not answered within the request's {timeout_s:g} s; still being fetched: ask again"
        return unanswered_frame(frame, self.session.spec, ErrorClass.TIMEOUT, message)

    async def _enriched(self, frame: pl.DataFrame, result: list[pl.DataFrame], done: anyio.Event) -> None:
        try:
            try:
                enriched: EnrichResult = await self.session.enrich(frame)
            except CircuitOpenError as exc:  # its rows come back failed as circuit_open
                if exc.partial is None:
                    raise
                enriched = exc.partial
            result.append(enriched.frame)
        except Exception as exc:  # one request's surprise must not end the endpoint's task group
            # Its message may quote a header or a URL: the traceback is logged redacted.
            trace = self.session.redact("".join(traceback.format_exception(exc)))
            log.error("%s: enriching %d rows failed\n%s", self.name, frame.height, trace.rstrip())
        finally:
            self._pending_rows -= frame.height
            done.set()

    def _close_circuit_after_cooldown(self) -> None:
        """A long-running endpoint does not stop for good when the API fails: after the cool-down,
        the next request tries it again."""
        if self.session.circuit_open is None:  # not statistics(): it adds up every call in flight
            self._open_since = None
            return
        now = self._now()
        if self._open_since is None:
            self._open_since = now
        if now - self._open_since >= self._limits.circuit_cooldown_s:
            log.warning("%s: trying the API again after %g s", self.name, now - self._open_since)
            self.session.close_circuit()
            self._open_since = None
