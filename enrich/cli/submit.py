"""``enrich submit``: a job run on the enrich-file deployment ``enrich serve`` serves, followed to
its end (``flows.submission``): the run's page in the UI at once, its progress while it runs, its
summary when it ends, and the exit status ``run`` would give. With ``--no-wait``: the run's id and
page, and nothing more.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

import httpx

from enrich.cli.cache import recorded_cache_dir
from enrich.cli.exits import EXIT_BAD_INPUT, EXIT_CIRCUIT_OPEN, EXIT_ENVIRONMENT, judge_rows
from enrich.cli.job_options import job_options
from enrich.cli.one_line import error
from enrich.cli.progress import printer
from flows.aws_credentials import use_aws_credentials
from flows.environment import console_log_settings, keep_prefect_on_loopback
from flows.local_server import LOCAL_PREFECT_PORT
from flows.secret_blocks import load_spec_with_blocks
from service import UnsetAsPlaceholders, check_job, resolved_location

# Prefect's client retries a lost connection 5 times with growing waits (about 70 s): a submit
# whose server stopped would sit silent that long. Two retries bridge a hiccup, not an outage.
CLIENT_RETRIES = {"PREFECT_CLIENT_MAX_RETRIES": "2"}


def submit_command(args: argparse.Namespace) -> int:
    """Run a job on the served enrich-file deployment; follow it unless --no-wait."""
    options = job_options(args, cache_dir=recorded_cache_dir(args))
    # Checked here, before Prefect's import and any request to its server: a bad spec or input is
    # one line at once, and no failed flow run is recorded for it. The spec's ${NAME} values are
    # the served process's: this one need not have them.
    spec = load_spec_with_blocks(args.spec, UnsetAsPlaceholders(os.environ), placeholders=True)
    if options.aws_credentials:  # a bucket is checked with the block's keys: read from the server
        if point_at_api(args.api_url) is None:
            return EXIT_BAD_INPUT
        use_aws_credentials(options.aws_credentials)
    check_job(args.input, options.applied_to(spec), args.output, overwrite=options.overwrite)
    if point_at_api(args.api_url) is None:
        return EXIT_BAD_INPUT
    keep_prefect_on_loopback()
    os.environ.update({name: value for name, value in CLIENT_RETRIES.items() if name not in os.environ})
    os.environ.update(console_log_settings(os.environ, quiet=args.quiet, verbose=args.verbose))
    parameters = {
        "input": resolved_location(args.input),
        "spec": str(Path(args.spec).resolve()),
        "output": resolved_location(args.output),
        # The cache's location always travels: left out, the deployment's default would apply.
        "options": options.model_dump(mode="json", exclude_defaults=True) | {"cache_dir": options.cache_dir},
    }
    return asyncio.run(_submit_and_follow(args, parameters))


async def _submit_and_follow(args: argparse.Namespace, parameters: dict[str, Any]) -> int:
    """Submit, then follow the run (``ApiGoneError``, an ``OSError``, when the API stops
    answering; ``NoDeploymentError`` when nothing serves enrich-file there)."""
    from flows.submission import Submission, run_page  # Prefect's import: this path only

    async with Submission(args.deployment) as submission:
        flow_run = await submission.submit(parameters)
        page = run_page(flow_run.id)
        if args.no_wait:
            print(f"flow run {flow_run.name} ({flow_run.id}) submitted: {page}")
            return 0
        say = printer(quiet=args.quiet)
        say(f"flow run {flow_run.name} submitted: {page}")
        state = await submission.follow(flow_run.id, args.timeout, lambda line: say(f"progress: {line}"))
        if state is None:
            error(f"flow run {flow_run.name} did not end within --timeout {args.timeout:g} s: {page}")
            return EXIT_ENVIRONMENT
        if not state.is_completed():
            return _not_completed(flow_run.name, state, page)
        summary, figures = await submission.summary(flow_run.id)
    say(summary)
    say(f"output      {parameters['output']}")
    say(f"flow run    {page}")
    return judge_rows(figures.get("rows ok", 0), figures.get("rows failed", 0), args.max_error_ratio)


def _not_completed(name: str, state: Any, page: str) -> int:
    """Say how a run that did not complete ended; the exit status ``run`` would give."""
    message = state.message or ""
    if state.is_cancelled() or state.is_crashed():
        error(
            f"flow run {name} was {state.name.lower()} ({message or 'serve stopped?'}); its finished "
            f"batches are kept: submit again to resume ({page})"
        )
        return EXIT_ENVIRONMENT
    error(f"flow run {name} failed: {message} ({page})")
    if "CircuitOpenError" in message:
        return EXIT_CIRCUIT_OPEN
    return (
        EXIT_BAD_INPUT if any(kind in message for kind in ("InputError", "SpecError")) else EXIT_ENVIRONMENT
    )


def point_at_api(given: str | None) -> str | None:
    """The Prefect API this process talks to, set in ``PREFECT_API_URL``: ``given`` (--api-url),
    else the environment's, else serve's local server; None (said) when nothing answers there."""
    if given:
        os.environ["PREFECT_API_URL"] = given
    api_url = os.environ.setdefault("PREFECT_API_URL", f"http://127.0.0.1:{LOCAL_PREFECT_PORT}/api")
    if not _answers(api_url):
        error(
            f"no Prefect API answers at {api_url}: start `enrich serve` (its local server listens "
            "there), or name the API with --api-url or PREFECT_API_URL"
        )
        return None
    return api_url


def _answers(api_url: str) -> bool:
    """Whether anything answers HTTP at ``api_url`` (any status: an API that wants credentials
    still answers); Prefect's client would retry for a while, then print a long traceback."""
    try:
        httpx.get(f"{api_url.rstrip('/')}/health", timeout=5)
    except httpx.TransportError:
        return False
    return True
