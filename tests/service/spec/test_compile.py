"""The compile step: every mistake the spec can hold, named by its field with exactly what is
wrong; and what a valid spec compiles to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service import SpecError, load_spec, parse_spec
from service.spec.templates import ColumnRef, Template

OUT = '[output.columns]\nname = { path = "name" }\n'
KEY = '[input]\nkey = "k"\n'
BULK = '[bulk]\nsize = 5\nresults = "r"\nmatch = "k"\n'
POST_BULK = '[api]\nmethod = "POST"\nurl = "http://api.test/x"\nbody = { keys = "{@keys}" }\n'
NOT_IN_KEY = "which is not in input.key ['k']: a request may depend only on the key columns"
INCOMPLETE = "Invalid jmespath expression: Incomplete expression:"
B_PATH = f"output.columns.b.path: invalid JMESPath 'b.[': {INCOMPLETE}"

MISTAKES = {
    "TOML that does not parse": (
        '[api]\nurl = "http://a/{k}"\n[input\nkey="k"\n',
        "line 3: invalid TOML: Expected ']' at the end of a table declaration (at line 3, column 7)",
    ),
    "a key column twice": (
        '[api]\nurl = "http://api.test/{k}"\n[input]\nkey = ["k", "k"]\n' + OUT,
        "input.key: a key column is listed twice",
    ),
    "a URL fragment": (
        '[api]\nurl = "http://api.test/{k}#top"\n' + KEY + OUT,
        "api.url: a URL fragment ('#...') is never sent to the server",
    ),
    "a placeholder as a parameter's name": (
        '[api]\nurl = "http://api.test/v1?{k}=1"\n' + KEY + OUT,
        "api.url: a query parameter's name cannot be a placeholder",
    ),
    "a port out of range": (
        '[api]\nurl = "http://api.test:99999/{k}"\n' + KEY + OUT,
        "api.url: Port out of range 0-65535: 'http://api.test:99999/{k}'",
    ),
    "a relative URL": (
        '[api]\nurl = "/v1/{k}"\n' + KEY + OUT,
        "api.url: must be an absolute http(s) URL, got '/v1/{k}'",
    ),
    "another scheme": (
        '[api]\nurl = "ftp://api.test/{k}"\n' + KEY + OUT,
        "api.url: must be an absolute http(s) URL, got 'ftp://api.test/{k}'",
    ),
    "a column in the host": (
        '[api]\nurl = "http://{k}.api.test/x"\n' + KEY + OUT,
        "api.url: column placeholders are only allowed in the path",
    ),
    "the keys marker without bulk": (
        POST_BULK + KEY + OUT,
        "api.body: '{@keys}' needs a [bulk] section",
    ),
    "a column in a header": (
        '[api]\nurl = "http://api.test/{k}"\nheaders = { X = "{k}" }\n' + KEY + OUT,
        "api.headers.X: headers cannot reference columns",
    ),
    "a match path per key column": (
        POST_BULK + '[input]\nkey = ["a", "b"]\n' + OUT + BULK.replace('match = "k"', 'match = "a"'),
        "bulk.match: needs one path per key column (2), got 1",
    ),
    "bulk as a GET": (
        '[api]\nurl = "http://api.test/x"\n' + KEY + OUT + BULK,
        "api.body: bulk mode needs method = 'POST' and a body with \"{@keys}\" where the list of keys goes",
    ),
    "a bulk URL with a column": (
        POST_BULK.replace("/x", "/x/{k}") + KEY + OUT + BULK,
        "api: a bulk request cannot reference column 'k' outside \"{@keys}\"",
    ),
    "a bulk body with a column": (
        POST_BULK.replace('keys = "{@keys}"', 'keys = "{@keys}", one = ["{k}"]') + KEY + OUT + BULK,
        "api: a bulk request cannot reference column 'k' outside \"{@keys}\"",
    ),
    "a parameter with a column not in the key": (
        '[api]\nurl = "http://api.test/{k}"\nparams = { lang = "{x}" }\n' + KEY + OUT,
        f"api.params.lang: references column 'x', {NOT_IN_KEY}",
    ),
    "a body with a column not in the key": (
        '[api]\nmethod = "POST"\nurl = "http://api.test/q"\nbody = { a = [{ b = "{x}" }] }\n' + KEY + OUT,
        f"api.body: references column 'x', {NOT_IN_KEY}",
    ),
    "a reserved column name": (
        '[api]\nurl = "http://api.test/{k}"\n' + KEY + '[output.columns]\n_enrich_x = { path = "x" }\n',
        "output.columns._enrich_x: names starting with '_enrich_' are reserved for Enrich's own columns",
    ),
    "a bulk results path that does not parse": (
        POST_BULK + KEY + OUT + BULK.replace('results = "r"', 'results = "["'),
        "bulk.results: invalid JMESPath '[': Invalid jmespath expression: Incomplete expression:",
    ),
    "a bulk match path that does not parse": (
        POST_BULK + KEY + OUT + BULK.replace('match = "k"', 'match = "k.["'),
        "bulk.match[0]: invalid JMESPath 'k.[': Invalid jmespath expression: Incomplete expression:",
    ),
    "a validator's refusal": (
        '[api]\nurl = "http://api.test/{k}"\n' + KEY + OUT + "[limits]\nglobal_share = 2\n",
        "limits: global_share needs global_limit (the limit it is a share of)",
    ),
    "a misspelt field": (
        '[api]\nurll = "http://api.test/{k}"\n' + KEY + OUT,
        "invalid spec:\n  api.url: required field is missing\n  api.urll: unknown field (check its spelling)",
    ),
    "a brace in a URL": (
        '[api]\nurl = "http://api.test/{k"\n' + KEY + OUT,
        "api.url: unbalanced '{' in 'http://api.test/{k': write '{{' for a literal brace",
    ),
    "a brace in a parameter": (
        '[api]\nurl = "http://api.test/{k}"\nparams = { q = "a}" }\n' + KEY + OUT,
        "api.params.q: unbalanced '}' in 'a}': write '}}' for a literal brace",
    ),
    "a brace deep in a body": (
        '[api]\nmethod = "POST"\nurl = "http://api.test/q"\nbody = { a = [1, { b = "{" }] }\n' + KEY + OUT,
        "api.body.a[1].b: unbalanced '{' in '{': write '{{' for a literal brace",
    ),
    "two mistakes found once the fields are valid": (
        '[api]\nurl = "http://api.test/{x}"\n' + KEY + '[output.columns]\n_enrich_x = { path = "x" }\n',
        f"invalid spec:\n  api.url: references column 'x', {NOT_IN_KEY}\n"
        "  output.columns._enrich_x: names starting with '_enrich_' are reserved for Enrich's own columns",
    ),
    "answer conditions that do not parse, beside a column that does not": (
        '[api]\nurl = "http://api.test/{k}"\nerror_when = "a.["\n'
        + KEY
        + '[output.columns]\nb = { path = "b.[" }\n[retry]\nretry_when = "c.["\n',
        f"invalid spec:\n  {B_PATH}\n  api.error_when: invalid JMESPath 'a.[': {INCOMPLETE}\n"
        f"  retry.retry_when: invalid JMESPath 'c.[': {INCOMPLETE}",
    ),
    "an error message without a condition": (
        '[api]\nurl = "http://api.test/{k}"\nerror_message = "message"\n' + KEY + OUT,
        "api.error_message: is only read when error_when or retry_when matches: set one",
    ),
    "an empty condition": (
        '[api]\nurl = "http://api.test/{k}"\nerror_when = ""\n' + KEY + OUT,
        "api.error_when: String should have at least 1 character",
    ),
    "columns that are not a table": (
        '[api]\nurl = "http://api.test/{k}"\n' + KEY + "[output]\ncolumns = 3\n",
        "output.columns: Input should be a valid dictionary",
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_mistake_is_named_exactly(mistake: str) -> None:
    """One mistake: one line, the field and what is wrong."""
    text, message = MISTAKES[mistake]
    with pytest.raises(SpecError, match=f"^{re.escape(message)}$"):
        parse_spec(text, environ={})


@pytest.mark.parametrize(
    ("columns", "problems"),
    [
        (
            'a = 3\nb = { path = "b.[" }\n',
            [
                "output.columns.a: Input should be a valid dictionary or instance of ColumnSection",
                B_PATH,
            ],
        ),
        (
            'a = { path = 3 }\nb = { path = "b.[" }\n',
            [
                "output.columns.a.path: Input should be a valid string",
                B_PATH,
            ],
        ),
    ],
)
def test_malformed_columns_are_listed_with_the_paths_that_do_not_parse(
    columns: str, problems: list[str]
) -> None:
    """A column that is not a table, or a path that is not text, beside a path that does not
    parse: both listed, one line each."""
    text = '[api]\nurl = "http://api.test/{k}"\n' + KEY + "[output.columns]\n" + columns
    with pytest.raises(SpecError, match="^" + re.escape("invalid spec:\n  " + "\n  ".join(problems)) + "$"):
        parse_spec(text, environ={})


def test_a_spec_file_is_read_as_utf8_with_its_variables_and_secrets(tmp_path: Path) -> None:
    """A file's ``${NAME}`` come from the environment given, ``${secret:...}`` from the resolver,
    its text as UTF-8; a file that cannot be read is named."""
    path = tmp_path / "spec.toml"
    path.write_text(
        '[api]\nurl = "http://api.test/{k}"\nheaders = { A = "${TOKEN}", B = "${secret:geo}", C = "é" }\n'
        + KEY
        + OUT,
        encoding="utf-8",
    )
    spec = load_spec(path, environ={"TOKEN": "t0k"}, resolve_secret=lambda name: f"from-{name}")
    assert dict(spec.request.headers) == {"A": "t0k", "B": "from-geo", "C": "é"}
    assert spec.secrets == frozenset({"t0k", "from-geo"})
    (tmp_path / "latin1.toml").write_bytes(b"\xff")
    with pytest.raises(SpecError, match=r"^cannot read spec file .*latin1\.toml: 'utf-8' codec can't decode"):
        load_spec(tmp_path / "latin1.toml", environ={})
    with pytest.raises(SpecError, match=r"^cannot read spec file .*: \[Errno 21\] Is a directory"):
        load_spec(tmp_path, environ={})


def test_what_a_valid_spec_compiles_to() -> None:
    """The request's method, origin, path (``/`` when the URL has none), parameters, timeout,
    answer cap and redirect policy; a body's templates wherever they are; the bulk size."""
    spec = parse_spec(
        '[api]\nmethod = "post"\nurl = "https://api.test"\nparams = { n = 3, on = true }\n'
        'body = { q = ["{k}", { deep = "x-{k}" }], fixed = 1 }\ntimeout_s = 2.5\n'
        'max_response_bytes = "1 KiB"\nredirects = "same-origin"\n' + KEY + OUT,
        environ={},
    )
    request = spec.request
    assert [(c.name, c.path, c.type) for c in spec.columns] == [("name", "name", "str")]
    assert (request.method, request.origin, request.path.parts) == ("POST", "https://api.test", ("/",))
    assert [(name, t.parts) for name, t in request.query] == [("n", ("3",)), ("on", ("true",))]
    assert (request.timeout_s, request.max_response_bytes, request.redirects) == (2.5, 1024, "same-origin")
    q = request.body["q"]
    assert isinstance(q[0], Template)
    assert q[0].whole_column == "k"
    assert q[1]["deep"].columns == ("k",)
    assert request.body["fixed"] == 1
    bulk = parse_spec(POST_BULK + KEY + OUT + BULK, environ={})
    assert bulk.bulk is not None
    assert bulk.bulk.size == 5


def test_a_parameter_written_empty_in_the_url_is_kept() -> None:
    """``?flag=&k={k}``: the empty parameter goes with every request too."""
    spec = parse_spec('[api]\nurl = "http://api.test/x?flag=&k={k}"\n' + KEY + OUT, environ={})
    assert [(name, t.parts) for name, t in spec.request.query] == [("flag", ()), ("k", (ColumnRef("k"),))]
