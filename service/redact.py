"""Removing secrets from text before it reaches a message, a log, a file or a cache.

A secret can come back in other forms than it was sent: a server echoing a query parameter
percent-encodes it (in upper- or lower-case hex), a form encodes spaces as '+', a JSON body
escapes quotes, backslashes and non-ASCII characters. Every such form is replaced, and text is
shortened only after it is redacted, so that no cut can leave a secret's beginning behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "***"
MESSAGE_LENGTH = 120  # the longest message a row carries
_PERCENT = re.compile(r"%[0-9A-F]{2}")


def forms_of(secret: str) -> set[str]:
    """The forms in which ``secret`` may come back in an answer or an echoed request."""
    encoded = {quote(secret, safe=""), quote(secret, safe="/"), quote_plus(secret)}
    encoded |= {_PERCENT.sub(lambda m: m.group(0).lower(), form) for form in encoded}
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    return {secret} | encoded | escaped


class Redactor:
    """Replaces every form of every known secret in a text with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for secret in secrets if secret for form in forms_of(secret)}
        # Longest first, so that a form containing another is replaced whole.
        self._forms = tuple(sorted(forms, key=len, reverse=True))

    def learn(self, secret: str) -> None:
        """Know ``secret`` from now on (one that arrives during a job: an access token)."""
        if secret:
            forms = set(self._forms) | forms_of(secret)
            self._forms = tuple(sorted(forms, key=len, reverse=True))

    def finds_in(self, text: str) -> bool:
        """Whether ``text`` holds a secret, in any of its forms."""
        return any(form in text for form in self._forms)

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text


def shorten(text: str, limit: int = MESSAGE_LENGTH) -> str:
    """``text`` on one line and at most ``limit`` characters (redact it first)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
