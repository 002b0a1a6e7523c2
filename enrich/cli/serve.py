"""``enrich serve``: the deployments in a long-running process; ``enrich submit``: a job on them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import httpx

from enrich.cli.cache import recorded_cache_dir
from enrich.cli.exits import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, error
from enrich.cli.job_options import job_options
from enrich.cli.process import StoppedBySignalError, stopped_by_signals_while_starting
from flows.environment import keep_prefect_on_loopback
from flows.local_server import LOCAL_PREFECT_PORT, LocalServerError
from service import UnsetAsPlaceholders, check_job, load_spec


def serve_command(args: argparse.Namespace) -> int:
    """Serve enrich-file and enrich-inbox until SIGTERM or Ctrl-C; non-zero when the local Prefect
    server does not start or stops under it."""
    with stopped_by_signals_while_starting():
        try:
            return _serve(args)
        except StoppedBySignalError as exc:
            error(f"stopped by {exc} while starting; nothing was served")
            return 128 + exc.signal_number


def _serve(args: argparse.Namespace) -> int:
    keep_prefect_on_loopback()
    from flows.serve import serve_deployments  # only serve pays for Prefect's import

    load_spec(args.spec, environ=os.environ)  # a bad spec fails here, not at the first sweep
    for name in ("inbox", "outbox"):
        Path(getattr(args, name)).mkdir(parents=True, exist_ok=True)
    cache_dir = recorded_cache_dir(args)
    try:
        serve_deployments(
            Path(args.inbox), Path(args.outbox), Path(args.spec), args.interval, args.api_port, cache_dir
        )
    except LocalServerError as exc:
        error(str(exc))
        return EXIT_ENVIRONMENT
    return 0


def submit_command(args: argparse.Namespace) -> int:
    """Run a job on the served enrich-file deployment and wait for it."""
    options = job_options(args, cache_dir=recorded_cache_dir(args))
    # Checked here, before Prefect's import and any request to its server: a bad spec or input is
    # one line at once, and no failed flow run is recorded for it. The spec's ${NAME} values are
    # the served process's: this one need not have them.
    spec = load_spec(args.spec, environ=UnsetAsPlaceholders(os.environ))
    check_job(args.input, options.applied_to(spec), Path(args.output))
    # An explicit --api-url wins over the environment; without either, serve's local server.
    if args.api_url:
        os.environ["PREFECT_API_URL"] = args.api_url
    api_url = os.environ.setdefault("PREFECT_API_URL", f"http://127.0.0.1:{LOCAL_PREFECT_PORT}/api")
    if not _answers(api_url):
        error(
            f"no Prefect API answers at {api_url}: start `enrich serve` (its local server listens "
            "there), or name the API with --api-url or PREFECT_API_URL"
        )
        return EXIT_BAD_INPUT
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


def _answers(api_url: str) -> bool:
    """Whether anything answers HTTP at ``api_url`` (any status: an API that wants credentials
    still answers); Prefect's client would retry for a while, then print a long traceback."""
    try:
        httpx.get(f"{api_url.rstrip('/')}/health", timeout=5)
    except httpx.TransportError:
        return False
    return True
