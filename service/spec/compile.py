"""Reading a spec: TOML text -> validated sections -> a compiled, frozen ``Spec``.

``load_spec(path, environ=...)`` reads TOML, validates it, resolves ``${NAME}`` from the environment
it is given (the engine never reads ``os.environ`` itself), and returns a frozen ``Spec``. Every
error is a ``SpecError`` that names the field (or the TOML line) and what is wrong.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

import jmespath.exceptions
from pydantic import ValidationError

from service.errors import SpecError
from service.spec.answer_paths import compile_path
from service.spec.column_types import parse_column_type
from service.spec.model import (
    AnswerConditions,
    BulkSpec,
    ClientCredentials,
    OutputColumn,
    RequestSpec,
    Spec,
)
from service.spec.sections import (
    RESERVED_PREFIX,
    ApiSection,
    BasicAuth,
    BearerAuth,
    BulkSection,
    ColumnSection,
    OAuth2ClientCredentialsAuth,
    SpecFile,
)
from service.spec.templates import (
    BULK_KEYS_MARKER,
    ColumnRef,
    SecretResolver,
    Template,
    TemplateParser,
    value_text,
)

T = TypeVar("T")

# Stands for a column placeholder while the URL is split: a NUL never appears in a URL.
_PLACEHOLDER = "\x00"


def load_spec(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str],
    resolve_secret: SecretResolver | None = None,
) -> Spec:
    """Read, validate and resolve the spec file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {path}: {exc}") from None
    return parse_spec(text, environ=environ, resolve_secret=resolve_secret)


def parse_spec(
    text: str,
    *,
    environ: Mapping[str, str],
    resolve_secret: SecretResolver | None = None,
) -> Spec:
    """Validate and resolve a spec given as TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line_match = re.search(r"line (\d+)", str(exc))
        line = int(line_match.group(1)) if line_match else None
        raise SpecError(f"invalid TOML: {exc}", line=line) from None
    return spec_from_dict(raw, environ=environ, resolve_secret=resolve_secret)


def spec_from_dict(
    data: Mapping[str, Any],
    *,
    environ: Mapping[str, str],
    resolve_secret: SecretResolver | None = None,
) -> Spec:
    """Validate and resolve a spec given as a dict, shaped as the TOML file is."""
    raw = dict(data)
    try:
        source = SpecFile.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_describe_validation_error(exc, _path_problems(raw))) from None
    return compile_spec(source, environ=environ, resolve_secret=resolve_secret)


def compile_spec(
    source: SpecFile,
    *,
    environ: Mapping[str, str],
    resolve_secret: SecretResolver | None = None,
) -> Spec:
    """Turn a validated ``SpecFile`` into a ``Spec``: parse templates, compile JMESPath, cross-check.
    Every check runs: the ``SpecError`` names each problem found, one line each."""
    secrets: set[str] = set()
    parser = TemplateParser(environ, resolve_secret, secrets)
    problems = _Problems()
    request = problems.checked(lambda: _compile_request(source.api, parser, bulk=source.bulk is not None))
    key = tuple(source.input.key)
    if len(set(key)) != len(key):
        problems.add(SpecError("a key column is listed twice", field="input.key"))
    if request is not None:
        problems.checked(lambda: _check_referenced_columns(request, key))
    columns = []
    for name, section in source.output.columns.items():
        column = problems.checked(functools.partial(_compile_column, name, section))
        if column is not None:
            columns.append(column)
    bulk = (
        None if source.bulk is None else problems.checked(functools.partial(_compile_bulk, source.bulk, key))
    )
    conditions = _compile_conditions(source, problems)
    auth = None if source.auth is None else problems.checked(functools.partial(_compile_auth, source, parser))
    problems.raise_any()
    assert request is not None
    sent, oauth = (request, None) if auth is None else _with_auth(request, auth)
    return Spec(source, sent, key, tuple(columns), bulk, frozenset(secrets), conditions, oauth)


class _Problems:
    """The mistakes found in a spec so far: each check runs, and all are told together."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, problem: SpecError) -> None:
        self.found.append(str(problem))

    def checked(self, check: Callable[[], T]) -> T | None:
        """``check()``'s result, or None with its ``SpecError`` kept."""
        try:
            return check()
        except SpecError as exc:
            self.add(exc)
            return None

    def raise_any(self) -> None:
        if len(self.found) == 1:
            raise SpecError(self.found[0])
        if self.found:
            raise SpecError("invalid spec:\n  " + "\n  ".join(self.found))


