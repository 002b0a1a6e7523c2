"""Secrets are removed in every form they may come back in, before any text is shortened."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from service.redact import Redactor, forms_of, shorten

SECRET = 'S3cr3t/+=x y"é'


@pytest.mark.parametrize(
    "echoed",
    [
        SECRET,
        quote(SECRET, safe=""),  # a query parameter echoed back: S3cr3t%2F%2B%3Dx%20y...
        quote(SECRET, safe="").lower().replace("s3cr3t", "S3cr3t"),  # lower-case hex digits
        quote(SECRET, safe="/"),  # a path segment
        quote_plus(SECRET),  # a form: spaces as '+'
        json.dumps(SECRET)[1:-1],  # inside a JSON string, non-ASCII escaped
        json.dumps(SECRET, ensure_ascii=False)[1:-1],  # inside a JSON string, UTF-8 kept
    ],
)
def test_each_form_a_secret_comes_back_in_is_redacted(echoed: str) -> None:
    """The token sent, percent-encoded (either case), form-encoded or JSON-escaped: gone."""
    assert Redactor([SECRET])(f"error: bad key {echoed} given") == "error: bad key *** given"


def test_forms_include_the_secret_itself() -> None:
    """A secret with nothing to encode has one form, itself."""
    assert forms_of("abc123") == {"abc123"}


def test_a_secret_containing_another_is_replaced_whole() -> None:
    """Longest first: the longer secret is not left half-replaced by the shorter."""
    assert Redactor(["tok", "token-123"])("token-123 and tok") == "*** and ***"


def test_shorten_keeps_one_line_within_the_limit() -> None:
    """Whitespace runs become one space; past the limit, cut with '...'."""
    assert shorten("a\n  b\tc") == "a b c"
    assert shorten("x" * 200, 40) == "x" * 37 + "..."
