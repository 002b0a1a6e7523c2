"""The retry vocabulary: tenacity's own condition and wait objects.

A spec's ``[retry]`` section compiles to them (``spec_retry``, ``spec_wait``), and a Python caller
may pass any others (``retry=retry_if_result(...) | retry_if_exception_type(...)``,
``wait=wait_exponential_jitter(...)``). They are evaluated inside the engine's own retry schedule
(``service.calling.retry_policy``), never in a tenacity loop per attempt: a ``RetryCallState`` is
built for a failed attempt, and for a successful one only when the condition reads answers
(``reads_answers``), so the hot path of a job without such a condition builds none.

What an attempt's outcome is, as tenacity sees it: a failed attempt raised a ``CallError``
(carrying its error class, status and ``Retry-After``); a successful one returned the parsed JSON
answer (in bulk mode, the whole answer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jmespath.exceptions
import tenacity
from tenacity.wait import wait_base

from service.calling.backoff import backoff_delay
from service.errors import NO_ANSWER, CallError, ErrorClass
from service.spec import AnswerConditions, BackoffSection, RetrySection, Spec


def is_retryable(error: CallError, policy: RetrySection) -> bool:
    """True for a configured status code, a timeout or a connection error; False for the rest.

    Any other 4xx, an answer that is not JSON, and a key that cannot be sent are final.
    """
    if error.status is not None:
        return error.status in policy.retry_on_status
    return error.error_class in NO_ANSWER


def is_truthy(value: Any) -> bool:
    """JMESPath's truthiness (not Python's: ``0`` is true): false for null, false, and an empty
    string, list or object."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def condition_holds(expression: Any, answer: Any, field: str, status: int | None = None) -> bool:
    """Whether the compiled JMESPath ``expression`` (spec field ``field``) is truthy on ``answer``;
    ``CallError(mapping)`` when it cannot be evaluated on it (``length()`` of a number)."""
    try:
        return is_truthy(expression.search(answer))
    except (jmespath.exceptions.JMESPathError, RecursionError) as exc:
        detail = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        message = f"{field} cannot be evaluated on this answer: {detail}"
        raise CallError(ErrorClass.MAPPING, message, status=status) from None


class retry_if_retryable_error(tenacity.retry_if_exception):  # noqa: N801 - tenacity's naming
    """``[retry].retry_on_status``, timeouts and connection errors: ``is_retryable``."""

    def __init__(self, section: RetrySection) -> None:
        super().__init__(lambda error: isinstance(error, CallError) and is_retryable(error, section))


class retry_if_answer_matches(tenacity.retry_if_result):  # noqa: N801 - tenacity's naming
    """``[retry].retry_when``: an answer on which the JMESPath ``expression`` is truthy. An answer it
    cannot be evaluated on fails its row as ``mapping`` (``CallError`` from the predicate)."""

    def __init__(self, expression: Any, path: str) -> None:
        self.path = path

        def matches(answer: Any) -> bool:
            return condition_holds(expression, answer, "[retry].retry_when")

        super().__init__(matches)


class wait_backoff(wait_base):  # noqa: N801 - tenacity's naming
    """``[retry.backoff]``: exponential with jitter (``backoff_delay``), drawing from ``random``."""

    def __init__(self, backoff: BackoffSection, random: Callable[[], float]) -> None:
        self.backoff = backoff
        self._random = random

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return backoff_delay(retry_state.attempt_number, self.backoff, self._random)


def spec_retry(spec: Spec) -> tenacity.retry_base:
    """The retry condition ``spec`` says, to build on: ``spec_retry(spec) | retry_if_result(...)``
    keeps its rules and adds one."""
    return section_retry(spec.retry, spec.conditions)


def section_retry(section: RetrySection, conditions: AnswerConditions | None = None) -> tenacity.retry_base:
    """The retry condition a ``[retry]`` section says: its retryable errors, or (with
    ``retry_when``) an answer asking to be asked again."""
    errors = retry_if_retryable_error(section)
    if conditions is None or conditions.retry_when is None:
        return errors
    return errors | retry_if_answer_matches(conditions.retry_when, conditions.paths["retry_when"])


def spec_wait(section: RetrySection, random: Callable[[], float]) -> wait_base:
    """The wait a spec's ``[retry.backoff]`` says."""
    return wait_backoff(section.backoff, random)


# Conditions that look only at a failed attempt's error (or at nothing): a successful attempt
# needs no RetryCallState for them.
_ERRORS_ONLY = (tenacity.retry_if_exception, tenacity.retry_if_exception_cause_type)


def reads_answers(retry: Any) -> bool:
    """Whether ``retry`` may want a successful attempt retried (so it must see each answer).
    Conditions Enrich does not know (any callable) are assumed to."""
    if isinstance(retry, tenacity.retry_any | tenacity.retry_all):
        return any(reads_answers(part) for part in retry.retries)
    return not (retry is tenacity.retry_never or isinstance(retry, _ERRORS_ONLY))
