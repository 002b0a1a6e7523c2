"""Request building: hostile values stay inside their one path segment or query value."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
import pytest

from service import CallError, ErrorClass
from service.calling.requests import RequestBuilder, request_headers
from tests.helpers import make_spec

HOSTILE = [
    "a/b",
    "../admin",
    "..",
    ".",
    "x?admin=1",
    "x#frag",
    "100%",
    "%2F",
    "two words",
    "naïve-日本",
    "a&b=c",
    "tab\there",
    "semi;colon",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_path_value_is_one_segment(value: str) -> None:
    """The value comes back whole as the last path segment; path and query are untouched."""
    spec = make_spec(url="http://api.test/v1/lookup/{k}/info?fixed=1")
    request = RequestBuilder(spec.request, spec.key).build((value,))
    parts = urlsplit(request.url)
    assert parts.netloc == "api.test"
    segments = parts.path.split("/")
    assert segments[:3] == ["", "v1", "lookup"]
    assert segments[4:] == ["info"]
    assert unquote(segments[3]) == value
    assert segments[3] not in (".", "..")
    assert parse_qsl(parts.query) == [("fixed", "1")]
    assert parts.fragment == ""
    assert request.url.isascii()


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_query_value_is_one_parameter(value: str) -> None:
    """A value in a parameter cannot add parameters."""
    spec = make_spec('[api]\nurl = "http://api.test/v1"\nparams = { q = "{k}", lang = "en" }\n')
    request = RequestBuilder(spec.request, spec.key).build((value,))
    parts = urlsplit(request.url)
    assert parts.path == "/v1"
    assert parse_qsl(parts.query, keep_blank_values=True) == [("q", value), ("lang", "en")]


def test_null_or_empty_path_value_is_invalid_key() -> None:
    """A null key, or an empty one in the path, cannot be requested."""
    spec = make_spec()
    builder = RequestBuilder(spec.request, spec.key)
    for key in [(None,), ("",)]:
        with pytest.raises(CallError) as info:
            builder.build(key)
        assert info.value.error_class is ErrorClass.INVALID_KEY


def test_values_are_formatted_for_urls() -> None:
    """Booleans lower case, dates ISO 8601, numbers as written."""
    spec = make_spec(url="http://api.test/{a}/{b}/{c}/{d}", key='["a", "b", "c", "d"]')
    request = RequestBuilder(spec.request, spec.key).build((True, dt.date(2024, 1, 2), 42, 1.5))
    assert request.url == "http://api.test/true/2024-01-02/42/1.5"


def test_post_body_template_keeps_types() -> None:
    """A whole-value placeholder keeps the JSON type; an embedded one becomes text."""
    spec = make_spec(
        '[api]\nmethod = "POST"\nurl = "http://api.test/v1"\n'
        'body = { id = "{n}", label = "n={n}", fixed = [1, "x"], nested = { d = "{n}" } }\n',
        key='["n"]',
    )
    builder = RequestBuilder(spec.request, spec.key)
    request = builder.build((7,))
    assert request.method == "POST"
    assert orjson.loads(request.body or b"") == {
        "id": 7,
        "label": "n=7",
        "fixed": [1, "x"],
        "nested": {"d": 7},
    }
    assert request_headers(spec.request)["Content-Type"] == "application/json"


def test_bulk_body_lists_keys() -> None:
    """{@keys} becomes the list of key values (objects for composite keys)."""
    spec = make_spec(
        '[api]\nmethod = "POST"\nurl = "http://api.test/v1/bulk"\nbody = { keys = "{@keys}" }\n'
        '[bulk]\nsize = 10\nresults = "results"\nmatch = "key"\n'
    )
    request = RequestBuilder(spec.request, spec.key).build_bulk([("a",), ("b/c",)])
    assert request.url == "http://api.test/v1/bulk"
    assert orjson.loads(request.body or b"") == {"keys": ["a", "b/c"]}
    composite = make_spec(
        '[api]\nmethod = "POST"\nurl = "http://api.test/v1/bulk"\nbody = { keys = "{@keys}" }\n'
        '[bulk]\nsize = 10\nresults = "results"\nmatch = ["a", "b"]\n',
        key='["a", "b"]',
    )
    request = RequestBuilder(composite.request, composite.key).build_bulk([(1, "x")])
    assert orjson.loads(request.body or b"") == {"keys": [{"a": 1, "b": "x"}]}


def test_secret_from_environment_is_not_reparsed() -> None:
    """A secret holding braces stays literal (it is not read as a column reference)."""
    spec = make_spec(
        '[api]\nurl = "http://api.test/v1/{k}"\nparams = { token = "${TOKEN}" }\n', TOKEN="{k}&x=1"
    )
    request = RequestBuilder(spec.request, spec.key).build(("v",))
    assert parse_qsl(urlsplit(request.url).query) == [("token", "{k}&x=1")]
