"""One key asked once, every step kept for showing (``enrich try``): the request as sent, each
answer with its headers and time, redirects followed as the spec says, and the row it makes.

No limit, retry, breaker or cache takes part: this is the API's answer to exactly one request,
through the same request building, sender, bounded reading, redirect policy and classification a
job uses. Nothing here is redacted: whoever shows it redacts (``Exchange.redact``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from service.calling.answer_conditions import judge_for
from service.calling.answers import answer_of
from service.calling.bulk import match_bulk
from service.calling.clock import SystemClock
from service.calling.oauth import authorized
from service.calling.outcome import Outcome, failed_outcome
from service.calling.redirects import REDIRECT_STATUSES, Redirects
from service.calling.requests import Key, PreparedRequest, RequestBuilder, request_headers
from service.calling.retry_policy import RetryPolicy
from service.calling.sending import RawResponse
from service.calling.transport import TransportChoice, foreign_headers, make_sender
from service.errors import CallError
from service.redact import Redactor
from service.spec import Spec
from service.tables.mapping import map_answers


@dataclass(frozen=True)
class Hop:
    """One request (and the headers it went with) and what came back: an answer, or the error of
    a request that got none."""

    request: PreparedRequest
    headers: dict[str, str]
    response: RawResponse | None
    elapsed_s: float
    error: CallError | None = None


@dataclass
class Exchange:
    """Everything about one key asked once: the hops, the key's outcome, and its row."""

    key: Key
    hops: list[Hop] = field(default_factory=list)
    outcome: Outcome | None = None
    row: dict[str, Any] = field(default_factory=dict)
    mapping_error: str | None = None
    redact: Callable[[str], str] = str

    @property
    def ok(self) -> bool:
        """Whether the key's row would be ``ok`` in a job."""
        return self.outcome is not None and self.outcome.ok and self.mapping_error is None


async def ask_once(
    spec: Spec, key: Key, *, transport: TransportChoice = None, auth: httpx.Auth | None = None
) -> Exchange:
    """Ask the API about ``key`` with one request (and the redirects the spec follows)."""
    redact = Redactor(spec.secrets)
    exchange = Exchange(key, redact=redact)
    builder = RequestBuilder(spec.request, spec.key)
    try:
        request = builder.build_bulk([key]) if spec.bulk else builder.build(key)
    except CallError as exc:  # a key that cannot be sent: no request at all
        exchange.outcome = failed_outcome(exc, 0, redact)
        return exchange
    sender = authorized(make_sender(spec, transport, auth), spec, SystemClock(), redact, transport)
    await sender.open()
    try:
        answer = await _follow(spec, request, sender.send, exchange)
    finally:
        await sender.aclose()
    if answer is not None:
        _settle(spec, key, answer, exchange)
    return exchange


async def _follow(spec: Spec, request: PreparedRequest, send: Any, exchange: Exchange) -> Any | None:
    """Send ``request`` and follow its redirects as the spec allows; the answer, or None with the
    exchange's outcome set to the failure."""
    redirects = Redirects.for_request(spec.request, Redactor(spec.secrets))
    home, foreign = request_headers(spec.request), foreign_headers(spec)
    policy = RetryPolicy.for_spec(spec, random=random.random, clock=SystemClock())
    judge = judge_for(spec.conditions, policy)  # the verdict a job's first attempt would get
    hops = 0
    while True:
        started = time.perf_counter()
        headers = foreign if request.foreign else home
        try:
            response = await send(request)
        except CallError as exc:
            exchange.hops.append(Hop(request, headers, None, time.perf_counter() - started, exc))
            exchange.outcome = failed_outcome(exc, 1, exchange.redact)
            return None
        exchange.hops.append(Hop(request, headers, response, time.perf_counter() - started))
        try:
            if response.location is None or response.status not in REDIRECT_STATUSES:
                answer = answer_of(response)
                if judge is not None:
                    judge.judge(answer, 1, response.status, response.retry_after)
                return answer
            request, hops = redirects.next_hop(request, response.status, response.location, hops), hops + 1
        except CallError as exc:
            exchange.outcome = failed_outcome(exc, 1, exchange.redact)
            return None


def _settle(spec: Spec, key: Key, answer: Any, exchange: Exchange) -> None:
    """The key's outcome from a usable answer (in bulk: its result in the list), and its row."""
    outcome = match_bulk([key], answer, 1, spec.bulk)[key] if spec.bulk else Outcome(answer, 1)
    exchange.outcome = outcome
    if not outcome.ok:
        return
    mapped = map_answers([outcome.answer], spec.columns, [True], exchange.redact)
    exchange.row = {name: series.to_list()[0] for name, series in mapped.columns.items()}
    exchange.mapping_error = mapped.errors[0]
