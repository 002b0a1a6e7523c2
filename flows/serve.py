"""``enrich serve``: a long-running process hosting the enrich-file and enrich-inbox deployments.

It starts a local Prefect server (SQLite under PREFECT_HOME) unless ``PREFECT_API_URL`` points at
one, then serves both deployments with the runner's health endpoint on (``flows/runner.py``).
SIGTERM (or Ctrl-C) stops the runner (Prefect cancels runs in flight; their checkpoints make a
rerun resume) and the server; the server's death stops serve too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flows.local_server import start_local_server, stop_local_server
from service import TableLocation, resolved_location

# The first line serve prints once it serves; tests and the image's checks wait for it.
SERVING_HEADLINE = "serving with spec"
# The deployment serve serves jobs on, which `enrich submit` runs jobs on unless told another.
ON_DEMAND_DEPLOYMENT = "enrich-file/enrich-file"
# Prefect's own default for a runner (PREFECT_RUNNER_PROCESS_LIMIT), as the tutorial's serve(limit=5).
DEFAULT_RUN_LIMIT = 5


def serve_deployments(
    inbox: TableLocation,
    outbox: TableLocation,
    spec: Path,
    interval_s: float,
    api_port: int,
    cache_dir: str | None,
    say: Callable[[str], None] = print,
    limit: int = DEFAULT_RUN_LIMIT,
) -> None:
    """Serve enrich-file (on demand) and enrich-inbox (every ``interval_s``) until stopped, at most
    ``limit`` runs at once (more wait their turn); their jobs use the response cache at
    ``cache_dir`` unless a run's parameters say otherwise. ``say`` is told what is served, and where.

    Raises ``LocalServerError`` when the local Prefect server does not start or stops while
    serving (a runner without its server would look alive and do nothing).
    """
    server = None
    if not os.environ.get("PREFECT_API_URL"):
        say(f"starting a local Prefect server on 127.0.0.1:{api_port}")
        server, url = start_local_server(api_port)
        os.environ["PREFECT_API_URL"] = url  # before Prefect reads its settings below
    try:
        from flows.runner import serve_until_stopped  # imports Prefect: after its settings above

        deployments = _deployments(inbox, outbox, spec, interval_s, cache_dir)
        for line in what_is_served(inbox, outbox, spec, interval_s, os.environ, limit):
            say(line)
        serve_until_stopped(*deployments, server=server, limit=limit)
    finally:
        if server is not None:
            if server.poll() is None:
                from flows.delivery import deliver_pending_logs_and_events  # Prefect's: after its settings

                deliver_pending_logs_and_events()
            stop_local_server(server)


def what_is_served(
    inbox: TableLocation,
    outbox: TableLocation,
    spec: Path,
    interval_s: float,
    environ: Mapping[str, str],
    limit: int,
) -> list[str]:
    """What serve tells at start: its deployments and their schedule, how many runs at once, the
    Prefect UI and API, the runner's health endpoint, and how to stop it."""
    api = environ["PREFECT_API_URL"].rstrip("/")
    ui = environ.get("PREFECT_UI_URL") or api.removesuffix("/api")
    host = environ.get("PREFECT_RUNNER_SERVER_HOST", "localhost")
    port = environ.get("PREFECT_RUNNER_SERVER_PORT", "8080")
    submit = f"enrich submit IN --spec SPEC --output OUT --api-url {api}"
    sweep = f"each new file of {str(inbox).rstrip('/')}/ into {str(outbox).rstrip('/')}/"
    return [
        f"{SERVING_HEADLINE} {spec}:",
        f"  enrich-file/enrich-file    on demand: {submit}",
        f"  enrich-inbox/enrich-inbox  every {interval_s:g} s: {sweep}",
        f"  at most {limit} run{'' if limit == 1 else 's'} at once (--limit); more wait their turn",
        f"  Prefect UI    {ui}",
        f"  Prefect API   {api}",
        f"  health        http://{host}:{port}/health",
        "stop with Ctrl-C or SIGTERM (runs in flight are cancelled; submitted again, they resume)",
    ]


def _deployments(
    inbox: TableLocation, outbox: TableLocation, spec: Path, interval_s: float, cache_dir: str | None
) -> tuple[Any, Any]:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    from flows.enrich_file import enrich_file
    from flows.inbox import enrich_inbox

    # Called from sync code, to_deployment returns the deployment (its stubs say "or a coroutine").
    on_demand: Any = enrich_file.to_deployment(
        name="enrich-file", parameters={"options": {"cache_dir": cache_dir}}
    )
    sweep: Any = enrich_inbox.to_deployment(
        name="enrich-inbox",
        interval=interval_s,
        # A sweep still running when the next is due: skip the new one (a file is swept once).
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        parameters={
            "inbox": resolved_location(inbox),
            "outbox": resolved_location(outbox),
            "spec": str(spec.resolve()),
            "cache_dir": cache_dir,
        },
    )
    return on_demand, sweep
