"""Classifying an answer: pure, the same for every sender."""

from __future__ import annotations

import pytest

from service import CallError, ErrorClass
from service.calling.answers import answer_of, http_message
from service.calling.outcome import failed_outcome
from service.calling.sending import RawResponse
from service.redact import Redactor


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (429, ErrorClass.RATE_LIMITED),
        (400, ErrorClass.HTTP_4XX),
        (404, ErrorClass.HTTP_4XX),
        (499, ErrorClass.HTTP_4XX),
        (500, ErrorClass.HTTP_5XX),
        (503, ErrorClass.HTTP_5XX),
        (599, ErrorClass.HTTP_5XX),
        (304, ErrorClass.HTTP_4XX),  # a status the API should not send: final, like a client error
    ],
)
def test_each_status_gets_its_class_and_keeps_retry_after(status: int, error_class: ErrorClass) -> None:
    """Every non-2xx answer raises a CallError with its class, status and Retry-After."""
    with pytest.raises(CallError) as raised:
        answer_of(RawResponse(status, b"nope", "7"))
    assert (raised.value.error_class, raised.value.status, raised.value.retry_after) == (
        error_class,
        status,
        "7",
    )
    assert raised.value.message == f"HTTP {status}: nope"


def test_a_2xx_answer_is_its_json_and_an_empty_body_is_null() -> None:
    """200/201/204 with JSON, or with a blank body (null: every column null, the row still ok)."""
    assert answer_of(RawResponse(200, b'{"a": [1, 2]}', None)) == {"a": [1, 2]}
    assert answer_of(RawResponse(201, b"  \n", None)) is None
    assert answer_of(RawResponse(204, b"", None)) is None


def test_a_2xx_body_that_is_not_json_is_invalid_json() -> None:
    """A truncated document fails as invalid_json, with its status, never as an exception."""
    with pytest.raises(CallError) as raised:
        answer_of(RawResponse(200, b'{"key": "trunc', None))
    assert raised.value.error_class is ErrorClass.INVALID_JSON
    assert raised.value.status == 200
    assert raised.value.message.startswith("answer is not JSON")


def test_messages_are_one_line_shortened_only_once_redacted() -> None:
    """The start of a body becomes one line, long enough to hold any secret starting in it; the
    row's message is that line redacted, then cut to 120 characters."""
    assert http_message(502, b"") == "HTTP 502"
    assert http_message(500, b"line one\nline  two") == "HTTP 500: line one line two"
    assert http_message(500, b"x" * 9000) == "HTTP 500: " + "x" * 4096
    secret = "s3cr3t-" + "k" * 40
    body = ("y" * 100 + secret).encode()  # the secret straddles the 120th character
    error = CallError(ErrorClass.HTTP_5XX, http_message(500, body), status=500)
    message = failed_outcome(error, 1, Redactor([secret])).message or ""
    assert "s3cr" not in message
    assert message == "HTTP 500: " + "y" * 100 + "***"
