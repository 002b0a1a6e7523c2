"""The spec file: how to call an API and which typed columns to take from its answers.

``load_spec(path, environ=...)`` reads TOML, validates it, resolves ``${NAME}`` from the environment
it is given (the engine never reads ``os.environ`` itself), and returns a frozen ``Spec``. Every
error is a ``SpecError`` that names the field (or the TOML line) and what is wrong.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import jmespath
import jmespath.exceptions
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.errors import SpecError
from service.paths import compile_path
from service.template import (
    BULK_KEYS_MARKER,
    ColumnRef,
    SecretResolver,
    Template,
    TemplateParser,
)
from service.units import parse_duration, parse_rate

ColumnType = Literal["str", "i64", "f64", "bool", "timestamp", "json"]

_TYPE_ALIASES: dict[str, ColumnType] = {
    "str": "str", "string": "str", "utf8": "str",
    "i64": "i64", "int": "i64", "int64": "i64", "integer": "i64",
    "f64": "f64", "float": "f64", "float64": "f64", "double": "f64",
    "bool": "bool", "boolean": "bool",
    "timestamp": "timestamp", "datetime": "timestamp",
    "json": "json",
}  # fmt: skip

RESERVED_PREFIX = "_enrich_"
DEFAULT_RETRY_STATUSES = (408, 425, 429, 500, 502, 503, 504)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiSection(_Section):
    """``[api]``: the request."""

    method: Literal["GET", "POST"] = "GET"
    url: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | list[Any] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 10.0

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class InputSection(_Section):
    """``[input]``: the key columns that identify a request."""

    key: Annotated[list[str], Field(min_length=1)]

    @field_validator("key", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ColumnSection(_Section):
    """One output column: a JMESPath into the answer and a type."""

    path: Annotated[str, Field(min_length=1)]
    type: ColumnType = "str"

    @field_validator("type", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in _TYPE_ALIASES:
            return _TYPE_ALIASES[value.lower()]
        return value


class OutputSection(_Section):
    """``[output]``: the columns to add."""

    columns: Annotated[dict[str, ColumnSection], Field(min_length=1)]


class LimitsSection(_Section):
    """``[limits]``: how hard the API may be pushed."""

    concurrency: Annotated[int, Field(ge=1, le=10_000)] = 64
    rate: float | None = None
    burst: Annotated[int, Field(ge=1)] | None = None
    global_limit: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")] | None = None
    global_share: Annotated[int, Field(ge=1)] | None = None

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return None if value is None else parse_rate(value)

    @model_validator(mode="after")
    def _share(self) -> LimitsSection:
        if self.global_share is not None:
            if self.global_limit is None:
                raise ValueError("global_share needs global_limit (the limit it is a share of)")
            if self.global_share > self.concurrency:
                raise ValueError(
                    f"global_share ({self.global_share}) is more than concurrency ({self.concurrency}),"
                    " the whole limit"
                )
        return self

    @property
    def process_share(self) -> int:
        """Slots of the global limit one process holds: ``global_share``, else the whole limit."""
        return self.global_share or self.concurrency

    @property
    def effective_burst(self) -> int:
        """Tokens the bucket may hold: the spec's ``burst``, else 50 ms worth of ``rate`` (>= 1)."""
        if self.burst is not None:
            return self.burst
        return max(1, int((self.rate or 0) * 0.05))


class BackoffSection(_Section):
    """``[retry.backoff]``: exponential backoff with jitter."""

    initial_s: Annotated[float, Field(gt=0)] = 0.5
    max_s: Annotated[float, Field(gt=0)] = 30.0
    multiplier: Annotated[float, Field(ge=1)] = 2.0
    jitter: Annotated[float, Field(ge=0, le=1)] = 0.5


class RetrySection(_Section):
    """``[retry]``: which failures are retried, and how often."""

    attempts: Annotated[int, Field(ge=1, le=100)] = 6
    backoff: BackoffSection = BackoffSection()
    retry_on_status: tuple[Annotated[int, Field(ge=100, le=599)], ...] = DEFAULT_RETRY_STATUSES
    retry_after_cap_s: Annotated[float, Field(ge=0)] = 120.0


class CircuitSection(_Section):
    """``[circuit]``: when to stop calling an API that keeps failing."""

    enabled: bool = True
    consecutive_failures: Annotated[int, Field(ge=1)] = 20
    failure_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5
    window: Annotated[int, Field(ge=1)] = 200


