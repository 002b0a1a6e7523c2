"""The ``enrich`` command line. Configuration is built here, at the edge, from argv and the environment."""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from service.errors import CircuitOpenError, EnrichError
from service.frame_check import check_schema
from service.response_cache import is_redis_url
from service.spec import Spec, load_spec, with_limit_overrides
from service.stats import EnrichStats
from service.table_io import read_schema

T = TypeVar("T")

EXIT_BAD_INPUT = 2
EXIT_CIRCUIT_OPEN = 3
EXIT_TOO_MANY_ERRORS = 4
LOCAL_PREFECT_PORT = 4200  # where enrich serve starts its local Prefect server, and submit looks


def _validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec, environ=os.environ)
    if args.input:
        check_schema(read_schema(args.input), spec)
    what = f"{args.spec} and {args.input}" if args.input else args.spec
    columns = ", ".join(f"{c.name} ({c.type})" for c in spec.columns)
    mode = f"bulk, {spec.bulk.size} keys per request" if spec.bulk else "one key per request"
    print(f"ok: {what}: {spec.request.method} {spec.request.origin}, {mode}; adds {columns}")
    return 0


def collect_garbage_less_often() -> None:
    """The garbage collector's settings for a process running jobs (the CLI's, the benchmarks')."""
    import gc

    # Batches allocate millions of short-lived objects (answers, outcomes), and every collection
    # of the oldest generation walks every live object, Prefect's included: a 300k-row flow run
    # took 23.5 s with the defaults, 14.1 s with no collection at all. So collect less often, and
    # move what is imported so far out of the collector's sight.
    gc.set_threshold(50_000, 50, 100)
    gc.freeze()


def run_on_fast_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop: about 10-20% more requests/s from the same core (benchmarks/)."""
    import uvloop

    collect_garbage_less_often()
    return uvloop.run(main)


def _run_and_report(
    input_spec: str, spec: Spec, output: Path, max_error_ratio: float, **job_options: Any
) -> int:
    from service.run_job import console_progress, run_job

    display, report = console_progress()
    try:
        with display:
            stats = run_on_fast_loop(run_job(input_spec, spec, output, progress=report, **job_options))
    except CircuitOpenError as exc:
        print(f"enrich: error: {exc}; no output written, finished batches kept", file=sys.stderr)
        return EXIT_CIRCUIT_OPEN
    return _report(stats, output, max_error_ratio)


def _report(stats: EnrichStats, output: Path, max_error_ratio: float) -> int:
    from service.summary import format_summary

    print(format_summary(stats))
    print(f"output      {output}")
    ratio = stats.rows_failed / stats.rows if stats.rows else 0.0
    if ratio > max_error_ratio:
        print(
            f"enrich: error: {ratio:.1%} of rows failed, over --max-error-ratio {max_error_ratio:.1%}",
            file=sys.stderr,
        )
        return EXIT_TOO_MANY_ERRORS
    return 0


def _quiet_prefect() -> None:
    """Keep Prefect on loopback: a server it starts would otherwise send telemetry out."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _run_as_flow(args: argparse.Namespace, cache_dir: Path | str | None) -> int:
    """Run the job as the enrich-file Prefect flow (local mode unless PREFECT_API_URL is set)."""
    _quiet_prefect()
    from flows.enrich_file import enrich_file, progress_reporter  # only this path needs Prefect
    from service.run_job import console_progress

    async def run() -> tuple[dict[str, Any] | None, BaseException | None]:
        state = await enrich_file(
            input=args.input,
            spec=args.spec,
            output=args.output,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            rate=args.rate,
            restart=args.restart,
            keep_state=args.keep_state,
            cache_dir=str(cache_dir) if cache_dir else None,
            dask_address=args.dask,
            dask_workers=args.dask_workers,
            return_state=True,
        )
        # In async code State.result() returns an awaitable; the stubs do not say so.
        outcome: Any = state.result(raise_on_failure=False)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if state.is_completed():
            return outcome, None
        return None, outcome if isinstance(outcome, BaseException) else RuntimeError(str(state.message))

    display, report = console_progress()
    token = progress_reporter.set(report)
    try:
        with display:
            result, error = run_on_fast_loop(run())
    finally:
        progress_reporter.reset(token)
    if isinstance(error, CircuitOpenError):
        print(f"enrich: error: {error}; no output written, finished batches kept", file=sys.stderr)
        return EXIT_CIRCUIT_OPEN
    if isinstance(error, EnrichError):
        raise error
    if result is None:
        print(f"enrich: error: the job's flow run did not complete: {error}", file=sys.stderr)
        return 1
    return _report(EnrichStats(**result), Path(args.output), args.max_error_ratio)


