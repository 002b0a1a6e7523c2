"""``enrich run``: a job from file to file, as the enrich-file Prefect flow or (``--no-flow``) on
the engine alone, with the terminal's progress display and the summary at the end."""

from __future__ import annotations

import argparse
import inspect
import os
from typing import Any

from enrich.cli.cache import cache_location, recorded_cache_dir
from enrich.cli.exits import EXIT_BAD_INPUT, circuit_opened, judge, stopped
from enrich.cli.job_options import job_options
from enrich.cli.one_line import error
from enrich.cli.process import StoppedBySignalError, run_on_fast_loop
from enrich.cli.progress import console_progress
from flows.aws_credentials import use_aws_credentials
from flows.environment import console_log_settings, keep_prefect_on_loopback, local_mode_settings
from flows.parameters import EnrichFileOptions
from flows.secret_blocks import load_spec_with_blocks
from service import (
    CircuitOpenError,
    EnrichError,
    EnrichStats,
    JobOptions,
    Spec,
    check_job,
    format_summary,
    run_job,
)


def run_command(args: argparse.Namespace) -> int:
    """Run the job the arguments describe; its exit status."""
    if not args.no_flow:
        options = job_options(args, cache_dir=recorded_cache_dir(args))
        use_aws_credentials(options.aws_credentials)
        # Checked here, before Prefect starts (~10 s): a bad spec or input is one line at once,
        # and no failed flow run is recorded for a typo. The flow checks again where it runs.
        spec = options.applied_to(load_spec_with_blocks(args.spec, os.environ))
        check_job(args.input, spec, args.output, overwrite=options.overwrite)
        return _run_as_flow(args, options)
    location = None if args.no_cache else cache_location(args)
    options = job_options(args, cache_dir=None if location is None else str(location))
    use_aws_credentials(options.aws_credentials)
    if options.on_dask:
        error("--dask and --dask-workers run batches as Prefect tasks: drop --no-flow")
        return EXIT_BAD_INPUT
    if options.batches_per_task_run is not None:
        error("--batches-per-task-run groups batches into Prefect task runs: drop --no-flow")
        return EXIT_BAD_INPUT
    spec = options.applied_to(load_spec_with_blocks(args.spec, os.environ))
    return run_and_report(args.input, spec, args.output, options, args.max_error_ratio, quiet=args.quiet)


def run_and_report(
    input_spec: str,
    spec: Spec,
    output: str,
    options: JobOptions,
    max_error_ratio: float,
    *,
    quiet: bool = False,
) -> int:
    """Run the job on the engine alone (no Prefect), showing progress; print the summary."""
    display, report = console_progress(quiet=quiet)
    try:
        with display:
            stats = run_on_fast_loop(run_job(input_spec, spec, output, options, progress=report))
    except CircuitOpenError as exc:
        return circuit_opened(exc)
    except StoppedBySignalError as exc:
        return stopped(str(exc), exc.signal_number, output)
    return _summarize(stats, output, max_error_ratio, quiet=quiet)


def _run_as_flow(args: argparse.Namespace, options: EnrichFileOptions) -> int:
    """Run the job as the enrich-file flow (Prefect's local mode unless PREFECT_API_URL is set)."""
    keep_prefect_on_loopback()
    os.environ.update(local_mode_settings(os.environ))
    os.environ.update(console_log_settings(os.environ, quiet=args.quiet, verbose=args.verbose))
    from flows.delivery import deliver_pending_logs_and_events
    from flows.enrich_file import enrich_file  # only this path pays for Prefect's import
    from flows.job import progress_reporter

    input, spec, output = args.input, args.spec, args.output

    async def run() -> tuple[dict[str, Any] | None, BaseException | None]:
        state = await enrich_file(input=input, spec=spec, output=output, options=options, return_state=True)
        return await _flow_result(state)

    display, report = console_progress(quiet=args.quiet)
    token = progress_reporter.set(report)
    try:
        with display:
            result, failure = run_on_fast_loop(run())
    except StoppedBySignalError as exc:
        return stopped(str(exc), exc.signal_number, output)
    finally:
        progress_reporter.reset(token)
        deliver_pending_logs_and_events()  # now, not at exit after the last line printed
    if isinstance(failure, CircuitOpenError):
        return circuit_opened(failure)
    if isinstance(failure, EnrichError):
        raise failure
    if result is None:
        error(f"the job's flow run did not complete: {failure}")
        return 1
    return _summarize(EnrichStats(**result), output, args.max_error_ratio, quiet=args.quiet)


async def _flow_result(state: Any) -> tuple[dict[str, Any] | None, BaseException | None]:
    """A finished flow run's result, or the exception it failed with."""
    # In async code State.result() returns an awaitable; the stubs do not say so.
    outcome: Any = state.result(raise_on_failure=False)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    if state.is_completed():
        return outcome, None
    return None, outcome if isinstance(outcome, BaseException) else RuntimeError(str(state.message))


def _summarize(stats: EnrichStats, output: str, max_error_ratio: float, *, quiet: bool) -> int:
    if not quiet:
        print(format_summary(stats))
        print(f"output      {output}")
    return judge(stats, max_error_ratio)
