"""A job's options, declared once: the command line, the flows' parameters and the engine read them.

Each field's description is its help text wherever it is shown (``enrich run --help``, the
Prefect UI's form for a deployment's parameters).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.calling.transport import SENDER_NAMES
from service.spec import Spec, with_limit_overrides, with_transport
from service.spec.units import parse_duration

DEFAULT_BATCH_SIZE = 10_000


class SpecOverrides(BaseModel):
    """What a job's options replace in its spec: ``[limits]`` concurrency and rate, and
    ``[api].transport``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: Annotated[int, Field(ge=1)] | Literal["auto"] | None = Field(
        default=None, description='override [limits].concurrency: a number, or "auto" to find it'
    )
    rate: str | None = Field(default=None, description="override [limits].rate, e.g. 500/s")
    transport: str | None = Field(
        default=None,
        description=f"override [api].transport: the HTTP library that sends ({', '.join(SENDER_NAMES)})",
    )

    @field_validator("transport")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in SENDER_NAMES:
            raise ValueError(f"unknown transport {value!r}: use one of {', '.join(SENDER_NAMES)}")
        return value

    def applied_to(self, spec: Spec) -> Spec:
        """``spec`` with these overrides (validated like the file's own)."""
        spec = with_limit_overrides(spec, concurrency=self.concurrency, rate=self.rate)
        return with_transport(spec, self.transport)


class JobOptions(BaseModel):
    """How a job runs, whatever its input and spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE,
        ge=1,
        description="rows per batch: the unit of progress, checkpoint and memory",
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        description="enrich only the first N rows of the input (a dry run on real data)",
    )
    restart: bool = Field(default=False, description="discard the state of an unfinished job and start over")
    overwrite: bool = Field(
        default=False,
        description="replace OUT if it exists (without it, an existing OUT is refused, but for a "
        "rerun of the job that wrote it)",
    )
    keep_state: bool = Field(
        default=False, description="keep OUT.enrich/ (the finished batches) after success"
    )
    cache_dir: str | None = Field(
        default=None,
        description="the response cache: a folder, or redis://HOST:PORT/DB to share it between "
        "machines (none: no cache)",
    )
    deadline: str | None = Field(
        default=None,
        description="stop cleanly after this long (e.g. 30m, 2h; exit 3, rerun to resume); "
        "overrides [limits].deadline_s",
    )

    @field_validator("deadline")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)  # the error names what a duration looks like
        return value

    def deadline_for(self, spec: Spec) -> float | None:
        """Seconds the job may run: the option's, else the spec's ``[limits].deadline_s``."""
        return parse_duration(self.deadline) if self.deadline is not None else spec.limits.deadline_s