def _run(args: argparse.Namespace) -> int:
    cache_dir = None if args.no_cache else _cache_dir(args)
    if args.no_flow and (args.dask or args.dask_workers):
        print("enrich: error: --dask and --dask-workers run batches as Prefect tasks: drop --no-flow",
              file=sys.stderr)  # fmt: skip
        return EXIT_BAD_INPUT
    if not args.no_flow:
        return _run_as_flow(args, cache_dir)
    spec = with_limit_overrides(
        load_spec(args.spec, environ=os.environ), concurrency=args.concurrency, rate=args.rate
    )
    return _run_and_report(
        args.input,
        spec,
        Path(args.output),
        args.max_error_ratio,
        batch_size=args.batch_size,
        restart=args.restart,
        keep_state=args.keep_state,
        cache_dir=cache_dir,
    )


def _cache_dir(args: argparse.Namespace) -> Path | str:
    """The cache's folder, or the ``redis://`` URL of a shared one."""
    location = args.cache_dir or os.environ.get("ENRICH_CACHE_DIR")
    if location:
        return location if is_redis_url(location) else Path(location)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "enrich"


def _cache(args: argparse.Namespace) -> int:
    from service.run_job import CACHE_FILE, open_store

    location = _cache_dir(args)
    if isinstance(location, Path) and not (location / CACHE_FILE).exists():
        print(f"no cache at {location / CACHE_FILE}")
        return 0
    cache = open_store(location, "", ttl_s=0, negative_ttl_s=0)
    try:
        if args.action == "clear":
            removed = cache.clear(expired_only=args.expired)
            print(f"removed {removed:,} entries from {cache.where}")
        else:
            stats = cache.statistics()
            print(
                f"{stats.path}: {stats.entries:,} entries ({stats.answers:,} answers, "
                f"{stats.negative:,} cached client errors, {stats.expired:,} expired) "
                f"for {stats.namespaces:,} API specs, {stats.size_bytes / 1e6:.1f} MB"
            )
    finally:
        cache.close()
    return 0


def _mock_api(args: argparse.Namespace) -> int:
    from service.mock_answers import FaultRates
    from service.mock_api import MockConfig, run_server

    config = MockConfig(
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        faults=FaultRates(
            http_500=args.rate_500,
            http_503=args.rate_503,
            rate_limited=args.rate_429,
            reset=args.rate_reset,
            hang=args.rate_hang,
            malformed=args.rate_malformed,
            bulk_missing=args.rate_bulk_missing,
        ),
        retry_after_s=args.retry_after,
        retry_after_as_date=args.retry_after_date,
        seed=args.seed,
    )
    run_server(config, args.host, args.port)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from service.demo import start_mock_api, stop_mock_api, write_demo_files

    process, url = start_mock_api("--latency-ms", "2", "--latency-jitter-ms", "3", "--rate-503", "0.02")
    try:
        print(f"mock API on {url}; writing a {args.rows:,}-row input into {args.dir}/")
        spec_path, source, output = write_demo_files(Path(args.dir), url, args.rows)
        spec = load_spec(spec_path, environ=os.environ)
        cache_dir = Path(args.dir) / "cache"
        shutil.rmtree(cache_dir, ignore_errors=True)  # a fresh cache: the demo shows real calls
        return _run_and_report(
            str(source), spec, output, max_error_ratio=1.0, restart=True, cache_dir=cache_dir
        )
    finally:
        stop_mock_api(process)


def _serve(args: argparse.Namespace) -> int:
    _quiet_prefect()
    from flows.serve import serve_deployments  # only this path needs Prefect

    for name in ("inbox", "outbox"):
        Path(getattr(args, name)).mkdir(parents=True, exist_ok=True)
    load_spec(args.spec, environ=os.environ)  # a bad spec fails here, not at the first sweep
    serve_deployments(Path(args.inbox), Path(args.outbox), Path(args.spec), args.interval, args.api_port)
    return 0


def _submit(args: argparse.Namespace) -> int:
    # An explicit --api-url wins over the environment; without either, serve's local server.
    if args.api_url:
        os.environ["PREFECT_API_URL"] = args.api_url
    os.environ.setdefault("PREFECT_API_URL", f"http://127.0.0.1:{LOCAL_PREFECT_PORT}/api")
    _quiet_prefect()
    from prefect.deployments import run_deployment

    parameters = {
        "input": str(Path(args.input).resolve()),
        "spec": str(Path(args.spec).resolve()),
        "output": str(Path(args.output).resolve()),
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "restart": args.restart,
        "keep_state": args.keep_state,
        "dask_address": args.dask,
        "dask_workers": args.dask_workers,
    }
    flow_run: Any = run_deployment("enrich-file/enrich-file", parameters=parameters, timeout=args.timeout)
    state = flow_run.state
    if state is None or not state.is_completed():
        name = state.name if state is not None else "unknown"
        print(
            f"enrich: error: flow run {flow_run.name} ended {name}: {state.message if state else ''}",
            file=sys.stderr,
        )
        return 1
    print(f"flow run {flow_run.name} completed; output {parameters['output']}")
    return 0


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _add_job_options(parser: argparse.ArgumentParser) -> None:
    """Options of a job, the same for ``run`` and ``submit``."""
    parser.add_argument("--concurrency", type=_positive_int, help="override [limits].concurrency")
    parser.add_argument("--rate", help="override [limits].rate, e.g. 500/s")
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=10_000,
        help="rows per batch: the unit of progress, checkpoint and memory (default 10000)",
    )
    parser.add_argument(
        "--restart", action="store_true", help="discard the state of an unfinished job and start over"
    )
    parser.add_argument(
        "--keep-state", action="store_true", help="keep OUT.enrich/ (the finished batches) after success"
    )
    dask = parser.add_mutually_exclusive_group()
    dask.add_argument("--dask", metavar="ADDRESS", help="run the batches on this Dask scheduler (tcp://...)")
    dask.add_argument(
        "--dask-workers",
        type=_positive_int,
        metavar="N",
        help="run the batches on a local Dask cluster of N processes",
    )


