"""``enrich deploy``: the enrich-file flow as a deployment on a work pool, run by Prefect workers.

The deployment names its flow by module path (``flows.enrich_file.enrich_file``): a worker whose
Python has Enrich installed imports it, and no code is uploaded or pulled. The spec, the input and
the output travel as paths, read and written by the worker that runs the job: across machines they
need a filesystem both see. Deploying again updates the deployment of the same name in place
(Prefect's ``apply``): same id, nothing duplicated.

Imported only by ``enrich deploy`` (it imports Prefect).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.events import DeploymentEventTrigger
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron, Interval, Schedule
from prefect.settings import get_current_settings
from prefect.types.entrypoint import EntrypointType

from flows.enrich_file import enrich_file
from service import EnrichError

# The event that starts a job with --on-event; its payload names the file: {"input": PATH,
# "output": PATH} (absolute, as the worker reads them).
FILE_ARRIVED = "enrich.file.arrived"


class DeployError(EnrichError):
    """A deployment that cannot be made as asked: no such work pool, a schedule that does not parse."""


@dataclass(frozen=True)
class DeploymentRequest:
    """What ``enrich deploy`` was asked for."""

    pool: str
    name: str
    spec: str  # absolute path, as the worker reads it
    cron: str | None = None
    timezone: str | None = None
    interval_s: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)  # input and output, for schedules
    on_event: bool = False  # a run for each FILE_ARRIVED event


@dataclass(frozen=True)
class Deployed:
    """The deployment made: its full name, id, and whether it was new."""

    full_name: str
    id: UUID
    created: bool


def schedule_of(request: DeploymentRequest) -> Schedule | None:
    """The schedule asked for, checked as the server would check it (``DeployError`` naming what is
    wrong: a cron expression or a time zone it would refuse)."""
    try:
        if request.cron is not None:
            CronSchedule(cron=request.cron, timezone=request.timezone)
            return Cron(request.cron, timezone=request.timezone)
        if request.interval_s is not None:
            IntervalSchedule(interval=timedelta(seconds=request.interval_s), timezone=request.timezone)
            return Interval(request.interval_s, timezone=request.timezone)
    except ValueError as exc:
        reason = str(exc).splitlines()[-1].removeprefix("  Value error, ")
        raise DeployError(f"the schedule: {reason}") from None
    return None


async def deploy_enrich_file(request: DeploymentRequest) -> Deployed:
    """Create or update ``enrich-file/<name>`` on ``request.pool`` (which must exist)."""
    schedule = schedule_of(request)
    async with get_client() as client:
        try:
            await client.read_work_pool(request.pool)
        except ObjectNotFound:
            raise DeployError(
                f"no work pool {request.pool!r} at {get_current_settings().api.url}: create it first, "
                f"e.g. prefect work-pool create {request.pool} --type process"
            ) from None
        full_name = f"enrich-file/{request.name}"
        try:
            await client.read_deployment_by_name(full_name)
            created = False
        except ObjectNotFound:
            created = True
    deployment = await enrich_file.ato_deployment(
        name=request.name,
        work_pool_name=request.pool,
        entrypoint_type=EntrypointType.MODULE_PATH,
        schedules=[schedule] if schedule is not None else [],
        parameters={"spec": request.spec, **request.parameters},
        triggers=[file_arrived_trigger(request.name)] if request.on_event else [],
    )
    deployment_id: UUID = await deployment.aapply()
    return Deployed(full_name, deployment_id, created)


def file_arrived_trigger(name: str) -> DeploymentEventTrigger:
    """A run of the deployment for each ``FILE_ARRIVED`` event, on the file its payload names.
    (A second event for an output a job is still writing starts a run that stops at once, saying
    which job holds it: the output's lock.)"""
    return DeploymentEventTrigger(
        name=f"enrich-file/{name}: {FILE_ARRIVED}",
        expect={FILE_ARRIVED},
        match={"prefect.resource.id": "*"},
        parameters={"input": "{{ event.payload.input }}", "output": "{{ event.payload.output }}"},
    )
