"""A job's options, declared once: the command line, the flows' parameters and the engine read them.

Each field's description is its help text wherever it is shown (``enrich run --help``, the
Prefect UI's form for a deployment's parameters).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.spec import Spec, with_limit_overrides

DEFAULT_BATCH_SIZE = 10_000


class LimitOverrides(BaseModel):
    """Limits given with a job that replace the spec's ``[limits]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: int | None = Field(default=None, ge=1, description="override [limits].concurrency")
    rate: str | None = Field(default=None, description="override [limits].rate, e.g. 500/s")

    def applied_to(self, spec: Spec) -> Spec:
        """``spec`` with these overrides (validated like the file's own limits)."""
        return with_limit_overrides(spec, concurrency=self.concurrency, rate=self.rate)


class JobOptions(BaseModel):
    """How a job runs, whatever its input and spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE,
        ge=1,
        description="rows per batch: the unit of progress, checkpoint and memory",
    )
    restart: bool = Field(default=False, description="discard the state of an unfinished job and start over")
    keep_state: bool = Field(
        default=False, description="keep OUT.enrich/ (the finished batches) after success"
    )
    cache_dir: str | None = Field(
        default=None,
        description="the response cache: a folder, or redis://HOST:PORT/DB to share it between "
        "machines (none: no cache)",
    )