def _compile_column(name: str, section: ColumnSection) -> OutputColumn:
    if name.startswith(RESERVED_PREFIX):
        raise SpecError(
            f"names starting with '{RESERVED_PREFIX}' are reserved for Enrich's own columns",
            field=f"output.columns.{name}",
        )
    expression = _compile_jmespath(section.path, f"output.columns.{name}.path")
    return OutputColumn(name, section.path, section.type, parse_column_type(section.type), expression)


def _compile_conditions(source: SpecFile, problems: _Problems) -> AnswerConditions | None:
    """The answer conditions, compiled; None when the spec sets none, or with a mistake in them
    (each kept in ``problems``)."""
    paths = {
        "error_when": (source.api.error_when, "api.error_when"),
        "error_message": (source.api.error_message, "api.error_message"),
        "retry_when": (source.retry.retry_when, "retry.retry_when"),
    }
    written = {name: path for name, (path, _) in paths.items() if path is not None}
    if not written:
        return None
    if "error_when" not in written and "retry_when" not in written:
        problems.add(
            SpecError(
                "is only read when error_when or retry_when matches: set one", field="api.error_message"
            )
        )
    compiled = {
        name: problems.checked(functools.partial(_compile_jmespath, path, field))
        for name, (path, field) in paths.items()
        if path is not None
    }
    if None in compiled.values():
        return None
    return AnswerConditions(
        error_when=compiled.get("error_when"),
        error_message=compiled.get("error_message"),
        retry_when=compiled.get("retry_when"),
        paths=written,
    )


def _compile_auth(source: SpecFile, parser: TemplateParser) -> tuple[str, str] | ClientCredentials:
    """``[auth]``: the header it adds to every request, or the OAuth2 client's credentials, its
    ``${NAME}`` resolved (and kept as secrets, the encoded forms too)."""
    auth = source.auth
    assert auth is not None
    if isinstance(auth, OAuth2ClientCredentialsAuth):
        return _client_credentials(auth, parser)
    if isinstance(auth, BearerAuth):
        header = ("Authorization", f"Bearer {_resolved(parser, auth.token, 'token')}")
    elif isinstance(auth, BasicAuth):
        pair = (
            f"{_resolved(parser, auth.username, 'username')}:{_resolved(parser, auth.password, 'password')}"
        )
        encoded = base64.b64encode(pair.encode()).decode()
        if parser.secrets is not None:
            parser.secrets.add(encoded)  # a server echoing the header may echo this part alone
        header = ("Authorization", f"Basic {encoded}")
    else:
        header = (auth.name, _resolved(parser, auth.value, "value"))
    if parser.secrets is not None:
        parser.secrets.add(header[1])
    clash = [name for name in source.api.headers if name.lower() == header[0].lower()]
    if clash:
        raise SpecError(f"[api].headers sets {clash[0]} too: keep one of them", field="auth")
    return header


def _client_credentials(auth: OAuth2ClientCredentialsAuth, parser: TemplateParser) -> ClientCredentials:
    token_url = _resolved(parser, auth.token_url, "token_url")
    if urlsplit(token_url).scheme not in ("http", "https") or not urlsplit(token_url).netloc:
        problem = f"must be an absolute http(s) URL, got {auth.token_url!r}"
        raise SpecError(problem, field="auth.token_url")
    return ClientCredentials(
        token_url,
        _resolved(parser, auth.client_id, "client_id"),
        _resolved(parser, auth.client_secret, "client_secret"),
        None if auth.scope is None else _resolved(parser, auth.scope, "scope"),
        None if auth.audience is None else _resolved(parser, auth.audience, "audience"),
        {name: _resolved(parser, value, f"extra.{name}") for name, value in auth.extra.items()},
    )


