"""``enrich deploy``: the enrich-file deployment on an existing work pool (``flows.deploy``), for
``prefect worker start --pool POOL`` to run; ``enrich submit --deployment`` sends it jobs."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

from enrich.cli.exits import EXIT_BAD_INPUT, UsageError
from enrich.cli.one_line import error
from enrich.cli.submit import point_at_api
from flows.environment import keep_prefect_on_loopback
from flows.secret_blocks import load_spec_with_blocks
from service import UnsetAsPlaceholders, resolved_location

# What --param may set: the file a scheduled run enriches, and where it goes.
PATH_PARAMETERS = ("input", "output")


def deploy_command(args: argparse.Namespace) -> int:
    """Create or update the deployment; say what it is and how to run it."""
    # The spec is checked here (its ${NAME} values are the worker's), before Prefect's import.
    load_spec_with_blocks(args.spec, UnsetAsPlaceholders(os.environ), placeholders=True)
    parameters = _path_parameters(args.param)
    job_variables = _job_variables(args.job_variable, args.image)
    mistake = _options_mistake(args, parameters)
    if mistake is not None:
        error(mistake)
        return EXIT_BAD_INPUT
    api_url = point_at_api(args.api_url)
    if api_url is None:
        return EXIT_BAD_INPUT
    keep_prefect_on_loopback()
    from flows.deploy import DeploymentRequest, deploy_enrich_file  # Prefect's import: this path only

    request = DeploymentRequest(
        pool=args.pool,
        name=args.name,
        spec=str(Path(args.spec).resolve()),
        cron=args.cron,
        timezone=args.timezone,
        interval_s=args.interval,
        parameters=parameters,
        on_event=args.on_event,
        notify_block=args.notify_block,
        inbox=None if args.inbox is None else resolved_location(args.inbox),
        outbox=None if args.outbox is None else resolved_location(args.outbox),
        sweep_s=args.sweep_every,
        job_variables=job_variables,
    )
    deployed = asyncio.run(deploy_enrich_file(request))
    verb = "created" if deployed.created else "updated"
    print(f"{verb} deployment {deployed.full_name} ({deployed.id}) on work pool {args.pool}")
    for line in _how_it_runs(args, deployed.full_name, api_url, job_variables):
        print(f"  {line}")
    return 0


def _options_mistake(args: argparse.Namespace, parameters: dict[str, str]) -> str | None:
    """What is wrong with the options taken together, if anything."""
    if (args.cron or args.interval) and set(parameters) != set(PATH_PARAMETERS):
        return "a schedule needs the file it enriches: --param input=PATH --param output=PATH"
    if args.timezone and not (args.cron or args.interval):
        return "--timezone needs --cron or --interval"
    if (args.inbox is None) != (args.outbox is None):
        return "--inbox and --outbox go together"
    return None


def _how_it_runs(
    args: argparse.Namespace, full_name: str, api_url: str, job_variables: dict[str, Any]
) -> list[str]:
    """What starts the deployment's runs, and what runs them."""
    lines = []
    if args.cron or args.interval:
        every = f"cron {args.cron!r}" if args.cron else f"every {args.interval:g} s"
        lines.append(f"schedule      {every}{f' in {args.timezone}' if args.timezone else ''}")
    if args.on_event:
        lines.append('on event      enrich.file.arrived, its payload {"input": PATH, "output": PATH}')
    if args.inbox:
        sweep = f"every {args.sweep_every:g} s: each new file of {args.inbox}/ into {args.outbox}/"
        lines.append(f"inbox         enrich-inbox/{args.name} {sweep}")
    if args.notify_block:
        lines.append(
            f"on failure    a message through {args.notify_block} (an automation on enrich.job.failed)"
        )
    if job_variables:  # names only: an env variable's value may be a secret
        lines.append(f"job variables {', '.join(sorted(job_variables))}")
    submit = f"enrich submit IN --spec SPEC --output OUT --deployment {full_name} --api-url {api_url}"
    lines.append(f"run a job     {submit}")
    lines.append(f"run its jobs  PREFECT_API_URL={api_url} prefect worker start --pool {args.pool}")
    return lines


def _path_parameters(given: list[str] | None) -> dict[str, str]:
    """``--param input=PATH`` and ``--param output=PATH``, made absolute (a URL stays as given)."""
    parameters: dict[str, str] = {}
    for item in given or []:
        name, equals, value = item.partition("=")
        if not equals or name not in PATH_PARAMETERS or not value:
            raise UsageError(f"--param {item!r}: expected input=PATH or output=PATH")
        parameters[name] = resolved_location(value)
    return parameters


def _job_variables(given: list[str] | None, image: str | None) -> dict[str, Any]:
    """``--job-variable NAME=VALUE`` (VALUE read as JSON when it is JSON, else as text), and
    ``--image`` as the variable ``image``."""
    variables: dict[str, Any] = {}
    for item in given or []:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise UsageError(f"--job-variable {item!r}: expected NAME=VALUE")
        try:
            variables[name] = json.loads(value)
        except json.JSONDecodeError:
            variables[name] = value
    if image is not None:
        if "image" in variables:
            raise UsageError("--image and --job-variable image=...: give the image once")
        variables["image"] = image
    return variables
