"""The aiohttp sender's URLs: the same yarl URL as parsing the whole text, whatever the text."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import example, given, settings
from hypothesis import strategies as st
from yarl import URL

from service.calling.encoded_urls import EncodedUrls

ORIGINS = st.sampled_from(
    [
        "http://127.0.0.1:8123",
        "HTTPS://api.example.com",
        "http://user:p%40ss@host:80",
        "http://[::1]:9000",
        "http://h?x=",  # a query where the authority ends: its "/" is the query's
        "http://h#f",
        "//relative.host",
        "mailto:",
        "é:",
        "",
    ]
)
# Every character with a meaning to a URL parser, some yarl removes, and a few others.
TAILS = st.text(alphabet="/?#%.:@[]\\\t\r\n aZ9-_~é\u2100", max_size=30)


def parts(url: URL) -> tuple[str, ...]:
    return (
        url.scheme, url.raw_authority, url.raw_path, url.raw_query_string, url.raw_fragment, str(url)
    )  # fmt: skip


def parsed(parse: Callable[[str], URL], text: str) -> tuple[str, ...] | type[Exception]:
    """The URL's parts, or the kind of error parsing it raised (yarl's own, whichever)."""
    try:
        return parts(parse(text))
    except Exception as exc:
        return type(exc)


@settings(max_examples=1000)  # pure and quick
@given(ORIGINS | st.text(alphabet="htps:/[]@1é", max_size=12), TAILS)
@example("http://127.0.0.1:8123", "/v1/lookup/10.0.0.1")
@example("http://127.0.0.1:8123", "/v1/lookup?ip=10.0.0.1&key=%20")
@example("http://h?x=", "/y")
@example("http://[::1]:9000", "/a?b#c")
@example("é", "://b/c")  # no scheme: a path
def test_a_url_is_what_yarl_makes_of_the_whole_text(origin: str, tail: str) -> None:
    urls = EncodedUrls()
    text = origin + tail
    ours = parsed(urls, text)
    assert ours == parsed(lambda whole: URL(whole, encoded=True), text)
    assert parsed(urls, text) == ours  # asked again: the origin now comes from what was kept


def test_an_origin_past_the_limit_is_parsed_whole_and_not_kept() -> None:
    urls = EncodedUrls(most_origins=2)
    texts = [f"http://host{i}.test/k?q={i}" for i in range(4)]
    assert [str(urls(text)) for text in texts] == texts
    assert len(urls._origins) == 2