def _resolved(parser: TemplateParser, text: str, name: str) -> str:
    """``[auth]`` field ``name``'s text with its ``${NAME}`` resolved (no column may appear)."""
    template = parser.parse(text, f"auth.{name}")
    if not template.is_literal:
        raise SpecError("cannot reference columns", field=f"auth.{name}")
    return template.literal()


def _with_auth(
    request: RequestSpec, auth: tuple[str, str] | ClientCredentials
) -> tuple[RequestSpec, ClientCredentials | None]:
    if isinstance(auth, ClientCredentials):
        return request, auth
    return dataclasses.replace(request, headers=(*request.headers, auth)), None


def _compile_bulk(section: BulkSection, key: tuple[str, ...]) -> BulkSpec:
    if len(section.match) != len(key):
        raise SpecError(
            f"needs one path per key column ({len(key)}), got {len(section.match)}", field="bulk.match"
        )
    return BulkSpec(
        size=section.size,
        results=_compile_jmespath(section.results, "bulk.results"),
        match=tuple(_compile_jmespath(p, f"bulk.match[{i}]") for i, p in enumerate(section.match)),
    )


def _compile_request(api: ApiSection, parser: TemplateParser, *, bulk: bool) -> RequestSpec:
    origin, path, query = _compile_url(api.url, parser)
    for name, param in api.params.items():
        query.append((name, parser.parse(value_text(param), f"api.params.{name}")))
    headers = []
    for name, header in api.headers.items():
        template = parser.parse(header, f"api.headers.{name}")
        if not template.is_literal:
            raise SpecError("headers cannot reference columns", field=f"api.headers.{name}")
        headers.append((name, template.literal()))
    body = None if api.body is None else _compile_body(api.body, parser, "api.body")
    if api.method == "GET" and body is not None:
        raise SpecError("a GET request has no body: use method = 'POST'", field="api.body")
    request = RequestSpec(
        method=api.method,
        origin=origin,
        path=path,
        query=tuple(query),
        headers=tuple(headers),
        body=body,
        timeout_s=api.timeout_s,
        max_response_bytes=api.max_response_bytes,
        redirects=api.redirects,
    )
    _check_bulk_request(request, bulk=bulk)
    return request


def _split_url(marked: str, url_text: str) -> SplitResult:
    try:
        split = urlsplit(marked)
        split.port  # noqa: B018 - reading it is what checks it (0-65535)
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535"
        raise SpecError(f"{exc}: {url_text!r}", field="api.url") from None
    return split


def _compile_url(url_text: str, parser: TemplateParser) -> tuple[str, Template, list[tuple[str, Template]]]:
    """The origin, the path template and the query templates of ``[api].url``."""
    url = parser.parse(url_text, "api.url")
    # Split on the template's literal text with placeholders kept as markers, so that a
    # placeholder's braces never reach urlsplit and a column can never become the host.
    marked = "".join(p if isinstance(p, str) else _PLACEHOLDER for p in url.parts)
    split = _split_url(marked, url_text)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise SpecError(f"must be an absolute http(s) URL, got {url_text!r}", field="api.url")
    if _PLACEHOLDER in split.scheme + split.netloc:
        raise SpecError("column placeholders are only allowed in the path", field="api.url")
    if split.fragment:
        raise SpecError("a URL fragment ('#...') is never sent to the server", field="api.url")
    # Credentials written in the URL (https://KEY@host, https://user:pass@host) are secrets too:
    # redacted wherever the URL or what the API echoes of it is shown.
    for credential in (split.username, split.password):
        if credential and parser.secrets is not None:
            parser.secrets.update({credential, unquote(credential)})
    refs = iter(url.columns)

    def unmark(text: str) -> Template:
        pieces = text.split(_PLACEHOLDER)
        parts: list[str | ColumnRef] = []
        for i, piece in enumerate(pieces):
            if piece:
                parts.append(piece)
            if i < len(pieces) - 1:
                parts.append(ColumnRef(next(refs)))
        return Template(tuple(parts))

    path = unmark(split.path or "/")
    query: list[tuple[str, Template]] = []
    for name, value in parse_qsl(split.query, keep_blank_values=True):
        if _PLACEHOLDER in name:
            raise SpecError("a query parameter's name cannot be a placeholder", field="api.url")
        query.append((name, unmark(value)))
    return f"{split.scheme}://{split.netloc}", path, query


