"""Turning a key into a request: pure, and safe against hostile values.

A value substituted into the URL path is percent-encoded as exactly one path segment (``/``, ``?``,
``#``, ``%``, spaces and non-ASCII included; ``.`` and ``..`` encoded too, since clients and servers
resolve dot-segments, RFC 3986 section 5.2.4), and query values are encoded whole, so a row's value
can neither change the path nor add parameters.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from service.calling.bodies import ACCEPT_ENCODING
from service.errors import CallError, ErrorClass
from service.spec import RequestSpec
from service.spec.templates import BULK_KEYS_MARKER, Template, value_text

Key = tuple[Any, ...]

_VERSION = "0.1.0"


# One a request: a frozen dataclass's __init__ (object.__setattr__ a field) took 550 ns here,
# this one 150. Nothing changes it once made.
@dataclass(slots=True)
class PreparedRequest:
    """A request ready to send: the method, the encoded URL, the body bytes, the key it asks
    about (None for a bulk request, which asks about many), and whether it goes to another origin
    than the API's (a redirect hop: sent without the spec's secret-bearing headers)."""

    method: str
    url: str
    body: bytes | None
    key: Key | None = None
    foreign: bool = False


# What percent-encoding leaves as it is (RFC 3986's unreserved characters, urllib's always-safe
# set): most keys (ids, IPs, codes) are only these, and a match costs a fifth of quote().
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")
_DOT_SEGMENTS = (".", "..")


def encode_path_segment(text: str) -> str:
    """Percent-encode ``text`` as one path segment that no client or server will reinterpret."""
    if text in _DOT_SEGMENTS:
        return text.replace(".", "%2E")
    if _UNRESERVED.fullmatch(text):
        return text
    return quote(text, safe="")


def request_headers(request: RequestSpec) -> dict[str, str]:
    """Headers sent with every request: defaults, then the spec's (which win)."""
    headers = {
        "User-Agent": f"enrich/{_VERSION}",
        "Accept": "application/json",
        "Accept-Encoding": ACCEPT_ENCODING,
    }
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    headers.update(dict(request.headers))
    return headers


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return value


class RequestBuilder:
    """Builds the ``PreparedRequest`` for a key (or, in bulk mode, a list of keys)."""

    def __init__(self, request: RequestSpec, key_columns: Sequence[str]) -> None:
        index = {name: i for i, name in enumerate(key_columns)}
        self.method = request.method
        self._origin = request.origin
        self._path = tuple(p if isinstance(p, str) else index[p.name] for p in request.path.parts)
        self._query = tuple(
            (quote(name, safe=""), tuple(p if isinstance(p, str) else index[p.name] for p in t.parts))
            for name, t in request.query
        )
        self._body = request.body
        self._index = index
        self._key_columns = tuple(key_columns)
        self._static_url = (
            self._url_for(())
            if all(isinstance(p, str) for p in self._path)
            and not any(isinstance(p, int) for _, parts in self._query for p in parts)
            else None
        )
        self._around_one_segment = self._one_segment_url()

    def _one_segment_url(self) -> tuple[str, int, str] | None:
        """For a URL whose only variable part is one path segment (``/v1/ip/{ip}``, no query, no
        body): the text before it, the key's position, the text after it."""
        columns = [i for i, part in enumerate(self._path) if isinstance(part, int)]
        if len(columns) != 1 or self._query or self._body is not None:
            return None
        (at,) = columns
        before = self._origin + "".join(str(part) for part in self._path[:at])
        return before, int(self._path[at]), "".join(str(part) for part in self._path[at + 1 :])

    def build(self, key: Key) -> PreparedRequest:
        """The request for one key. Raises ``CallError(INVALID_KEY)`` for a key that cannot be sent."""
        around = self._around_one_segment
        if around is not None:  # the common shape, once per request: a key that needs no escaping
            value = key[around[1]]
            if type(value) is str and value not in _DOT_SEGMENTS and _UNRESERVED.fullmatch(value):
                return PreparedRequest(self.method, around[0] + value + around[2], None, key)
        for value in key:
            if value is None:
                raise CallError(ErrorClass.INVALID_KEY, "key has a null value")
        url = self._static_url if self._static_url is not None else self._url_for(key)
        body = None if self._body is None else orjson.dumps(self._fill(self._body, key, None))
        return PreparedRequest(self.method, url, body, key)

    def build_bulk(self, keys: Sequence[Key]) -> PreparedRequest:
        """One request for several keys (bulk mode): the key list goes where ``{@keys}`` stands."""
        if len(self._key_columns) == 1:
            listed: list[Any] = [_json_value(k[0]) for k in keys]
        else:
            listed = [{c: _json_value(v) for c, v in zip(self._key_columns, k, strict=True)} for k in keys]
        # A bulk request uses no column outside {@keys} (the spec's compile step checks it): its
        # URL is the same for every chunk.
        assert self._static_url is not None
        return PreparedRequest(
            self.method, self._static_url, orjson.dumps(self._fill(self._body, (), listed))
        )

    def _url_for(self, key: Key) -> str:
        pieces = [self._origin]
        for part in self._path:
            if isinstance(part, str):
                pieces.append(part)
                continue
            text = value_text(key[part])
            if not text:
                raise CallError(ErrorClass.INVALID_KEY, "key is empty where the URL path needs it")
            pieces.append(encode_path_segment(text))
        separator = "?"
        for name, parts in self._query:
            value = "".join(p if isinstance(p, str) else value_text(key[p]) for p in parts)
            pieces.append(f"{separator}{name}={quote(value, safe='')}")
            separator = "&"
        return "".join(pieces)

    def _fill(self, node: Any, key: Key, bulk_keys: list[Any] | None) -> Any:
        if isinstance(node, Template):
            whole = node.whole_column
            if whole == BULK_KEYS_MARKER:
                return bulk_keys
            if whole is not None:
                return _json_value(key[self._index[whole]])
            return "".join(
                p if isinstance(p, str) else value_text(key[self._index[p.name]]) for p in node.parts
            )
        if isinstance(node, dict):
            return {k: self._fill(v, key, bulk_keys) for k, v in node.items()}
        if isinstance(node, list):
            return [self._fill(v, key, bulk_keys) for v in node]
        return node
