"""``enrich try SPEC KEY=VALUE...``: one request for one key, shown as httpie shows an exchange (the
request, each answer with its status, headers and time, the body pretty and cut), then the row it
makes: the columns with their types, or the row's error class. Secrets are shown as ``***``;
characters that could drive a terminal are escaped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

import orjson

from enrich.cli.exits import EXIT_ROW_FAILED, UsageError
from enrich.cli.process import run_on_fast_loop
from flows.secret_blocks import load_spec_with_blocks
from service import Exchange, Hop, Spec, ask_once

BODY_LINES_SHOWN = 40
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def try_command(args: argparse.Namespace) -> int:
    """Ask the API about one key and show the exchange; 0 when the row is ok, 4 when it failed."""
    spec = load_spec_with_blocks(args.spec, os.environ)
    key = key_of(spec, args.values)
    exchange = run_on_fast_loop(ask_once(spec, key))
    for line in show_exchange(exchange, spec, body_lines=None if args.full else BODY_LINES_SHOWN):
        print(line)
    return 0 if exchange.ok else EXIT_ROW_FAILED


def key_of(spec: Spec, values: list[str]) -> tuple[Any, ...]:
    """The key ``NAME=TEXT`` / ``NAME:=JSON`` arguments give, in the spec's key order; a
    ``UsageError`` naming a column missing, unknown or given twice."""
    given: dict[str, Any] = {}
    for text in values:
        name, separator, value = text.partition("=")
        if not separator or not name:
            raise UsageError(f"{text!r}: give each key column as NAME=VALUE (text) or NAME:=JSON")
        if name.endswith(":"):
            name = name[:-1]
            try:
                given_value = json.loads(value)
            except ValueError:
                raise UsageError(f"{name}:={value}: not JSON (use {name}=TEXT for text)") from None
        else:
            given_value = value
        if name in given:
            raise UsageError(f"key column '{name}' is given twice")
        given[name] = given_value
    unknown = [name for name in given if name not in spec.key]
    if unknown:
        raise UsageError(f"'{unknown[0]}' is not a key column (input.key: {', '.join(spec.key)})")
    missing = [name for name in spec.key if name not in given]
    if missing:
        raise UsageError(f"give a value for key column '{missing[0]}' (input.key: {', '.join(spec.key)})")
    return tuple(given[name] for name in spec.key)


def show_exchange(exchange: Exchange, spec: Spec, *, body_lines: int | None) -> Iterator[str]:
    """The lines that show ``exchange``: each hop's request and answer, then the row."""
    shown = _Shown(exchange.redact)
    for hop in exchange.hops:
        yield from _request_lines(hop, shown)
        yield ""
        yield from _answer_lines(hop, shown, body_lines)
        yield ""
    yield from _row_lines(exchange, spec, shown)


class _Shown:
    """Text fit to print: secrets replaced, control characters escaped."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self.redact = redact

    def __call__(self, text: str) -> str:
        return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", self.redact(text))


def _request_lines(hop: Hop, shown: _Shown) -> Iterator[str]:
    request = hop.request
    yield shown(f"{request.method} {request.url}")
    yield from (shown(f"{name}: {value}") for name, value in hop.headers.items())
    if request.body is not None:
        yield ""
        yield from _body_lines(request.body, shown, None)


def _answer_lines(hop: Hop, shown: _Shown, body_lines: int | None) -> Iterator[str]:
    took = f"{hop.elapsed_s * 1000:.1f} ms"
    if hop.response is None:
        assert hop.error is not None
        yield shown(f"no answer after {took}: {hop.error.error_class.value}: {hop.error.message}")
        return
    response = hop.response
    yield f"HTTP {response.status} {_reason(response.status)}, {took}"
    yield from (shown(f"{name}: {value}") for name, value in (response.headers or {}).items())
    if response.body:
        yield ""
        yield from _body_lines(response.body, shown, body_lines)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _body_lines(body: bytes, shown: _Shown, limit: int | None) -> Iterator[str]:
    """A body as JSON, pretty, when it is JSON (every digit of a long integer kept); as the text
    it is otherwise (NaN, nesting too deep to lay out); at most ``limit`` lines."""
    try:
        text = json.dumps(json.loads(body, parse_constant=_not_json), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        text = body.decode("utf-8", errors="replace")
    lines = shown(text).splitlines()
    if limit is not None and len(lines) > limit:
        yield from lines[:limit]
        yield f"... {len(lines) - limit:,} more lines ({len(body):,} bytes in all; --full shows them)"
    else:
        yield from lines


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _row_lines(exchange: Exchange, spec: Spec, shown: _Shown) -> Iterator[str]:
    outcome = exchange.outcome
    assert outcome is not None  # ask_once settles every key it is given
    if outcome.error is not None:
        yield shown(f"row failed: {outcome.error.value}: {outcome.message or ''}")
        return
    if exchange.mapping_error is not None:
        yield shown(f"row failed: mapping: {exchange.mapping_error}")
    else:
        yield "row ok"
    width = max(len(column.name) for column in spec.columns)
    type_width = max(len(column.type) for column in spec.columns)
    for column in spec.columns:
        value = orjson.dumps(exchange.row.get(column.name)).decode()
        yield shown(f"  {column.name:<{width}}  {column.type:<{type_width}}  {value}")
