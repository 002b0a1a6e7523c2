"""Which failed calls are retried, and after how long: pure decisions over a ``CallError``."""

from __future__ import annotations

from collections.abc import Callable

from service.backoff import backoff_delay, parse_retry_after
from service.errors import CallError, ErrorClass
from service.spec import RetrySection

_RETRYABLE_WITHOUT_STATUS = frozenset({ErrorClass.TIMEOUT, ErrorClass.CONNECT})


def is_retryable(error: CallError, policy: RetrySection) -> bool:
    """True for a configured status code, a timeout or a connection error; False for the rest.

    Any other 4xx, an answer that is not JSON, and a key that cannot be sent are final.
    """
    if error.status is not None:
        return error.status in policy.retry_on_status
    return error.error_class in _RETRYABLE_WITHOUT_STATUS


def retry_delay(
    error: CallError,
    attempt: int,
    policy: RetrySection,
    *,
    random: Callable[[], float],
    wall_now: float,
) -> float:
    """Seconds before the next attempt, after ``attempt`` (1-based) failed with ``error``.

    A ``Retry-After`` the server sent wins over the backoff, up to ``retry_after_cap_s``.
    """
    told = parse_retry_after(error.retry_after, wall_now)
    if told is not None:
        return min(told, policy.retry_after_cap_s)
    return backoff_delay(attempt, policy.backoff, random)
