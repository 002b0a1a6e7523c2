"""The options of an ``enrich-file`` job: the engine's, the limit overrides, and where batches run.

No Prefect import: the command line reads these declarations to build its options without paying
for Prefect's start-up.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from service import JobOptions, SpecOverrides


class EnrichFileOptions(SpecOverrides, JobOptions):
    """Everything a job may be given besides its input, spec and output."""

    dask_address: str | None = Field(
        default=None, description="run the batches on this Dask scheduler, e.g. tcp://host:8786"
    )
    dask_workers: int | None = Field(
        default=None, ge=1, description="run the batches on a local Dask cluster of N processes"
    )

    batches_per_task_run: int | None = Field(
        default=None,
        ge=1,
        description="batches per Prefect task run (default: as many as make 100,000 rows); "
        "checkpoints stay per batch",
    )

    aws_credentials: str | None = Field(
        default=None,
        description="a prefect-aws AwsCredentials block whose keys, region and endpoint reach "
        "object storage (s3://); default: the AWS_* environment variables",
    )

    @model_validator(mode="after")
    def _one_cluster(self) -> EnrichFileOptions:
        if self.dask_address is not None and self.dask_workers is not None:
            raise ValueError("give dask_address or dask_workers, not both")
        if self.on_dask and self.batches_per_task_run is not None:
            raise ValueError("on Dask each batch is a task run of its own: drop batches_per_task_run")
        return self

    @property
    def on_dask(self) -> bool:
        """Whether the batches run on a Dask cluster."""
        return self.dask_address is not None or self.dask_workers is not None
