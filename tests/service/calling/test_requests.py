"""Request building: hostile values stay inside their one path segment or query value."""

from __future__ import annotations

import datetime as dt
import string
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from service import CallError, ErrorClass
from service.calling.requests import RequestBuilder, encode_path_segment, request_headers
from service.spec.templates import value_text
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


# Any text; and short ASCII runs mostly of the characters left as they are, with a few beside
# them that must be escaped (one of those slipping through the fast path is the bug to catch).
_NEAR_UNRESERVED = st.text(
    alphabet=string.ascii_letters + string.digits + "_.~-%/?#& +", min_size=1, max_size=6
)


@given(st.text(min_size=1) | _NEAR_UNRESERVED)
def test_a_path_segment_is_encoded_as_quote_would(value: str) -> None:
    """The fast path for keys needing no escape changes nothing: every segment but "." and ".."
    (which no client may resolve) is what ``quote(value, safe="")`` makes of it."""
    expected = value.replace(".", "%2E") if value in (".", "..") else quote(value, safe="")
    assert encode_path_segment(value) == expected


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
    assert (request.method, request.url, request.key) == ("POST", "http://api.test/v1/bulk", None)
    assert orjson.loads(request.body or b"") == {"keys": ["a", "b/c"]}
    nested = make_spec(
        '[api]\nmethod = "POST"\nurl = "http://api.test/v1/bulk"\n'
        'body = { batches = [{ ids = "{@keys}", tag = "t" }] }\n'
        '[bulk]\nsize = 10\nresults = "results"\nmatch = "key"\n'
    )
    request = RequestBuilder(nested.request, nested.key).build_bulk([("a",)])
    assert orjson.loads(request.body or b"") == {"batches": [{"ids": ["a"], "tag": "t"}]}
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


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("1.2.3.4", "http://api.test/v1/1.2.3.4?q=1.2.3.4&lang=en"),
        ("a/b", "http://api.test/v1/a%2Fb?q=a%2Fb&lang=en"),
        ("a b?c#d", "http://api.test/v1/a%20b%3Fc%23d?q=a%20b%3Fc%23d&lang=en"),
        ("100%", "http://api.test/v1/100%25?q=100%25&lang=en"),
        ("é", "http://api.test/v1/%C3%A9?q=%C3%A9&lang=en"),
        (".", "http://api.test/v1/%2E?q=.&lang=en"),
        ("..", "http://api.test/v1/%2E%2E?q=..&lang=en"),
        ("a&b=c", "http://api.test/v1/a%26b%3Dc?q=a%26b%3Dc&lang=en"),
    ],
)
def test_urls_are_built_exactly(value: str, url: str) -> None:
    """The whole URL for a key, path segment and query value each percent-encoded as one (a
    slash too), dot segments encoded in the path only."""
    spec = make_spec('[api]\nurl = "http://api.test/v1/{k}?q={k}"\nparams = { lang = "en" }\n')
    request = RequestBuilder(spec.request, spec.key).build((value,))
    assert (request.method, request.url, request.body, request.key) == ("GET", url, None, (value,))


def test_a_parameter_name_is_encoded_and_a_fixed_url_built_once() -> None:
    """A parameter's name is encoded whole; a URL with no column in it is the same for every key
    (the key is still the request's)."""
    spec = make_spec('[api]\nurl = "http://api.test/v1/all"\nparams = { "a b/c" = "x/y" }\n')
    builder = RequestBuilder(spec.request, spec.key)
    first, second = builder.build(("k1",)), builder.build(("k2",))
    assert first.url == second.url == "http://api.test/v1/all?a%20b%2Fc=x%2Fy"
    assert (first.key, second.key) == (("k1",), ("k2",))


def test_a_key_that_cannot_be_sent_says_why() -> None:
    """A null anywhere in the key, or an empty value where the path needs one."""
    spec = make_spec('[api]\nurl = "http://api.test/v1/{k}"\n')
    builder = RequestBuilder(spec.request, spec.key)
    with pytest.raises(CallError, match=r"^key has a null value$"):
        builder.build((None,))
    with pytest.raises(CallError, match=r"^key is empty where the URL path needs it$"):
        builder.build(("",))


def test_the_headers_every_request_carries() -> None:
    """Enrich's own defaults, then the spec's (which win); a JSON content type only with a body."""
    spec = make_spec(
        '[api]\nurl = "http://api.test/{k}"\nheaders = { Accept = "text/x-json", X-Key = "v" }\n'
    )
    assert request_headers(spec.request) == {
        "User-Agent": "enrich/0.1.0",
        "Accept": "text/x-json",
        "Accept-Encoding": "gzip, deflate",
        "X-Key": "v",
    }
    plain = make_spec('[api]\nurl = "http://api.test/{k}"\n')
    assert request_headers(plain.request) == {
        "User-Agent": "enrich/0.1.0",
        "Accept": "application/json",
        "Accept-Encoding": "gzip, deflate",
    }


def test_a_body_fills_nested_lists_and_objects() -> None:
    """Columns anywhere in a body's lists and objects; text around a column makes text."""
    spec = make_spec(
        '[api]\nmethod = "POST"\nurl = "http://api.test/q"\n'
        'body = { items = [{ id = "{a}", label = "id-{a}/{b}" }, ["{b}", 3]], fixed = true }\n',
        key='["a", "b"]',
    )
    request = RequestBuilder(spec.request, spec.key).build((7, "x"))
    assert orjson.loads(request.body or b"") == {
        "items": [{"id": 7, "label": "id-7/x"}, ["x", 3]],
        "fixed": True,
    }


def test_a_query_value_with_text_around_its_column() -> None:
    """The text and the column's value make one value, encoded whole."""
    spec = make_spec('[api]\nurl = "http://api.test/v1"\nparams = { q = "id:{k}:end" }\n')
    assert (
        RequestBuilder(spec.request, spec.key).build(("a b",)).url == "http://api.test/v1?q=id%3Aa%20b%3Aend"
    )


@given(st.text() | _NEAR_UNRESERVED | st.integers() | st.none())
@example(".")
@example("..")
@example("a.b")
@example(True)
def test_a_url_with_one_key_segment_is_the_general_one(value: object) -> None:
    """The shortcut for URLs whose only variable part is one path segment (no query, no body)
    builds what the general path does: the same escaping, dot segments included, and the same
    refusal of a null or empty key."""
    spec = make_spec(url="http://api.test/v1/lookup/{k}/info")
    builder = RequestBuilder(spec.request, spec.key)
    if value is None or value == "":
        with pytest.raises(CallError) as refused:
            builder.build((value,))
        assert refused.value.error_class is ErrorClass.INVALID_KEY
        return
    text = value_text(value)  # booleans as JSON writes them
    segment = text.replace(".", "%2E") if text in (".", "..") else quote(text, safe="")
    request = builder.build((value,))
    assert request.url == f"http://api.test/v1/lookup/{segment}/info"
    assert (request.method, request.body, request.key) == ("GET", None, (value,))
