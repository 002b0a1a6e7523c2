"""The compiled spec: what the engine reads (templates parsed, paths compiled, secrets resolved).

A ``Spec`` is frozen. Changing its limits (command-line overrides, a share of a global limit) gives
a new one. ``answer_identity`` and ``output_identity`` say which parts of a spec decide an answer
and an output: the response cache and the job checkpoint key on them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from service.errors import SpecError
from service.spec.column_types import ColumnKind
from service.spec.sections import (
    ApiSection,
    CacheSection,
    CircuitSection,
    LimitsSection,
    RetrySection,
    SpecFile,
)
from service.spec.templates import Template


@dataclass(frozen=True, slots=True)
class OutputColumn:
    """A typed column taken from the answer by a compiled JMESPath expression: its type as
    canonical text (``list[i64]``) and as a tree (``kind``)."""

    name: str
    path: str
    type: str
    kind: ColumnKind
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
    max_response_bytes: int
    redirects: Literal["none", "same-origin", "any"]


@dataclass(frozen=True, slots=True)
class BulkSpec:
    """How a bulk answer is read: where the results list is, and each result's key fields."""

    size: int
    results: Any  # compiled JMESPath
    match: tuple[Any, ...]  # compiled JMESPath, one per key column


@dataclass(frozen=True, slots=True)
class AnswerConditions:
    """What a 2xx answer may say about itself, as compiled JMESPath (None where the spec is silent):
    that it failed (``error_when``, its message at ``error_message``), or that it should be asked
    for again (``retry_when``). ``paths`` holds the three as written, for messages."""

    error_when: Any
    error_message: Any
    retry_when: Any
    paths: dict[str, str]


@dataclass(frozen=True)
class ClientCredentials:
    """``[auth] type = "oauth2_client_credentials"``, its ``${NAME}`` resolved."""

    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None
    audience: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def form(self) -> dict[str, str]:
        """The token request's form (RFC 6749 4.4.2, credentials in the body: 2.3.1)."""
        fields = {"grant_type": "client_credentials", "client_id": self.client_id}
        fields["client_secret"] = self.client_secret
        if self.scope:
            fields["scope"] = self.scope
        if self.audience:
            fields["audience"] = self.audience
        return {**fields, **self.extra}


@dataclass(frozen=True, slots=True)
class Spec:
    """A validated spec with its templates parsed and its environment references resolved."""

    source: SpecFile
    request: RequestSpec
    key: tuple[str, ...]
    columns: tuple[OutputColumn, ...]
    bulk: BulkSpec | None
    secrets: frozenset[str]
    # None when no condition is set: the hot path then checks nothing.
    conditions: AnswerConditions | None = None
    oauth: ClientCredentials | None = None  # [auth] type = "oauth2_client_credentials"

    @property
    def limits(self) -> LimitsSection:
        """The ``[limits]`` section."""
        return self.source.limits

    @property
    def transport(self) -> str | None:
        """``[api].transport``: the HTTP library named, or None for the default."""
        return self.source.api.transport

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

    def answer_identity(self) -> dict[str, Any]:
        """What decides the API's answer for a key: the request as written (secrets unresolved, the
        timeout and the size cap left out), the key columns, how bulk answers are matched back, and
        which answers are asked again (a cached answer must have passed the same conditions)."""
        source = self.source
        api = source.api
        # The conditions only when set: the identity of a spec without them stays what it was.
        unset = {name for name in ("error_when", "error_message") if getattr(api, name) is None}
        identity: dict[str, Any] = {
            "api": api.model_dump(
                mode="json", exclude={"timeout_s", "max_response_bytes", "transport", "http2", *unset}
            ),
            "key": source.input.key,
            "bulk": None if source.bulk is None else source.bulk.model_dump(mode="json"),
        }
        if source.retry.retry_when is not None:
            identity["retry_when"] = source.retry.retry_when
        if source.auth is not None:  # another account may get other answers (as written: no secret)
            identity["auth"] = source.auth.model_dump(mode="json")
        return identity

    def output_identity(self) -> dict[str, Any]:
        """What decides the output rows: the answers, and the columns taken from them (limits,
        retries and the timeout may change how long a job takes, not what it writes)."""
        return {**self.answer_identity(), "output": self.source.output.model_dump(mode="json")}


def with_limit_overrides(
    spec: Spec, *, concurrency: int | Literal["auto"] | None = None, rate: str | None = None
) -> Spec:
    """``spec`` with ``[limits]`` concurrency and rate replaced (validated like the file's own).
    ``concurrency`` "auto" searches below the spec's concurrency (its max_concurrency when it says
    "auto" already); a number is a fixed level, in place of "auto" too."""
    update: dict[str, Any] = {}
    if concurrency == "auto":
        update.update(adaptive_concurrency=True, max_concurrency=None)
    elif concurrency is not None:
        update.update(
            concurrency=concurrency, adaptive_concurrency=False, max_concurrency=None, target_latency_ms=None
        )
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


def with_transport(spec: Spec, transport: str | None) -> Spec:
    """``spec`` sending through ``transport`` (one of ``[api].transport``'s values; None: as it is)."""
    if transport is None or transport == spec.transport:
        return spec
    try:
        api = ApiSection.model_validate({**spec.source.api.model_dump(), "transport": transport})
    except ValidationError as exc:
        raise SpecError(str(exc.errors()[0]["msg"]), field="--transport") from None
    return dataclasses.replace(spec, source=spec.source.model_copy(update={"api": api}))


def with_batch_limits(spec: Spec, *, concurrency: int, rate: float | None, burst: int) -> Spec:
    """``spec`` with limits of its own for one batch among several running at once elsewhere (no
    global limit: the process that hands out the batches holds it). With concurrency = "auto",
    each batch finds its level below ``concurrency``, its share of max_concurrency."""
    own = spec.limits
    limits = LimitsSection(
        concurrency=concurrency,
        rate=rate,
        burst=burst,
        adaptive_concurrency=own.adaptive_concurrency,
        target_latency_ms=own.target_latency_ms,
        pace_from_headers=own.pace_from_headers,
    )
    return dataclasses.replace(spec, source=spec.source.model_copy(update={"limits": limits}))


def digest(identity: Any) -> str:
    """A stable digest of a JSON-able identity (key order does not matter)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
