"""A job submitted to the enrich-file deployment and followed from another process (``enrich
submit``): the run created, its state, its progress artifact's line, its summary artifacts, its
page in the UI. Every request to the API that fails for want of an answer is one error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterType, FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, State
from prefect.deployments.flow_runs import arun_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import get_current_settings

from flows.serve import ON_DEMAND_DEPLOYMENT as DEPLOYMENT
from service import EnrichError

POLL_EVERY_S = 1.0


class ApiGoneError(OSError):
    """The Prefect API stopped answering (the machine's failure, not the job's: submit again)."""


class NoDeploymentError(EnrichError):
    """The API has no enrich-file deployment (no ``enrich serve`` serves it there)."""


def run_page(flow_run_id: UUID) -> str:
    """The flow run's page in the Prefect UI."""
    settings = get_current_settings()
    ui = settings.ui_url or str(settings.api.url).removesuffix("/api")
    return f"{ui.rstrip('/')}/runs/flow-run/{flow_run_id}"


class Submission:
    """The API's client while a run is submitted and followed; an async context manager."""

    def __init__(self, deployment: str = DEPLOYMENT) -> None:
        self._client: PrefectClient = get_client()
        self._deployment = deployment

    async def __aenter__(self) -> Submission:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.__aexit__(kind, exc, tb)

    async def submit(self, parameters: dict[str, Any]) -> FlowRun:
        """A new run of the deployment with ``parameters``."""
        try:
            run: FlowRun = await _answered(
                arun_deployment(self._deployment, parameters=parameters, timeout=0, as_subflow=False)
            )
        except ObjectNotFound:
            url = get_current_settings().api.url
            hint = (
                "is `enrich serve` serving there?"
                if self._deployment == DEPLOYMENT
                else "see `enrich deploy`"
            )
            raise NoDeploymentError(f"no {self._deployment} deployment at {url}: {hint}") from None
        return run

    async def follow(
        self, flow_run_id: UUID, timeout_s: float, progress: Callable[[str], None]
    ) -> State | None:
        """The run's final state, telling ``progress`` each new progress line; None when it did
        not end within ``timeout_s``."""
        give_up = time.monotonic() + timeout_s
        shown = None
        while time.monotonic() < give_up:
            run: FlowRun = await _answered(self._client.read_flow_run(flow_run_id))
            if run.state is not None and run.state.is_final():
                return run.state
            line = await self._progress_line(flow_run_id)
            if line is not None and line != shown:
                progress(line)
                shown = line
            await asyncio.sleep(POLL_EVERY_S)
        return None

    async def summary(self, flow_run_id: UUID) -> tuple[str, dict[str, Any]]:
        """The finished run's summary text (its markdown artifact) and figures (its table)."""
        summary, figures = "", {}
        for artifact in await self._artifacts(flow_run_id, "markdown", "table"):
            if artifact.type == "markdown" and (artifact.key or "").endswith("-summary"):
                summary = str(artifact.data).split("```")[1].strip("\n")
            elif artifact.type == "table" and (artifact.key or "").endswith("-table"):
                rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
                figures = {row["figure"]: row["value"] for row in rows}
        return summary, figures

    async def _progress_line(self, flow_run_id: UUID) -> str | None:
        found = await self._artifacts(flow_run_id, "progress")
        line = found[0].description if found else None
        return None if line in (None, "starting") else line

    async def _artifacts(self, flow_run_id: UUID, *kinds: str) -> list[Any]:
        found: list[Any] = await _answered(
            self._client.read_artifacts(
                artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=list(kinds))),
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            )
        )
        return found


async def _answered(request: Any) -> Any:
    """The answer to a request to the Prefect API; ``ApiGoneError`` when it does not answer."""
    try:
        return await request
    except (httpx.TransportError, OSError) as exc:
        url = get_current_settings().api.url
        raise ApiGoneError(
            f"the Prefect API at {url} stopped answering ({type(exc).__name__}); the run's finished "
            "batches are kept"
        ) from None
