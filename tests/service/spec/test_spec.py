"""The spec file: validation errors name the field, templates and environment resolve."""

from __future__ import annotations

import sys

import pytest

from service import SpecError, UnsetAsPlaceholders, parse_spec
from service.spec import digest, load_spec, with_batch_limits, with_limit_overrides
from tests.helpers import make_spec

BASE = """
[api]
url = "https://api.example.com/v1/ip/{ip}"
[input]
key = "ip"
[output.columns]
country = { path = "country.iso_code", type = "str" }
"""


def test_minimal_spec_has_defaults() -> None:
    """A spec with only api, input and output gets the documented defaults."""
    spec = parse_spec(BASE, environ={})
    assert spec.key == ("ip",)
    assert spec.request.method == "GET"
    assert spec.limits.concurrency == 64
    assert spec.limits.rate is None
    assert spec.retry.attempts == 6
    assert 429 in spec.retry.retry_on_status
    assert 404 not in spec.retry.retry_on_status


def test_toml_syntax_error_names_the_line() -> None:
    """Invalid TOML gives the line number."""
    with pytest.raises(SpecError) as info:
        parse_spec(BASE + "\n[limits\nconcurrency = 3\n", environ={})
    assert info.value.line == 9
    assert "line 9" in str(info.value)


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ("[limits]\nconcurrency = 0\n", "limits.concurrency", "greater than or equal to 1"),
        ("[limits]\nrate = 'fast'\n", "limits.rate", "is not a rate"),
        ("[limits]\nconcurency = 3\n", "limits.concurency", "unknown field"),
        ("[retry]\nattempts = -1\n", "retry.attempts", "greater than or equal to 1"),
        ("[cache]\nttl = 'forever'\n", "cache.ttl", "is not a duration"),
    ],
)
def test_invalid_values_name_the_field(extra: str, field: str, words: str) -> None:
    """Each bad value is reported with its dotted field path."""
    with pytest.raises(SpecError) as info:
        parse_spec(BASE + extra, environ={})
    assert field in str(info.value)
    assert words in str(info.value)


def test_missing_section_is_named() -> None:
    """A missing required section says which."""
    with pytest.raises(SpecError, match=r"output: required field is missing"):
        parse_spec('[api]\nurl = "http://a/{k}"\n[input]\nkey = "k"\n', environ={})


def test_invalid_jmespath_names_the_column() -> None:
    """A JMESPath that does not compile names its column."""
    with pytest.raises(SpecError, match=r"output\.columns\.country\.path: invalid JMESPath"):
        parse_spec(BASE.replace("country.iso_code", "country.[["), environ={})


def test_unknown_column_type_is_rejected() -> None:
    """Only the documented types (and their aliases) are accepted."""
    with pytest.raises(SpecError, match=r"output\.columns\.country\.type"):
        parse_spec(BASE.replace('type = "str"', 'type = "decimal"'), environ={})


def test_type_aliases() -> None:
    """int/float/string/datetime are aliases of i64/f64/str/timestamp."""
    spec = make_spec(
        """
        [output.columns]
        a = { path = "a", type = "int" }
        b = { path = "b", type = "float" }
        c = { path = "c", type = "string" }
        d = { path = "d", type = "datetime" }
        e = { path = "e", type = "boolean" }
        f = { path = "f", type = "json" }
        """
    )
    assert [c.type for c in spec.columns] == ["i64", "f64", "str", "timestamp", "bool", "json"]


def test_environment_fills_headers_and_is_remembered_as_secret() -> None:
    """${NAME} reads the given environment; the value is a secret to redact."""
    spec = parse_spec(
        BASE.replace("[input]", '[api.headers]\nAuthorization = "Bearer ${TOKEN}"\n[input]'),
        environ={"TOKEN": "s3cr{et}"},
    )
    assert ("Authorization", "Bearer s3cr{et}") in spec.request.headers
    assert spec.secrets == frozenset({"s3cr{et}"})


def test_missing_environment_variable_names_field_and_variable() -> None:
    """An unset ${NAME} is an error naming both."""
    with pytest.raises(SpecError, match=r"api\.headers\.Authorization: environment variable 'TOKEN'"):
        parse_spec(
            BASE.replace("[input]", '[api.headers]\nAuthorization = "Bearer ${TOKEN}"\n[input]'),
            environ={},
        )


def test_secret_reference_without_a_store_is_an_error() -> None:
    """${prefect:NAME} needs a resolver (the command line and the flows pass Prefect's)."""
    text = BASE.replace("[input]", '[api.headers]\nX-Key = "${prefect:geo}"\n[input]')
    with pytest.raises(SpecError, match="needs Prefect's API to read the Secret block"):
        parse_spec(text, environ={})
    spec = parse_spec(text, environ={}, resolve_secret=lambda name: f"value-of-{name}")
    assert ("X-Key", "value-of-geo") in spec.request.headers


