"""``enrich serve``: the deployments in a long-running process; ``enrich submit``: a job on them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from enrich.cli.cache import recorded_cache_dir
from enrich.cli.exits import error
from enrich.cli.job_options import job_options
from flows.environment import keep_prefect_on_loopback
from flows.serve import LOCAL_PREFECT_PORT
from service import load_spec


def serve_command(args: argparse.Namespace) -> int:
    """Serve enrich-file and enrich-inbox until SIGTERM or Ctrl-C."""
    keep_prefect_on_loopback()
    from flows.serve import serve_deployments  # only this path pays for Prefect's import

    for name in ("inbox", "outbox"):
        Path(getattr(args, name)).mkdir(parents=True, exist_ok=True)
    load_spec(args.spec, environ=os.environ)  # a bad spec fails here, not at the first sweep
    cache_dir = recorded_cache_dir(args)
    serve_deployments(
        Path(args.inbox), Path(args.outbox), Path(args.spec), args.interval, args.api_port, cache_dir
    )
    return 0


def submit_command(args: argparse.Namespace) -> int:
    """Run a job on the served enrich-file deployment and wait for it."""
    options = job_options(args, cache_dir=recorded_cache_dir(args))
    # An explicit --api-url wins over the environment; without either, serve's local server.
    if args.api_url:
        os.environ["PREFECT_API_URL"] = args.api_url
    os.environ.setdefault("PREFECT_API_URL", f"http://127.0.0.1:{LOCAL_PREFECT_PORT}/api")
    keep_prefect_on_loopback()
    from prefect.deployments import run_deployment

    output = str(Path(args.output).resolve())
    parameters = {
        "input": str(Path(args.input).resolve()),
        "spec": str(Path(args.spec).resolve()),
        "output": output,
        # The cache's location always travels: left out, the deployment's default would apply.
        "options": options.model_dump(mode="json", exclude_defaults=True) | {"cache_dir": options.cache_dir},
    }
    flow_run: Any = run_deployment("enrich-file/enrich-file", parameters=parameters, timeout=args.timeout)
    state = flow_run.state
    if state is None or not state.is_completed():
        name = state.name if state is not None else "unknown"
        message = state.message if state is not None else ""
        error(f"flow run {flow_run.name} ended {name}: {message}")
        return 1
    print(f"flow run {flow_run.name} completed; output {output}")
    return 0
