"""``enrich deploy``: the enrich-file deployment on an existing work pool (``flows.deploy``), for
``prefect worker start --pool POOL`` to run; ``enrich submit --deployment`` sends it jobs."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from enrich.cli.exits import EXIT_BAD_INPUT, UsageError, error
from enrich.cli.submit import point_at_api
from flows.environment import keep_prefect_on_loopback
from flows.secret_blocks import load_spec_with_blocks
from service import UnsetAsPlaceholders

# What --param may set: the file a scheduled run enriches, and where it goes.
PATH_PARAMETERS = ("input", "output")


def deploy_command(args: argparse.Namespace) -> int:
    """Create or update the deployment; say what it is and how to run it."""
    # The spec is checked here (its ${NAME} values are the worker's), before Prefect's import.
    load_spec_with_blocks(args.spec, UnsetAsPlaceholders(os.environ), placeholders=True)
    parameters = _path_parameters(args.param)
    if (args.cron or args.interval) and set(parameters) != set(PATH_PARAMETERS):
        error("a schedule needs the file it enriches: --param input=PATH --param output=PATH")
        return EXIT_BAD_INPUT
    if args.timezone and not (args.cron or args.interval):
        error("--timezone needs --cron or --interval")
        return EXIT_BAD_INPUT
    if (args.inbox is None) != (args.outbox is None):
        error("--inbox and --outbox go together")
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
        inbox=None if args.inbox is None else str(Path(args.inbox).resolve()),
        outbox=None if args.outbox is None else str(Path(args.outbox).resolve()),
        sweep_s=args.sweep_every,
    )
    deployed = asyncio.run(deploy_enrich_file(request))
    verb = "created" if deployed.created else "updated"
    print(f"{verb} deployment {deployed.full_name} ({deployed.id}) on work pool {args.pool}")
    for line in _how_it_runs(args, deployed.full_name, api_url):
        print(f"  {line}")
    return 0


def _how_it_runs(args: argparse.Namespace, full_name: str, api_url: str) -> list[str]:
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
    submit = f"enrich submit IN --spec SPEC --output OUT --deployment {full_name} --api-url {api_url}"
    lines.append(f"run a job     {submit}")
    lines.append(f"run its jobs  PREFECT_API_URL={api_url} prefect worker start --pool {args.pool}")
    return lines


def _path_parameters(given: list[str] | None) -> dict[str, str]:
    """``--param input=PATH`` and ``--param output=PATH``, made absolute."""
    parameters: dict[str, str] = {}
    for item in given or []:
        name, equals, value = item.partition("=")
        if not equals or name not in PATH_PARAMETERS or not value:
            raise UsageError(f"--param {item!r}: expected input=PATH or output=PATH")
        parameters[name] = str(Path(value).resolve())
    return parameters