def test_url_placeholder_must_be_a_key_column() -> None:
    """A request may depend only on key columns, or dedup by key would be wrong."""
    with pytest.raises(SpecError, match=r"api\.url: references column 'other'"):
        make_spec(url="http://api.test/v1/{k}/{other}")


def test_placeholder_in_host_is_rejected() -> None:
    """A row's value can never pick the host."""
    with pytest.raises(SpecError, match="only allowed in the path"):
        make_spec(url="http://{k}.api.test/v1")


def test_url_query_placeholders_become_params() -> None:
    """?a={k} in the URL is treated as a parameter template."""
    spec = make_spec(url="http://api.test/v1/lookup?id={k}&lang=en")
    assert [name for name, _ in spec.request.query] == ["id", "lang"]
    assert spec.request.query[0][1].whole_column == "k"


def test_get_with_body_is_rejected() -> None:
    """A body needs POST."""
    with pytest.raises(SpecError, match=r"api\.body: a GET request has no body"):
        make_spec('[api]\nurl = "http://a.test/x"\nbody = { k = "{k}" }\n')


def test_bulk_requires_keys_marker() -> None:
    """Bulk mode needs a POST body with {@keys}."""
    with pytest.raises(SpecError, match=r"api\.body: bulk mode needs"):
        make_spec(
            '[api]\nmethod = "POST"\nurl = "http://a.test/x"\nbody = { k = "{k}" }\n'
            '[bulk]\nsize = 10\nresults = "results"\nmatch = "key"\n'
        )


def test_output_names_cannot_use_reserved_prefix() -> None:
    """_enrich_* belongs to the engine."""
    with pytest.raises(SpecError, match=r"output\.columns\._enrich_x"):
        make_spec('[output.columns]\n_enrich_x = { path = "a" }\n')


