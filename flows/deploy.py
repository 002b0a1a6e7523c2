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
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.events import DeploymentEventTrigger
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
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
    notify_block: str | None = None  # "TYPE/NAME" of a notification block, told of failed jobs
    inbox: str | None = None  # with outbox: an enrich-inbox deployment too, sweeping every sweep_s
    outbox: str | None = None
    sweep_s: float = 60.0
    # The pool's job variables for its runs (a docker pool's "image", "env", "volumes", ...).
    job_variables: dict[str, Any] = field(default_factory=dict)


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
    notify_block_id = None
    async with get_client() as client:
        if request.notify_block is not None:  # a missing block fails before anything is made
            notify_block_id = await _notification_block_id(client, request.notify_block)
        try:
            pool = await client.read_work_pool(request.pool)
        except ObjectNotFound:
            raise DeployError(
                f"no work pool {request.pool!r} at {get_current_settings().api.url}: create it first, "
                f"e.g. prefect work-pool create {request.pool} --type process"
            ) from None
        check_job_variables(request.job_variables, pool.name, pool.type, pool.base_job_template)
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
        job_variables=request.job_variables,
    )
    deployment_id: UUID = await deployment.aapply()
    if request.inbox is not None and request.outbox is not None:
        await _inbox_deployment(request)
    if request.notify_block is not None and notify_block_id is not None:
        await notify_on_failure(request.notify_block, notify_block_id)
    return Deployed(full_name, deployment_id, created)


def check_job_variables(
    job_variables: dict[str, Any], pool: str, pool_type: str, base_job_template: dict[str, Any]
) -> None:
    """``DeployError`` for a job variable the pool's job template does not take (``--image`` on a
    process pool, a misspelt name): the server would store it and every worker ignore it."""
    known = sorted(base_job_template.get("variables", {}).get("properties", {}))
    for name in job_variables:
        if name not in known:
            raise DeployError(
                f"work pool {pool!r} ({pool_type}) takes no job variable {name!r}; "
                f"it takes: {', '.join(known) or 'none'}"
            )


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


async def _inbox_deployment(request: DeploymentRequest) -> UUID:
    """``enrich-inbox/<name>`` on the pool: every ``sweep_s`` each new file of the inbox enriched
    into the outbox, a sweep still running when the next is due making the next one skip (as serve
    does)."""
    from flows.inbox import enrich_inbox  # the inbox flow: only for a deploy that asks for it

    deployment = await enrich_inbox.ato_deployment(
        name=request.name,
        work_pool_name=request.pool,
        entrypoint_type=EntrypointType.MODULE_PATH,
        schedules=[Interval(request.sweep_s)],
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        parameters={"inbox": request.inbox, "outbox": request.outbox, "spec": request.spec},
        job_variables=request.job_variables,
    )
    deployment_id: UUID = await deployment.aapply()
    return deployment_id


JOB_FAILED = "enrich.job.failed"


async def notify_on_failure(block: str, block_id: UUID) -> UUID:
    """The automation that sends ``block`` (a notification block, "TYPE/NAME", whose document is
    ``block_id``) a message for every ``JOB_FAILED`` event: created, or replaced when one of its
    name exists (deploying again makes no second). Its id."""
    name = f"enrich: {JOB_FAILED} -> {block}"
    async with get_client() as client:
        for existing in await client.read_automations_by_name(name):
            await client.delete_automation(existing.id)
        automation = AutomationCore(
            name=name,
            description="Made by enrich deploy --notify-block: a message for each failed enrich job.",
            trigger=EventTrigger(
                expect={JOB_FAILED},
                match={"prefect.resource.id": "enrich.job.*"},
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[
                SendNotification(
                    block_document_id=block_id,
                    subject="enrich job failed: {{ event.payload.output }}",
                    body="enrich job on {{ event.payload.input }} into {{ event.payload.output }} failed: "
                    "{{ event.payload.error }}",
                )
            ],
        )
        automation_id: UUID = await client.create_automation(automation)
        return automation_id


async def _notification_block_id(client: Any, block: str) -> UUID:
    """The id of the block named "TYPE/NAME" (``DeployError`` when there is none)."""
    block_type, slash, block_name = block.partition("/")
    if not slash or not block_type or not block_name:
        raise DeployError(f"--notify-block {block!r}: expected TYPE/NAME, e.g. slack-webhook/ops")
    try:
        document = await client.read_block_document_by_name(block_name, block_type, include_secrets=False)
    except ObjectNotFound:
        raise DeployError(
            f"no {block_type} block named {block_name!r} at {get_current_settings().api.url}"
        ) from None
    block_id: UUID = document.id
    return block_id
