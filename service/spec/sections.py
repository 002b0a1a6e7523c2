"""The spec file as written: one frozen pydantic model per TOML section, validated field by field.

Quantities in human units (``"500/s"``, ``"7d"``) are parsed here; templates and JMESPath paths are
left as text for the compile step (``service.spec.compile``).
"""

from __future__ import annotations

import importlib.util
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from service.spec.column_types import parse_column_type
from service.spec.units import parse_duration, parse_rate, parse_size

RESERVED_PREFIX = "_enrich_"
MAX_RESPONSE_BYTES_LIMIT = 1024**3

# One name, or a list of them: ``key = "ip"`` and ``key = ["ip"]`` mean the same.
OneOrMany = Annotated[list[str], BeforeValidator(lambda value: [value] if isinstance(value, str) else value)]
DEFAULT_RETRY_STATUSES = (408, 425, 429, 500, 502, 503, 504)
# The HTTP libraries a spec may send through (service.calling.transport has a sender for each).
SenderName = Literal["aiohttp", "httpx", "pyreqwest"]


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
    # An answer larger than this (as received, or once decompressed) fails its row as too_large:
    # one hostile or broken answer must not take the machine's memory.
    max_response_bytes: Annotated[int, Field(ge=1, le=MAX_RESPONSE_BYTES_LIMIT)] = 16 * 1024**2
    # Followed or not (service.calling.redirects); none by default: a redirect is never silent.
    redirects: Literal["none", "same-origin", "any"] = "none"
    # The HTTP library that sends (service.calling.transport); None: the default, aiohttp.
    transport: SenderName | None = None
    # HTTP/2: negotiated over https (HTTP/1.1 where the server declines), spoken from the first byte
    # to an http:// API (which must speak it: there is nothing to negotiate with). pyreqwest only.
    http2: bool = False
    # JMESPath over a 2xx answer: truthy -> the row fails as api_error, with error_message's
    # value (if any) as its message. For APIs that say "failed" inside a 200.
    error_when: Annotated[str, Field(min_length=1)] | None = None
    error_message: Annotated[str, Field(min_length=1)] | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("transport")
    @classmethod
    def _installed(cls, value: str | None) -> str | None:
        if value == "pyreqwest" and importlib.util.find_spec("pyreqwest") is None:
            raise ValueError(
                "transport 'pyreqwest' needs the pyreqwest package: pip install 'enrich[pyreqwest]'"
            )
        return value

    @model_validator(mode="after")
    def _http2_sender(self) -> ApiSection:
        if self.http2 and self.transport != "pyreqwest":
            raise ValueError(
                f'http2 = true needs transport = "pyreqwest" (the one sender that speaks HTTP/2), '
                f"not {self.transport or 'the default, aiohttp'}"
            )
        return self

    @field_validator("max_response_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return parse_size(value)


class InputSection(_Section):
    """``[input]``: the key columns that identify a request."""

    key: Annotated[OneOrMany, Field(min_length=1)]


class ColumnSection(_Section):
    """One output column: a JMESPath into the answer and a type (``service.spec.column_types``),
    kept as its canonical text."""

    path: Annotated[str, Field(min_length=1)]
    type: str = "str"

    @field_validator("type", mode="before")
    @classmethod
    def _canonical(cls, value: Any) -> Any:
        return str(parse_column_type(value)) if isinstance(value, str) else value


class OutputSection(_Section):
    """``[output]``: the columns to add."""

    columns: Annotated[dict[str, ColumnSection], Field(min_length=1)]


DEFAULT_MAX_CONCURRENCY = 256


class LimitsSection(_Section):
    """``[limits]``: how hard the API may be pushed."""

    # With concurrency = "auto": ``concurrency`` holds max_concurrency, the most ever in flight, and
    # ``adaptive_concurrency`` is set (service.calling.adaptive_limit finds the level below it).
    concurrency: Annotated[int, Field(ge=1, le=10_000)] = 64
    adaptive_concurrency: bool = False
    max_concurrency: Annotated[int, Field(ge=1, le=10_000)] | None = None
    # A latency the job accepts while finding the concurrency (default: 1.25x the lowest seen).
    target_latency_ms: Annotated[float, Field(gt=0)] | None = None
    rate: float | None = None
    burst: Annotated[int, Field(ge=1)] | None = None
    global_limit: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")] | None = None
    global_share: Annotated[int, Field(ge=1)] | None = None
    # How long a job may run before it stops cleanly (finished batches kept; a rerun resumes).
    deadline_s: Annotated[float, Field(gt=0)] | None = None
    # Slow down to the quota the API announces in its answers' headers (RateLimit, X-RateLimit-*),
    # and hold every request for a 503's Retry-After: service.calling.rate_headers.
    pace_from_headers: bool = True

    @model_validator(mode="before")
    @classmethod
    def _auto(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("concurrency"), str):
            return data
        if data["concurrency"] != "auto":
            raise ValueError(
                f'concurrency must be a number of requests or "auto", not {data["concurrency"]!r}'
            )
        most = data.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)
        return {**data, "concurrency": most, "adaptive_concurrency": True}

    @model_validator(mode="after")
    def _adaptive_fields(self) -> LimitsSection:
        if not self.adaptive_concurrency:
            for name in ("max_concurrency", "target_latency_ms"):
                if getattr(self, name) is not None:
                    raise ValueError(f'{name} needs concurrency = "auto"')
        elif self.max_concurrency is not None and self.max_concurrency != self.concurrency:
            raise ValueError(
                f"max_concurrency ({self.max_concurrency}) and concurrency ({self.concurrency}) differ:"
                ' with concurrency = "auto", give max_concurrency only'
            )
        return self

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return None if value is None else parse_rate(value)

    @field_validator("deadline_s", mode="before")
    @classmethod
    def _deadline(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

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
    # Retries over the last 10 s may not exceed this share of the attempts (plus 10 per second):
    # service.calling.retry_budget. 0 allows only the 10 per second.
    budget: Annotated[float, Field(ge=0, le=10)] = 0.2
    # JMESPath over a 2xx answer: truthy -> retried like a 503 (same backoff, Retry-After and
    # budget); still truthy after the last attempt -> the row fails as api_error. For APIs that
    # answer "pending, ask again later" with a 200.
    retry_when: Annotated[str, Field(min_length=1)] | None = None


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
    match: Annotated[OneOrMany, Field(min_length=1)]


class BearerAuth(_Section):
    """``[auth] type = "bearer"``: ``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token: Annotated[str, Field(min_length=1)]


class BasicAuth(_Section):
    """``[auth] type = "basic"``: ``Authorization: Basic <base64 of username:password>``."""

    type: Literal["basic"]
    username: Annotated[str, Field(min_length=1)]
    password: str


class HeaderAuth(_Section):
    """``[auth] type = "header"``: one header of the API's own (``X-Api-Key``, say)."""

    type: Literal["header"]
    name: Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
    value: Annotated[str, Field(min_length=1)]


class OAuth2ClientCredentialsAuth(_Section):
    """``[auth] type = "oauth2_client_credentials"``: a token from ``token_url``, per job."""

    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: Annotated[str, Field(min_length=1)]
    client_secret: Annotated[str, Field(min_length=1)]
    scope: str | None = None
    audience: str | None = None
    # More form fields the token endpoint wants (resource = "...", say).
    extra: dict[str, str] = Field(default_factory=dict)


AuthSection = Annotated[
    BearerAuth | BasicAuth | HeaderAuth | OAuth2ClientCredentialsAuth, Field(discriminator="type")
]


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
    auth: AuthSection | None = None
