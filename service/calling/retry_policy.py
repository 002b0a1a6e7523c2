"""Which attempts are retried, and after how long: the one question the workers ask after an
attempt that did not end well (wait this long and try again, or stop).

The condition and the wait are tenacity objects (``service.calling.retry_rules``): the spec's
``[retry]`` section compiled, or a Python caller's own. Around them the engine keeps what it owes
the API whatever the condition: at most ``[retry].attempts`` attempts, a ``Retry-After`` the
server sent wins over any wait (up to ``retry_after_cap_s``), and the job's retry budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tenacity
from tenacity.wait import wait_base

from service.calling.backoff import parse_retry_after
from service.calling.clock import Clock
from service.calling.retry_budget import RetryBudget
from service.calling.retry_rules import is_retryable, reads_answers, section_retry, spec_wait
from service.errors import CallError
from service.spec import AnswerConditions, RetrySection, Spec
from service.stats import StatsRecorder

__all__ = ["RetryPolicy", "is_retryable"]


class RetryPolicy:
    """A spec's ``[retry]`` section (or ``retry`` and ``wait`` given in its place), with the
    randomness and the clock its delays need.

    ``retrying`` is the whole policy as one ``tenacity.AsyncRetrying`` (its condition, wait and
    ``stop_after_attempt``), for showing and for the ``RetryCallState`` objects built here; the
    engine never runs its loop.
    """

    def __init__(
        self,
        section: RetrySection,
        *,
        random: Callable[[], float],
        clock: Clock,
        conditions: AnswerConditions | None = None,
        retry: tenacity.retry_base | None = None,
        wait: wait_base | None = None,
    ) -> None:
        self._section = section
        self._clock = clock
        self.retry = retry if retry is not None else section_retry(section, conditions)
        self.wait = wait if wait is not None else spec_wait(section, random)
        self.given_in_python = retry is not None
        # Only then is a successful attempt's answer shown to the condition.
        self.reads_answers = reads_answers(self.retry)
        self.retrying = tenacity.AsyncRetrying(
            retry=self.retry, wait=self.wait, stop=tenacity.stop_after_attempt(section.attempts)
        )
        self.budget = RetryBudget(section.budget, clock)

    @classmethod
    def for_spec(
        cls,
        spec: Spec,
        *,
        random: Callable[[], float],
        clock: Clock,
        retry: tenacity.retry_base | None = None,
        wait: wait_base | None = None,
    ) -> RetryPolicy:
        """The policy of ``spec`` (its ``[retry]`` section and answer conditions), with tenacity's
        ``retry`` and ``wait``, when given, in place of the spec's condition and backoff."""
        return cls(spec.retry, random=random, clock=clock, conditions=spec.conditions, retry=retry, wait=wait)

    @property
    def retry_after_cap_s(self) -> float:
        """The longest wait the API may ask for (``Retry-After``, an exhausted quota)."""
        return self._section.retry_after_cap_s

    def retries_answer(self, answer: Any, attempt: int) -> bool:
        """Whether the condition wants attempt ``attempt``, which got ``answer``, made again."""
        state = tenacity.RetryCallState(self.retrying, None, (), {})
        state.attempt_number = attempt
        state.set_result(answer)
        return bool(self.retry(state))

    def next_delay(self, error: CallError, attempts: int, stats: StatsRecorder) -> float | None:
        """After ``attempts`` attempts, the last failing with ``error``: the seconds to wait before
        the next one, or None when ``error`` is final (the condition says so, no attempt is left,
        or the job's retry budget is spent: then its message says so, and ``stats`` counts it).
        An answer the condition already chose to retry (``retry_chosen``) is not asked again."""
        if attempts >= self._section.attempts:
            return None
        state = None
        if not error.retry_chosen:
            state = self._failed_state(error, attempts)
            if not self.retry(state):
                return None
        if not self.budget.allows_retry():
            stats.retries_refused += 1
            error.message += " (not retried: the job's retry budget is spent, the API fails too often)"
            return None
        return self.delay(error, attempts, state)

    def delay(self, error: CallError, attempt: int, state: tenacity.RetryCallState | None = None) -> float:
        """The wait after failed attempt ``attempt``: the server's ``Retry-After``, else the wait's,
        asked with the ``state`` the condition was asked with, when there is one (tenacity asks
        its condition and its wait with one state per attempt)."""
        told = parse_retry_after(error.retry_after, self._clock.wall())
        if told is not None:
            return min(told, self._section.retry_after_cap_s)
        return float(self.wait(state if state is not None else self._failed_state(error, attempt)))

    def _failed_state(self, error: CallError, attempt: int) -> tenacity.RetryCallState:
        state = tenacity.RetryCallState(self.retrying, None, (), {})
        state.attempt_number = attempt
        state.set_exception((type(error), error, None))
        return state