def _check_bulk_request(request: RequestSpec, *, bulk: bool) -> None:
    body = request.body
    if not bulk:
        if body is not None and _has_bulk_marker(body):
            raise SpecError(f"'{{{BULK_KEYS_MARKER}}}' needs a [bulk] section", field="api.body")
        return
    if request.method != "POST" or body is None or not _has_bulk_marker(body):
        raise SpecError(
            f"bulk mode needs method = 'POST' and a body with \"{{{BULK_KEYS_MARKER}}}\" "
            "where the list of keys goes",
            field="api.body",
        )
    per_key = [c for _, t in request.query for c in t.columns] + list(request.path.columns)
    per_key += [c for t in _body_templates(body) for c in t.columns if c != BULK_KEYS_MARKER]
    if per_key:
        raise SpecError(
            f"a bulk request cannot reference column '{per_key[0]}' outside \"{{{BULK_KEYS_MARKER}}}\"",
            field="api",
        )


def _compile_body(node: Any, parser: TemplateParser, field: str) -> Any:
    if isinstance(node, str):
        return parser.parse(node, field)
    if isinstance(node, dict):
        return {k: _compile_body(v, parser, f"{field}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_compile_body(v, parser, f"{field}[{i}]") for i, v in enumerate(node)]
    return node


def _body_templates(node: Any) -> list[Template]:
    if isinstance(node, Template):
        return [node]
    if isinstance(node, dict):
        return [t for v in node.values() for t in _body_templates(v)]
    if isinstance(node, list):
        return [t for v in node for t in _body_templates(v)]
    return []


def _has_bulk_marker(body: Any) -> bool:
    return any(t.whole_column == BULK_KEYS_MARKER for t in _body_templates(body))


def _check_referenced_columns(request: RequestSpec, key: tuple[str, ...]) -> None:
    """A request must depend on the key columns only, or deduplication by key would be wrong."""
    referenced = [("api.url", c) for c in request.path.columns]
    referenced += [(f"api.params.{n}", c) for n, t in request.query for c in t.columns]
    referenced += [("api.body", c) for t in _body_templates(request.body) for c in t.columns]
    for field, column in referenced:
        if column == BULK_KEYS_MARKER:
            continue
        if column not in key:
            raise SpecError(
                f"references column '{column}', which is not in input.key {list(key)}: "
                "a request may depend only on the key columns",
                field=field,
            )


def _compile_jmespath(path: str, field: str) -> Any:
    try:
        return compile_path(path)
    except jmespath.exceptions.JMESPathError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError(f"invalid JMESPath {path!r}: {detail}", field=field) from None


def _path_problems(raw: dict[str, Any]) -> list[str]:
    """The output columns' JMESPath mistakes, found in a spec whose validation failed elsewhere:
    one run names them all, not one per fix."""
    output = raw.get("output")
    columns = output.get("columns") if isinstance(output, dict) else None
    problems = []
    for name, column in (columns or {}).items() if isinstance(columns, dict) else ():
        path = column.get("path") if isinstance(column, dict) else None
        if isinstance(path, str):
            try:
                _compile_jmespath(path, f"output.columns.{name}.path")
            except SpecError as exc:
                problems.append(str(exc))
    return problems


def _describe_validation_error(exc: ValidationError, more: list[str]) -> str:
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"]) or "(spec)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field (check its spelling)"
        elif error["type"] == "missing":
            message = "required field is missing"
        message = message.removeprefix("Value error, ")  # pydantic's wording for a validator's ValueError
        lines.append(f"{loc}: {message}")
    lines += more
    return "invalid spec:\n  " + "\n  ".join(lines) if len(lines) > 1 else lines[0]
