"""``enrich serve``: the deployments in a long-running process (``enrich submit`` sends them jobs)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from enrich.cli.cache import recorded_cache_dir
from enrich.cli.exits import EXIT_ENVIRONMENT
from enrich.cli.one_line import error
from enrich.cli.process import StoppedBySignalError, stopped_by_signals_while_starting
from enrich.cli.progress import printer
from flows.environment import console_log_settings, keep_prefect_on_loopback
from flows.local_server import LocalServerError
from flows.secret_blocks import load_spec_with_blocks
from service import folder_location, make_folder


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
    load_spec_with_blocks(args.spec, os.environ, placeholders=True)  # a bad spec fails here, before Prefect
    keep_prefect_on_loopback()
    # A service's log: the runner's INFO lines (runs started, cancelled) stay, unless -q.
    os.environ.update(console_log_settings(os.environ, quiet=args.quiet, verbose=not args.quiet))
    from flows.serve import serve_deployments  # only serve pays for Prefect's import

    inbox, outbox = folder_location(args.inbox, "--inbox "), folder_location(args.outbox, "--outbox ")
    for folder in (inbox, outbox):
        make_folder(folder)
    cache_dir = recorded_cache_dir(args)
    say = printer(quiet=args.quiet)
    try:
        serve_deployments(
            inbox,
            outbox,
            Path(args.spec),
            args.interval,
            args.api_port,
            cache_dir,
            say,
            limit=args.limit,
        )
    except LocalServerError as exc:
        error(str(exc))
        return EXIT_ENVIRONMENT
    return 0