def _add_cache_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        help="where the response cache lives: a folder, or redis://HOST:PORT/DB to share it between "
        "machines (default: $ENRICH_CACHE_DIR, else ~/.cache/enrich)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every ``enrich`` subcommand."""
    parser = argparse.ArgumentParser(
        prog="enrich",
        description="Add an HTTP/JSON API's answers to a table's rows, as fast as the API allows.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a spec file, and optionally that an input file fits it",
        description="Check SPEC; with --input, also check that every column it uses exists "
        "with a usable type. No request is made.",
    )
    validate.add_argument("spec", metavar="SPEC", help="the spec file (TOML)")
    validate.add_argument("--input", metavar="FILE", help="an input file (.parquet, .csv, .ndjson)")
    validate.set_defaults(handler=_validate)

    run = commands.add_parser(
        "run",
        help="enrich INPUT into OUTPUT",
        description="Enrich INPUT with SPEC into OUTPUT (format by extension); "
        "OUTPUT appears only when the job finished.",
    )
    run.add_argument(
        "input", metavar="INPUT", help=".parquet, .csv or .ndjson; for Parquet also a directory or a glob"
    )
    run.add_argument("--spec", required=True, help="the spec file (TOML)")
    run.add_argument("--output", required=True, help=".parquet, .csv or .ndjson")
    _add_job_options(run)
    run.add_argument(
        "--max-error-ratio",
        type=_ratio,
        default=1.0,
        help="exit non-zero when more rows than this share failed (default 1)",
    )
    _add_cache_dir(run)
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the response cache")
    run.add_argument(
        "--no-flow",
        action="store_true",
        help="run the engine directly instead of as the enrich-file Prefect flow (no Prefect start-up)",
    )
    run.set_defaults(handler=_run)

    cache = commands.add_parser("cache", help="inspect or clear the response cache")
    cache.add_argument("action", choices=["stats", "clear"])
    cache.add_argument("--expired", action="store_true", help="with clear: only expired entries")
    _add_cache_dir(cache)
    cache.set_defaults(handler=_cache)

    mock = commands.add_parser("mock-api", help="run the built-in mock API (for demos, tests, benchmarks)")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=0, help="0: a free port (printed when ready)")
    mock.add_argument("--latency-ms", type=float, default=0.0)
    mock.add_argument("--latency-jitter-ms", type=float, default=0.0)
    for name in ("500", "503", "429", "reset", "hang", "malformed", "bulk-missing"):
        mock.add_argument(
            f"--rate-{name}", type=_ratio, default=0.0, help=f"share of requests answered with {name}"
        )
    mock.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds sent with 429")
    mock.add_argument("--retry-after-date", action="store_true", help="send Retry-After as an HTTP-date")
    mock.add_argument("--seed", type=int, default=0)
    mock.set_defaults(handler=_mock_api)

    serve = commands.add_parser(
        "serve", help="serve the enrich-file and enrich-inbox deployments (a long-running process)"
    )
    serve.add_argument("--inbox", default="inbox", help="folder swept for new input files")
    serve.add_argument("--outbox", default="outbox", help="where the inbox's outputs go")
    serve.add_argument("--spec", required=True, help="the spec for inbox files")
    serve.add_argument("--interval", type=float, default=60.0, help="seconds between inbox sweeps")
    serve.add_argument(
        "--api-port",
        type=int,
        default=LOCAL_PREFECT_PORT,
        help="port of the local Prefect server (without PREFECT_API_URL)",
    )
    serve.set_defaults(handler=_serve)

    submit = commands.add_parser("submit", help="run a job on the served enrich-file deployment and wait")
    submit.add_argument("input", metavar="INPUT")
    submit.add_argument("--spec", required=True)
    submit.add_argument("--output", required=True)
    _add_job_options(submit)
    submit.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the result")
    submit.add_argument(
        "--api-url",
        help="the Prefect API (default: $PREFECT_API_URL, else enrich serve's local server)",
    )
    submit.set_defaults(handler=_submit)

    demo = commands.add_parser("demo", help="run a job against the mock API on a generated input")
    demo.add_argument("--rows", type=_positive_int, default=100_000)
    demo.add_argument("--dir", default="enrich-demo", help="where the spec, input and output go")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``enrich`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        status: int = args.handler(args)
    except EnrichError as exc:
        print(f"enrich: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return status


if __name__ == "__main__":
    sys.exit(main())