class CacheSection(_Section):
    """``[cache]``: how long answers are kept across runs."""

    enabled: bool = True
    ttl: float = 7 * 86400.0
    negative_ttl: float = 3600.0

    @field_validator("ttl", "negative_ttl", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)


class BulkSection(_Section):
    """``[bulk]``: many keys per request, answers matched back by a key field."""

    size: Annotated[int, Field(ge=1, le=100_000)]
    results: Annotated[str, Field(min_length=1)]
    match: Annotated[list[str], Field(min_length=1)]

    @field_validator("match", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class SpecFile(_Section):
    """The whole file, as written."""

    api: ApiSection
    input: InputSection
    output: OutputSection
    limits: LimitsSection = LimitsSection()
    retry: RetrySection = RetrySection()
    circuit: CircuitSection = CircuitSection()
    cache: CacheSection = CacheSection()
    bulk: BulkSection | None = None


@dataclass(frozen=True, slots=True)
class OutputColumn:
    """A typed column taken from the answer by a compiled JMESPath expression."""

    name: str
    path: str
    type: ColumnType
    expression: Any  # jmespath.parser.ParsedResult


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """The request, parsed: origin, path and query templates, resolved headers, a body template."""

    method: Literal["GET", "POST"]
    origin: str
    path: Template
    query: tuple[tuple[str, Template], ...]
    headers: tuple[tuple[str, str], ...]
    body: Any  # a tree of dict/list/scalars with Template leaves, or None
    timeout_s: float


@dataclass(frozen=True, slots=True)
class BulkSpec:
    """How a bulk answer is read: where the results list is, and each result's key fields."""

    size: int
    results: Any  # compiled JMESPath
    match: tuple[Any, ...]  # compiled JMESPath, one per key column


@dataclass(frozen=True, slots=True)
class Spec:
    """A validated spec with its templates parsed and its environment references resolved."""

    source: SpecFile
    request: RequestSpec
    key: tuple[str, ...]
    columns: tuple[OutputColumn, ...]
    bulk: BulkSpec | None
    secrets: frozenset[str]

    @property
    def limits(self) -> LimitsSection:
        """The ``[limits]`` section."""
        return self.source.limits

    @property
    def retry(self) -> RetrySection:
        """The ``[retry]`` section."""
        return self.source.retry

    @property
    def circuit(self) -> CircuitSection:
        """The ``[circuit]`` section."""
        return self.source.circuit

    @property
    def cache(self) -> CacheSection:
        """The ``[cache]`` section."""
        return self.source.cache

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the columns the spec adds."""
        return tuple(c.name for c in self.columns)


def with_limit_overrides(spec: Spec, *, concurrency: int | None = None, rate: str | None = None) -> Spec:
    """``spec`` with ``[limits]`` concurrency and rate replaced (validated like the file's own)."""
    update: dict[str, Any] = {}
    if concurrency is not None:
        update["concurrency"] = concurrency
    if rate is not None:
        update["rate"] = rate
    if not update:
        return spec
    try:
        limits = LimitsSection.model_validate({**spec.source.limits.model_dump(), **update})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = f"--{error['loc'][0]}" if error["loc"] else "limits"  # a check across fields: no loc
        raise SpecError(str(error["msg"]).removeprefix("Value error, "), field=where) from None
    return dataclasses.replace(spec, source=spec.source.model_copy(update={"limits": limits}))


def with_batch_limits(spec: Spec, *, concurrency: int, rate: float | None, burst: int) -> Spec:
    """``spec`` with limits of its own for one batch among several running at once elsewhere (no
    global limit: the process that hands out the batches holds it)."""
    limits = LimitsSection(concurrency=concurrency, rate=rate, burst=burst)
    return dataclasses.replace(spec, source=spec.source.model_copy(update={"limits": limits}))


def load_spec(
    path: str | Path,
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
    try:
        source = SpecFile.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_describe_validation_error(exc)) from None
    return compile_spec(source, environ=environ, resolve_secret=resolve_secret)


def compile_spec(
    source: SpecFile,
    *,
    environ: Mapping[str, str],
    resolve_secret: SecretResolver | None = None,
) -> Spec:
    """Turn a validated ``SpecFile`` into a ``Spec``: parse templates, compile JMESPath, cross-check."""
    secrets: set[str] = set()
    parser = TemplateParser(environ, resolve_secret, secrets)
    request = _compile_request(source.api, parser, bulk=source.bulk is not None)
    key = tuple(source.input.key)
    if len(set(key)) != len(key):
        raise SpecError("a key column is listed twice", field="input.key")
    _check_referenced_columns(request, key)
    columns = tuple(
        OutputColumn(name, col.path, col.type, _compile_jmespath(col.path, f"output.columns.{name}.path"))
        for name, col in source.output.columns.items()
    )
    for column in columns:
        if column.name.startswith(RESERVED_PREFIX):
            raise SpecError(
                f"names starting with '{RESERVED_PREFIX}' are reserved for Enrich's own columns",
                field=f"output.columns.{column.name}",
            )
    bulk = None
    if source.bulk is not None:
        if len(source.bulk.match) != len(key):
            raise SpecError(
                f"needs one path per key column ({len(key)}), got {len(source.bulk.match)}",
                field="bulk.match",
            )
        bulk = BulkSpec(
            size=source.bulk.size,
            results=_compile_jmespath(source.bulk.results, "bulk.results"),
            match=tuple(_compile_jmespath(p, f"bulk.match[{i}]") for i, p in enumerate(source.bulk.match)),
        )
    return Spec(source, request, key, columns, bulk, frozenset(secrets))


def _compile_request(api: ApiSection, parser: TemplateParser, *, bulk: bool) -> RequestSpec:
    url = parser.parse(api.url, "api.url")
    # Split on the template's literal text with placeholders kept as markers, so that a
    # placeholder's braces never reach urlsplit and a column can never become the host.
    marked = "".join(p if isinstance(p, str) else "\x00" for p in url.parts)
    split = urlsplit(marked)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise SpecError(f"must be an absolute http(s) URL, got {api.url!r}", field="api.url")
    if "\x00" in split.scheme + split.netloc:
        raise SpecError("column placeholders are only allowed in the path", field="api.url")
    if split.fragment:
        raise SpecError("a URL fragment ('#...') is never sent to the server", field="api.url")
    refs = iter(url.columns)

    def unmark(text: str) -> Template:
        pieces = text.split("\x00")
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
        if "\x00" in name:
            raise SpecError("a query parameter's name cannot be a placeholder", field="api.url")
        query.append((name, unmark(value)))
    for name, param in api.params.items():
        query.append((name, parser.parse(_scalar_text(param), f"api.params.{name}")))
    headers = []
    for name, header in api.headers.items():
        template = parser.parse(header, f"api.headers.{name}")
        if not template.is_literal:
            raise SpecError("headers cannot reference columns", field=f"api.headers.{name}")
        headers.append((name, template.literal()))
    body = None if api.body is None else _compile_body(api.body, parser, "api.body")
    if api.method == "GET" and body is not None:
        raise SpecError("a GET request has no body: use method = 'POST'", field="api.body")
    if bulk:
        if api.method != "POST" or body is None or not _has_bulk_marker(body):
            raise SpecError(
                f"bulk mode needs method = 'POST' and a body with \"{{{BULK_KEYS_MARKER}}}\" "
                "where the list of keys goes",
                field="api.body",
            )
        per_key = [c for _, t in query for c in t.columns] + list(path.columns)
        per_key += [c for t in _body_templates(body) for c in t.columns if c != BULK_KEYS_MARKER]
        if per_key:
            raise SpecError(
                f"a bulk request cannot reference column '{per_key[0]}' outside \"{{{BULK_KEYS_MARKER}}}\"",
                field="api",
            )
    elif body is not None and _has_bulk_marker(body):
        raise SpecError(f"'{{{BULK_KEYS_MARKER}}}' needs a [bulk] section", field="api.body")
    return RequestSpec(
        method=api.method,
        origin=f"{split.scheme}://{split.netloc}",
        path=path,
        query=tuple(query),
        headers=tuple(headers),
        body=body,
        timeout_s=api.timeout_s,
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


def _scalar_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"]) or "(spec)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field (check its spelling)"
        elif error["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{loc}: {message}")
    return "invalid spec:\n  " + "\n  ".join(lines) if len(lines) > 1 else lines[0]
