"""What a job tells the world when it ends: a Prefect event, the notifiers, the flow's state hooks.

``enrich.job.completed`` carries the job's statistics; ``enrich.job.failed`` the reason. Both name
the job by its output (resource ``enrich.job.<OUT>``), so an automation can follow one output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from prefect.client.schemas.objects import FlowRun, State
from prefect.events import emit_event
from prefect.flows import Flow
from prefect.logging import get_logger

from service import EnrichStats

Notifier = Callable[[str, dict[str, Any]], None]
_notifiers: list[Notifier] = []


def add_notifier(notifier: Notifier) -> Callable[[], None]:
    """Call ``notifier(event_name, payload)`` when a job completes or fails (email, chat, pager...);
    returns a function that removes it again."""
    _notifiers.append(notifier)
    return lambda: _notifiers.remove(notifier)


def emit_job_event(
    event: str, parameters: dict[str, Any], stats: EnrichStats | None = None, error: str | None = None
) -> None:
    """Emit ``event`` for the job run with ``parameters``, and tell every notifier."""
    payload: dict[str, Any] = {"input": parameters.get("input"), "output": parameters.get("output")}
    if stats is not None:
        payload |= dataclasses.asdict(stats)
    if error is not None:
        payload["error"] = error
    emit_event(
        event=event,
        resource={"prefect.resource.id": f"enrich.job.{parameters.get('output')}"},
        payload=payload,
    )
    for notifier in list(_notifiers):
        notifier(event, payload)


def on_completion(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Flow hook: log the completion (the event is emitted by the job, with its statistics)."""
    _logger_for(flow_run).info("job %s completed", flow_run.name)


def on_failure(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Flow hook: log the failure and emit ``enrich.job.failed``."""
    _logger_for(flow_run).error("job %s failed: %s", flow_run.name, state.message)
    emit_job_event("enrich.job.failed", dict(flow_run.parameters), error=state.message or "failed")


def on_crashed(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Flow hook: log the crash and emit ``enrich.job.failed``."""
    _logger_for(flow_run).error("job %s crashed: %s", flow_run.name, state.message)
    emit_job_event("enrich.job.failed", dict(flow_run.parameters), error=f"crashed: {state.message}")


def _logger_for(flow_run: FlowRun) -> Any:
    """A logger for hooks, which may run outside the flow's context."""
    return get_logger("enrich.flows").getChild(str(flow_run.id))
