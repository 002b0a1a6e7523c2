"""What a 2xx answer says about itself: that it is not ready yet, or that it failed.

Many APIs answer ``200 {"status": "pending"}`` or ``200 {"error": {...}}``. After an attempt gets
an answer, ``AnswerJudge`` asks the retry condition (when it reads answers: ``[retry].retry_when``
or a Python caller's ``retry_if_result``) whether to ask again, then ``[api].error_when`` whether
it failed; either way it raises ``CallError(api_error)``: retried on the usual schedule for the
first (``retry_chosen``), final for the second. The message is the answer's own, at
``[api].error_message``, when it has one.

The retry condition is read first: it names the narrow case ("pending"), ``error_when`` often the
broad one ("any error"), and an answer matching both is worth asking again before it is called
failed. A job with neither has no judge at all (the hot path checks nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jmespath.exceptions
import orjson

from service.calling.retry_policy import RetryPolicy
from service.calling.retry_rules import condition_holds, retry_if_answer_matches
from service.errors import CallError, ErrorClass
from service.spec import AnswerConditions

_GIVEN_IN_PYTHON = "the retry condition given in Python"


class AnswerJudge:
    """Judges each answer by ``conditions`` and ``policy``'s retry condition; built by ``judge_for``."""

    def __init__(self, conditions: AnswerConditions | None, policy: RetryPolicy) -> None:
        self._error_when = None if conditions is None else conditions.error_when
        self._error_message = None if conditions is None else conditions.error_message
        self._paths = {} if conditions is None else conditions.paths
        self._retried_because = _GIVEN_IN_PYTHON
        self._asks_again: Callable[[Any, int], bool] | None = None
        if policy.given_in_python:
            if policy.reads_answers:
                self._asks_again = policy.retries_answer
        elif conditions is not None and conditions.retry_when is not None:
            # The spec's own condition reads answers only through retry_when: asked directly, it
            # costs a JMESPath search, not a RetryCallState and two looks at its outcome.
            matches = retry_if_answer_matches(conditions.retry_when, self._paths["retry_when"]).predicate
            self._asks_again = lambda answer, attempt: matches(answer)
            self._retried_because = f"[retry].retry_when ({self._paths['retry_when']})"

    def judge(self, answer: Any, attempt: int, status: int, retry_after: str | None) -> None:
        """Raise ``CallError(api_error)`` when attempt ``attempt``'s ``answer`` is to be asked again
        (``retry_chosen``, with the answer's ``Retry-After``) or says it failed; ``CallError(mapping)``
        when a condition cannot be evaluated on it. Return quietly for an answer that is what it
        seems."""
        asks_again = self._asks_again
        if asks_again is not None and asks_again(answer, attempt):
            message = self._message(answer, f"answer matches {self._retried_because}")
            raise CallError(
                ErrorClass.API_ERROR, message, status=status, retry_after=retry_after, retry_chosen=True
            )
        if self._error_when is not None and condition_holds(
            self._error_when, answer, "[api].error_when", status
        ):
            message = self._message(answer, f"answer matches [api].error_when ({self._paths['error_when']})")
            raise CallError(ErrorClass.API_ERROR, message, status=status)

    def _message(self, answer: Any, fallback: str) -> str:
        """The answer's own message at ``error_message`` (text as it is, anything else as JSON), or
        ``fallback`` naming the condition, when it has none."""
        told: Any = None
        if self._error_message is not None:
            try:
                told = self._error_message.search(answer)
            except (jmespath.exceptions.JMESPathError, RecursionError):
                told = None
        if told is None or told == "":
            return fallback
        if isinstance(told, str):
            return told
        try:
            return orjson.dumps(told).decode()
        except TypeError:  # past orjson's depth or integer range: Python's repr still says what it is
            return repr(told)


def judge_for(conditions: AnswerConditions | None, policy: RetryPolicy) -> AnswerJudge | None:
    """The judge for a spec's ``conditions`` and ``policy``, or None when there is nothing to judge."""
    if policy.reads_answers or (conditions is not None and conditions.error_when is not None):
        return AnswerJudge(conditions, policy)
    return None
