"""What a fetch (one key per request, or in bulk) gets from its caller: one frozen bundle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from service.calling.circuit import CircuitBreaker
from service.calling.clock import Clock
from service.calling.outcome import AnswerOutcomes, Outcome
from service.calling.requests import Key, PreparedRequest
from service.calling.retry_policy import RetryPolicy
from service.stats import StatsRecorder


@dataclass(frozen=True, slots=True)
class FetchTools:
    """The caller's pieces a fetch works with: it makes ``attempt``s (counted in the call's
    ``StatsRecorder``), asks ``policy`` after a failed one, stops when ``breaker`` opens, waits on
    ``clock``, makes keys' outcomes of their answers with ``answers``, hands each outcome to
    ``settle`` (with the fetch's results) and redacts messages."""

    attempt: Callable[[PreparedRequest, StatsRecorder, int], Awaitable[tuple[Any, bytes]]]
    policy: RetryPolicy
    breaker: CircuitBreaker
    clock: Clock
    answers: AnswerOutcomes
    settle: Callable[[Key, Outcome, dict[Key, Outcome]], None]
    redact: Callable[[str], str]