def test_load_spec_missing_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A missing spec file is a SpecError naming the path."""
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.toml", environ={})


def test_rate_units() -> None:
    """Rates accept per-second, per-minute and per-hour forms."""
    assert make_spec("[limits]\nrate = '30/min'\n").limits.rate == pytest.approx(0.5)
    assert make_spec("[limits]\nrate = 250\n").limits.rate == 250
    assert make_spec("[limits]\nrate = '200/s'\n").limits.effective_burst == 10


def test_global_share_is_a_share_of_a_named_limit() -> None:
    """global_share needs global_limit and may not exceed the whole limit (concurrency)."""
    limits = parse_spec(
        BASE + '[limits]\nconcurrency = 8\nglobal_limit = "geo"\nglobal_share = 3\n', environ={}
    )
    assert limits.limits.process_share == 3
    whole = parse_spec(BASE + '[limits]\nconcurrency = 8\nglobal_limit = "geo"\n', environ={})
    assert whole.limits.process_share == 8
    with pytest.raises(SpecError, match="global_share needs global_limit"):
        parse_spec(BASE + "[limits]\nglobal_share = 3\n", environ={})
    with pytest.raises(SpecError, match=r"global_share \(9\) is more than concurrency \(8\)"):
        parse_spec(BASE + '[limits]\nconcurrency = 8\nglobal_limit = "geo"\nglobal_share = 9\n', environ={})
    with pytest.raises(SpecError, match="global_limit"):
        parse_spec(BASE + '[limits]\nglobal_limit = "no spaces/or slashes"\n', environ={})


def test_overriding_concurrency_below_the_share_names_the_limits() -> None:
    """--concurrency 2 with global_share 3 is refused with the cross-field reason."""
    spec = parse_spec(
        BASE + '[limits]\nconcurrency = 8\nglobal_limit = "geo"\nglobal_share = 3\n', environ={}
    )
    with pytest.raises(SpecError, match=r"global_share \(3\) is more than concurrency \(2\)"):
        with_limit_overrides(spec, concurrency=2)


def test_what_decides_an_answer_and_an_output() -> None:
    """The cache's identity ignores the timeout, the sender, HTTP/2 and the output columns; the
    checkpoint's adds the columns; neither sees limits, retries or the secret's value (the
    template text counts)."""
    base = make_spec('[api]\nurl = "http://api.test/{k}"\nheaders = { X-Key = "${KEY}" }\n', KEY="one")
    variants = {
        "other secret value": make_spec(
            '[api]\nurl = "http://api.test/{k}"\nheaders = { X-Key = "${KEY}" }\n', KEY="two"
        ),
        "longer timeout": make_spec(
            '[api]\nurl = "http://api.test/{k}"\nheaders = { X-Key = "${KEY}" }\ntimeout_s = 30\n', KEY="one"
        ),
        "other sender": make_spec(
            '[api]\nurl = "http://api.test/{k}"\nheaders = { X-Key = "${KEY}" }\n'
            'transport = "pyreqwest"\nhttp2 = true\n',
            KEY="one",
        ),
        "other limits": make_spec(
            '[api]\nurl = "http://api.test/{k}"\nheaders = { X-Key = "${KEY}" }\n'
            "[limits]\nconcurrency = 3\n[retry]\nattempts = 9\n",
            KEY="one",
        ),
    }
    for name, variant in variants.items():
        assert variant.answer_identity() == base.answer_identity(), name
        assert variant.output_identity() == base.output_identity(), name
    other_url = make_spec(
        '[api]\nurl = "http://api.test/v2/{k}"\nheaders = { X-Key = "${KEY}" }\n', KEY="one"
    )
    assert other_url.answer_identity() != base.answer_identity()
    other_columns = make_spec(
        '[api]\nurl = "http://api.test/{k}"\nheaders = { X-Key = "${KEY}" }\n'
        '[output.columns]\nname = { path = "name", type = "str" }\nage = { path = "age", type = "i64" }\n',
        KEY="one",
    )
    assert other_columns.answer_identity() == base.answer_identity()
    assert other_columns.output_identity() != base.output_identity()


def test_answer_conditions_decide_answers_only_when_set() -> None:
    """A spec without conditions keeps the identity it had before they existed (its cache and
    checkpoints stay valid); setting error_when or retry_when changes it (a cached answer must
    have passed the same conditions); error_message changes what failed rows say, so it counts too."""
    base = make_spec('[api]\nurl = "http://api.test/{k}"\n')
    assert sorted(base.answer_identity()) == ["api", "bulk", "key"]
    assert sorted(base.answer_identity()["api"]) == [
        "body",
        "headers",
        "method",
        "params",
        "redirects",
        "url",
    ]
    variants = [
        make_spec('[api]\nurl = "http://api.test/{k}"\nerror_when = "error"\n'),
        make_spec('[api]\nurl = "http://api.test/{k}"\nerror_when = "error"\nerror_message = "error.text"\n'),
        make_spec('[api]\nurl = "http://api.test/{k}"\n[retry]\nretry_when = "pending"\n'),
        make_spec('[api]\nurl = "http://api.test/{k}"\n[retry]\nretry_when = "status"\n'),
    ]
    identities = [digest(spec.answer_identity()) for spec in [base, *variants]]
    assert len(set(identities)) == len(identities)


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ("1048576", 1024**2),
        ('"16 MiB"', 16 * 1024**2),
        ('"512KiB"', 512 * 1024),
        ('"2 MB"', 2_000_000),
        ('"1 GiB"', 1024**3),
    ],
)
def test_the_answer_cap_takes_bytes_or_a_size(written: str, size: int) -> None:
    """max_response_bytes reads a number of bytes or a size with its unit."""
    spec = make_spec(f'[api]\nurl = "http://api.test/{{k}}"\nmax_response_bytes = {written}\n')
    assert spec.request.max_response_bytes == size


@pytest.mark.parametrize(
    ("written", "words"),
    [('"2 GiB"', "less than or equal to 1073741824"), ('"lots"', "is not a size"), ("0", "at least 1 byte")],
)
def test_a_bad_answer_cap_names_the_field(written: str, words: str) -> None:
    """Over 1 GiB, not a size, or zero: a SpecError naming api.max_response_bytes."""
    with pytest.raises(SpecError, match=rf"api\.max_response_bytes: .*{words}"):
        make_spec(f'[api]\nurl = "http://api.test/{{k}}"\nmax_response_bytes = {written}\n')


def test_credentials_in_the_url_are_secrets() -> None:
    """https://KEY@host and https://user:p%40ss@host: user and password (decoded too) are redacted."""
    spec = make_spec('[api]\nurl = "https://apikey123:p%40ss@api.test/v1/{k}"\n')
    assert {"apikey123", "p%40ss", "p@ss"} <= spec.secrets


def test_unset_variables_can_be_placeholders_for_checking_a_spec() -> None:
    """A spec checked where its secrets are not (enrich submit): unset names read as a placeholder,
    set ones keep their value, and the spec's other mistakes are still found."""
    text = (
        '[api]\nurl = "http://${API_HOST}:${API_PORT}/v1/{ip}"\nheaders = { X-Token = "${TOKEN}" }\n'
        '[input]\nkey = "ip"\n[output.columns]\nname = { path = "name", type = "str" }\n'
    )
    with pytest.raises(SpecError, match="'API_HOST' is not set"):
        parse_spec(text, environ={})
    spec = parse_spec(text, environ=UnsetAsPlaceholders({"API_HOST": "api.test"}))
    assert spec.request.origin == "http://api.test:10101"
    with pytest.raises(SpecError, match="invalid JMESPath"):
        parse_spec(text.replace('path = "name"', 'path = "name.["'), environ=UnsetAsPlaceholders({}))


