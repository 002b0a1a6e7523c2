"""``enrich_frame``: add an API's answers to a frame's rows, one request per distinct key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import polars as pl
import tenacity
from tenacity.wait import wait_base

from service.calling.answers import exact_reader
from service.calling.caller import Caller
from service.calling.clock import Clock
from service.calling.outcome import Outcome
from service.calling.requests import Key
from service.calling.transport import TransportChoice
from service.errors import CircuitOpenError, ErrorClass
from service.redact import Redactor
from service.spec import Spec
from service.stats import EnrichStats
from service.tables.mapping import AnswerMapper
from service.tables.schema_check import check_schema

STATUS = "_enrich_status"
ERROR = "_enrich_error"
MESSAGE = "_enrich_message"
ATTEMPTS = "_enrich_attempts"


@dataclass(frozen=True, slots=True)
class EnrichResult:
    """The enriched frame (input columns, then the spec's columns, then ``_enrich_*``) and statistics."""

    frame: pl.DataFrame
    stats: EnrichStats


async def enrich_frame(
    frame: pl.DataFrame,
    spec: Spec,
    *,
    caller: Caller | None = None,
    transport: TransportChoice = None,
    auth: httpx.Auth | None = None,
    clock: Clock | None = None,
    random: Callable[[], float] | None = None,
    retry: tenacity.retry_base | None = None,
    wait: wait_base | None = None,
) -> EnrichResult:
    """Enrich ``frame`` with ``spec``'s columns; every input row comes back once, in input order.

    Pass a ``caller`` to share one connection pool, limits and cache between calls (the result's
    statistics are still this call's own); otherwise one is opened for this call (with
    ``transport``, ``auth``, ``clock``, ``random``, and tenacity's ``retry`` and ``wait`` in place
    of the spec's retry condition and backoff: ``Caller``). Raises
    ``InputError`` before any request if the frame does not fit the spec, and ``CircuitOpenError``
    (with the partial result) if the API kept failing.
    """
    check_schema(frame.schema, spec)
    if caller is None:
        own_caller = Caller(
            spec, transport=transport, auth=auth, clock=clock, random=random, retry=retry, wait=wait
        )
        async with own_caller as own:
            return await _enrich_with(frame, own)
    return await _enrich_with(frame, caller)


async def _enrich_with(frame: pl.DataFrame, caller: Caller) -> EnrichResult:
    spec = caller.spec
    distinct = frame.select(spec.key).unique(maintain_order=True)
    keys: list[Key] = distinct.rows()
    with caller.counts.counting() as counts:
        counts.frame_rows, counts.frame_keys = frame.height, len(keys)
        outcomes = await caller.outcomes(keys, counts)
        ordered = [outcomes[key] for key in keys]
        answers = distinct.with_columns(**_columns_for(ordered, spec, caller.redact))
        rows_keys = _key_of_each_row(frame, keys, spec.key)
        enriched = _joined(frame, answers, spec.key, rows_keys)
        ok, failed_by_class = _row_outcomes(enriched, answers, rows_keys)
        counts.add_rows(ok=ok, failed_by_class=failed_by_class, distinct_keys=len(keys))
        result = EnrichResult(enriched, caller.counts.call_statistics(counts))
    if result.stats.circuit_open is not None:
        raise CircuitOpenError(
            f"stopped calling the API: {result.stats.circuit_open}; rerun to resume", partial=result
        )
    return result


# Up to this many rows, each row finds its key's answer through a dict rather than a polars join
# and value count: the online endpoint's few-row requests spent a fifth of their CPU on those.
SMALL_FRAME_ROWS = 2_000


def _key_of_each_row(frame: pl.DataFrame, keys: list[Key], key: tuple[str, ...]) -> list[int] | None:
    """For a small frame, each row's position in ``keys`` (its distinct keys); None for a large
    one, or when Python and polars tell keys apart differently (a NaN is not equal to itself in
    Python; two keys Python takes for one)."""
    if frame.height > SMALL_FRAME_ROWS:
        return None
    position = {row_key: index for index, row_key in enumerate(keys)}
    if len(position) != len(keys):
        return None
    try:
        return [position[row_key] for row_key in frame.select(key).rows()]
    except (KeyError, TypeError):
        return None


def _joined(
    frame: pl.DataFrame, answers: pl.DataFrame, key: tuple[str, ...], rows_keys: list[int] | None
) -> pl.DataFrame:
    """Each row of ``frame`` with its key's columns, in ``frame``'s order: picked by
    ``rows_keys`` when given, else joined. Lazy, so the join runs on the polars engine the user
    configured; polars keeps no order unless told (its streaming engine reorders rows without
    ``maintain_order``: tests/service/test_engine.py)."""
    if rows_keys is not None:
        return frame.hstack(answers.drop(key)[rows_keys].get_columns())
    joined = frame.lazy().join(
        answers.lazy(), on=list(key), how="left", nulls_equal=True, maintain_order="left"
    )
    return joined.collect()


def _row_outcomes(
    enriched: pl.DataFrame, answers: pl.DataFrame, rows_keys: list[int] | None
) -> tuple[int, dict[str, int]]:
    """How many rows are ok, and how many failed by error class."""
    if rows_keys is not None:
        errors = answers[ERROR].to_list()
        failed = Counter(error for index in rows_keys if (error := errors[index]) is not None)
        return len(rows_keys) - failed.total(), dict(failed)
    counted = enriched.filter(pl.col(STATUS) == "failed")[ERROR].value_counts()
    by_class = dict(zip(counted[ERROR].to_list(), counted["count"].to_list(), strict=True))
    return enriched.height - sum(by_class.values()), by_class


def unanswered_frame(frame: pl.DataFrame, spec: Spec, error: ErrorClass, message: str) -> pl.DataFrame:
    """``frame``'s rows as ``enrich_frame`` returns them when no key of theirs got an answer (a
    deadline passed first): the spec's columns null, every row failed with ``error``, ``message``."""
    outcome = Outcome(None, 0, error, message)
    return frame.with_columns(**_columns_for([outcome] * frame.height, spec, Redactor(spec.secrets)))


def _columns_for(ordered: list[Outcome], spec: Spec, redact: Callable[[str], str]) -> dict[str, pl.Series]:
    mapper = AnswerMapper(spec.columns, redact)
    rows: list[tuple[Any, ...]] = []
    status: list[str] = []
    error: list[str | None] = []
    message: list[str | None] = []
    for outcome in ordered:
        if outcome.error is not None:
            rows.append(mapper.nulls)
            status.append("failed")
            error.append(outcome.error.value)
            message.append(outcome.message)
            continue
        row = outcome.row  # mapped as it arrived; else now (from the cache, the answer log, in bulk)
        if row is None:
            row = mapper.row(outcome.answer, exact_reader(outcome.raw))
        values, mapping_error = row
        rows.append(values)
        if mapping_error is not None:
            status.append("failed")
            error.append("mapping")
            message.append(mapping_error)
        else:
            status.append("ok")
            error.append(None)
            message.append(None)
    return {
        **mapper.columns(rows),
        STATUS: pl.Series(STATUS, status, dtype=pl.String),
        ERROR: pl.Series(ERROR, error, dtype=pl.String),
        MESSAGE: pl.Series(MESSAGE, message, dtype=pl.String),
        ATTEMPTS: pl.Series(ATTEMPTS, [o.attempts for o in ordered], dtype=pl.Int32),
    }