def test_auto_concurrency_searches_below_a_most_in_flight() -> None:
    auto = parse_spec(BASE + '[limits]\nconcurrency = "auto"\n', environ={}).limits
    assert (auto.adaptive_concurrency, auto.concurrency) == (True, 256)
    bounded = parse_spec(
        BASE + '[limits]\nconcurrency = "auto"\nmax_concurrency = 40\ntarget_latency_ms = 250\n', environ={}
    ).limits
    assert (bounded.concurrency, bounded.target_latency_ms) == (40, 250)
    assert not parse_spec(BASE + "[limits]\nconcurrency = 8\n", environ={}).limits.adaptive_concurrency


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ('concurrency = "fast"', r'concurrency must be a number of requests or "auto", not \'fast\''),
        ("max_concurrency = 40", 'max_concurrency needs concurrency = "auto"'),
        ("target_latency_ms = 100", 'target_latency_ms needs concurrency = "auto"'),
        ('concurrency = "auto"\ntarget_latency_ms = 0', "target_latency_ms"),
    ],
)
def test_auto_concurrency_s_fields_are_checked(limits: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(BASE + f"[limits]\n{limits}\n", environ={})


def test_auto_given_for_a_fixed_spec_searches_below_its_concurrency() -> None:
    """--concurrency auto on a spec of 32: found, at most 32; on an "auto" spec: its own max."""
    fixed = parse_spec(BASE + "[limits]\nconcurrency = 32\n", environ={})
    searched = with_limit_overrides(fixed, concurrency="auto").limits
    assert (searched.adaptive_concurrency, searched.concurrency) == (True, 32)
    auto = parse_spec(BASE + '[limits]\nconcurrency = "auto"\nmax_concurrency = 40\n', environ={})
    assert with_limit_overrides(auto, concurrency="auto").limits.concurrency == 40


def test_a_number_given_for_an_auto_spec_fixes_the_concurrency() -> None:
    """--concurrency 12 on a spec that says "auto": 12 in flight, no search."""
    spec = parse_spec(BASE + '[limits]\nconcurrency = "auto"\nmax_concurrency = 40\n', environ={})
    fixed = with_limit_overrides(spec, concurrency=12).limits
    assert (fixed.concurrency, fixed.adaptive_concurrency, fixed.max_concurrency) == (12, False, None)


def test_a_batch_s_share_of_the_limits_keeps_auto_and_pacing() -> None:
    """A batch enriched on a Dask worker searches its own level below its share of
    max_concurrency, and keeps the spec's word on pacing."""
    spec = parse_spec(
        BASE + '[limits]\nconcurrency = "auto"\nmax_concurrency = 64\ntarget_latency_ms = 300\n'
        "pace_from_headers = false\n",
        environ={},
    )
    share = with_batch_limits(spec, concurrency=16, rate=None, burst=1).limits
    assert (share.concurrency, share.adaptive_concurrency, share.target_latency_ms) == (16, True, 300)
    assert share.pace_from_headers is False
    fixed = with_batch_limits(parse_spec(BASE, environ={}), concurrency=16, rate=None, burst=1).limits
    assert (fixed.adaptive_concurrency, fixed.pace_from_headers) == (False, True)


def test_an_unknown_sender_names_the_field_and_the_choices() -> None:
    with pytest.raises(SpecError, match=r"api\.transport: .*'aiohttp', 'httpx' or 'pyreqwest'"):
        make_spec('[api]\nurl = "http://api.test/{k}"\ntransport = "curl"\n')


def test_the_pyreqwest_sender_without_its_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pyreqwest", None)  # what find_spec reports as not installed
    with pytest.raises(SpecError, match=r"api\.transport: .*pip install 'enrich\[pyreqwest\]'"):
        make_spec('[api]\nurl = "http://api.test/{k}"\ntransport = "pyreqwest"\n')


@pytest.mark.parametrize("transport", ["", 'transport = "aiohttp"\n', 'transport = "httpx"\n'])
def test_http2_needs_the_sender_that_speaks_it(transport: str) -> None:
    with pytest.raises(SpecError, match=r'http2 = true needs transport = "pyreqwest"'):
        make_spec(f'[api]\nurl = "http://api.test/{{k}}"\nhttp2 = true\n{transport}')
