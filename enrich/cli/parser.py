"""The argument parser of every ``enrich`` command (declarations only; each command has a module)."""

from __future__ import annotations

import argparse

from enrich import __version__
from enrich.cli.api import api_command, named_spec
from enrich.cli.cache import add_cache_dir_option, cache_command
from enrich.cli.demo import demo_command, mock_api_command
from enrich.cli.deploy import deploy_command
from enrich.cli.exits import EXIT_STATUSES
from enrich.cli.job_options import add_job_options
from enrich.cli.run import run_command
from enrich.cli.serve import serve_command
from enrich.cli.submit import submit_command
from enrich.cli.try_key import try_command
from enrich.cli.validate import validate_command
from flows.local_server import LOCAL_PREFECT_PORT
from flows.serve import DEFAULT_RUN_LIMIT, ON_DEMAND_DEPLOYMENT
from service.testing import add_mock_api_arguments


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _add_no_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the response cache")


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped, text laid out in lines (the exit statuses) kept as written; every
    option's default shown, unless its help says it already or it has none worth showing."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or "default" in text or f"({default})" in text:
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-q`` and ``-v``: how much a job command prints besides errors."""
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q", "--quiet", action="store_true", help="print errors only: no progress, no summary"
    )
    loudness.add_argument(
        "-v", "--verbose", action="store_true", help="also print Prefect's own logs (hidden below warnings)"
    )


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],  # argparse has no public name for it
    name: str,
    summary: str,
    description: str,
    *,
    exits: bool = False,
) -> argparse.ArgumentParser:
    """A command's parser: its help line, description, defaults shown, and the exit statuses."""
    return commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=EXIT_STATUSES if exits else None,
        formatter_class=HelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every ``enrich`` command."""
    parser = argparse.ArgumentParser(
        prog="enrich",
        description="Add an HTTP/JSON API's answers to a table's rows, as fast as the API allows.",
        epilog=EXIT_STATUSES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"enrich {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = _command(
        commands,
        "validate",
        "check a spec file, and optionally that an input file fits it",
        "Check SPEC (every problem, one line each); with --input, also check that every column it "
        "uses exists with a usable type. No request is made. Exit 0 when valid, 2 when not.",
    )
    validate.add_argument("spec", metavar="SPEC", help="the spec file (TOML)")
    validate.add_argument("--input", metavar="FILE", help="an input file (.parquet, .csv, .ndjson)")
    validate.add_argument(
        "--check-env",
        action="store_true",
        help="also require every ${NAME} the spec uses to be set here (by default only their names "
        "are checked, so a spec can be validated where its secrets are not)",
    )
    validate.set_defaults(handler=validate_command)

    trying = _command(
        commands,
        "try",
        "ask the API about one key and show the exchange and the row it makes",
        "One request for the key KEY=VALUE... gives (no limit, retry or cache), shown as httpie "
        "shows it: the request, the answer's status, headers, time and body, then the row: each "
        "column with its type and value, or the row's error class. Secrets show as ***.",
        exits=True,
    )
    trying.add_argument("spec", metavar="SPEC", help="the spec file (TOML)")
    trying.add_argument(
        "values",
        metavar="KEY=VALUE",
        nargs="+",
        help="a value for each key column: NAME=TEXT, or NAME:=JSON for a typed value (NAME:=42)",
    )
    trying.add_argument("--full", action="store_true", help="show the whole answer (default: 40 lines)")
    trying.set_defaults(handler=try_command)

    run = _command(
        commands,
        "run",
        "enrich INPUT into OUTPUT",
        "Enrich INPUT with SPEC into OUTPUT (format by extension); OUTPUT appears only when the "
        "job finished. Run the same command again after a crash or a stop: it resumes.",
        exits=True,
    )
    run.add_argument(
        "input", metavar="INPUT", help=".parquet, .csv or .ndjson; for Parquet also a directory or a glob"
    )
    run.add_argument("--spec", required=True, help="the spec file (TOML)")
    run.add_argument("--output", required=True, help=".parquet, .csv or .ndjson")
    add_job_options(run)
    run.add_argument(
        "--max-error-ratio",
        type=_share,
        default=1.0,
        help="exit non-zero when more rows than this share failed",
    )
    add_cache_dir_option(run)
    _add_no_cache(run)
    run.add_argument(
        "--no-flow",
        action="store_true",
        help="run the engine directly instead of as the enrich-file Prefect flow (no Prefect start-up)",
    )
    _add_verbosity(run)
    run.set_defaults(handler=run_command)

    cache = _command(
        commands,
        "cache",
        "inspect or clear the response cache",
        "Show the response cache's entries and size (stats), or remove them (clear).",
    )
    cache.add_argument("action", choices=["stats", "clear"], help="stats: entries and size; clear: remove")
    cache.add_argument("--expired", action="store_true", help="with clear: only expired entries")
    add_cache_dir_option(cache)
    cache.set_defaults(handler=cache_command)

    mock = _command(
        commands,
        "mock-api",
        "run the built-in mock API (for demos, tests, benchmarks)",
        "Serve the built-in mock API on HOST:PORT until SIGTERM or Ctrl-C, with the latency and "
        "faults asked for; it prints its URL once it listens.",
    )
    add_mock_api_arguments(mock)
    mock.set_defaults(handler=mock_api_command)

    serve = _command(
        commands,
        "serve",
        "serve the enrich-file and enrich-inbox deployments (a long-running process)",
        "Serve the enrich-file deployment (jobs sent by submit) and enrich-inbox (every --interval "
        "seconds, each new file of --inbox enriched into --outbox with --spec) until SIGTERM or "
        "Ctrl-C. Without PREFECT_API_URL it starts a local Prefect server on 127.0.0.1:--api-port "
        "(its UI there too), and stops when that server stops.",
        exits=True,
    )
    serve.add_argument("--inbox", default="inbox", help="folder swept for new input files")
    serve.add_argument("--outbox", default="outbox", help="where the inbox's outputs go")
    serve.add_argument("--spec", required=True, help="the spec for inbox files")
    serve.add_argument("--interval", type=float, default=60.0, help="seconds between inbox sweeps")
    serve.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_RUN_LIMIT,
        help="most job runs at once (submitted jobs and sweeps); more wait their turn",
    )
    serve.add_argument(
        "--api-port",
        type=int,
        default=LOCAL_PREFECT_PORT,
        help="port of the local Prefect server (without PREFECT_API_URL)",
    )
    add_cache_dir_option(serve)
    _add_no_cache(serve)
    _add_verbosity(serve)
    serve.set_defaults(handler=serve_command)

    online = _command(
        commands,
        "api",
        "serve the online endpoint: POST rows, get them back enriched (a long-running process)",
        'Serve POST /v1/enrich/NAME for every --spec NAME=SPEC: a JSON body {"rows": [...]} or an '
        "Arrow IPC stream (Content-Type: application/vnd.apache.arrow.stream) comes back with the "
        "spec's columns and _enrich_*, same rows, same order, same format. Every caller shares one "
        "connection pool, the spec's limits, the response cache, and keys in flight. Also GET "
        "/metrics (Prometheus), /healthz and /readyz. SIGTERM or Ctrl-C: new requests get 503 while "
        "those in flight finish (at most --drain seconds), then it stops.",
    )
    online.add_argument(
        "--spec",
        action="append",
        required=True,
        type=named_spec,
        metavar="NAME=SPEC",
        help="a spec served at /v1/enrich/NAME (repeat for several)",
    )
    online.add_argument("--host", default="127.0.0.1", help="address to listen on")
    online.add_argument("--port", type=int, default=8000, help="port to listen on")
    online.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        help="seconds a request's rows may wait when it does not say (X-Enrich-Timeout or ?timeout=)",
    )
    online.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=16 * 1024 * 1024,
        help="largest request body (413 past it)",
    )
    online.add_argument(
        "--max-pending-rows",
        type=_positive_int,
        default=100_000,
        help="rows being enriched for all requests together; past it, 503",
    )
    online.add_argument(
        "--circuit-cooldown",
        type=float,
        default=30.0,
        help="seconds after the API kept failing before it is called again",
    )
    online.add_argument(
        "--drain", type=float, default=30.0, help="seconds in-flight requests may take to finish on SIGTERM"
    )
    online.add_argument("--access-log", action="store_true", help="log every request")
    add_cache_dir_option(online)
    _add_no_cache(online)
    online.set_defaults(handler=api_command)

    submit = _command(
        commands,
        "submit",
        "run a job on the served enrich-file deployment and wait",
        "Run the job on the enrich-file deployment that enrich serve serves, and wait for it, "
        "showing its progress, then its summary and its page in the Prefect UI; the served "
        "process reads INPUT and SPEC and writes OUTPUT (paths made absolute). The spec and input "
        "are checked here first.",
        exits=True,
    )
    submit.add_argument(
        "input", metavar="INPUT", help=".parquet, .csv or .ndjson; for Parquet also a directory or a glob"
    )
    submit.add_argument("--spec", required=True, help="the spec file (TOML)")
    submit.add_argument("--output", required=True, help=".parquet, .csv or .ndjson")
    add_job_options(submit)
    add_cache_dir_option(submit)
    _add_no_cache(submit)
    submit.add_argument(
        "--max-error-ratio",
        type=_share,
        default=1.0,
        help="exit non-zero when more rows than this share failed",
    )
    submit.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the result")
    submit.add_argument(
        "--no-wait", action="store_true", help="print the run's id and page, and leave it running"
    )
    submit.add_argument(
        "--api-url",
        help="the Prefect API (default: $PREFECT_API_URL, else enrich serve's local server)",
    )
    submit.add_argument(
        "--deployment",
        default=ON_DEMAND_DEPLOYMENT,
        help="the deployment to run the job on (enrich deploy makes others, run by workers)",
    )
    _add_verbosity(submit)
    submit.set_defaults(handler=submit_command)

    deploy = _command(
        commands,
        "deploy",
        "create or update an enrich-file deployment on a work pool, for Prefect workers",
        "Create (or, run again, update in place) the deployment enrich-file/--name on the existing "
        "work pool --pool: `prefect worker start --pool POOL` runs its jobs on any machine whose "
        "Python has Enrich installed (no code is uploaded), reading SPEC, inputs and outputs by "
        "their absolute paths. --cron or --interval schedule it for the file --param input names.",
        exits=True,
    )
    deploy.add_argument("--spec", required=True, help="the spec file (TOML), read by the worker")
    deploy.add_argument("--pool", required=True, help="the work pool (it must exist)")
    deploy.add_argument("--name", default="enrich-file", help="the deployment's name")
    schedule = deploy.add_mutually_exclusive_group()
    schedule.add_argument("--cron", help='a cron schedule, e.g. "0 3 * * *"')
    schedule.add_argument("--interval", type=float, help="a schedule: every this many seconds")
    deploy.add_argument("--timezone", help="the schedule's IANA time zone, e.g. Europe/Paris (default UTC)")
    deploy.add_argument(
        "--param",
        action="append",
        metavar="NAME=PATH",
        help="input=PATH and output=PATH for scheduled runs (repeat the flag)",
    )
    deploy.add_argument(
        "--on-event",
        action="store_true",
        help='a run for each enrich.file.arrived event, on its payload\'s {"input": PATH, "output": PATH}',
    )
    deploy.add_argument("--inbox", help="with --outbox: an enrich-inbox deployment too, sweeping this folder")
    deploy.add_argument("--outbox", help="where the inbox's outputs go")
    deploy.add_argument("--sweep-every", type=float, default=60.0, help="seconds between the inbox's sweeps")
    deploy.add_argument(
        "--notify-block",
        metavar="TYPE/NAME",
        help="a notification block (e.g. slack-webhook/ops) sent a message for each failed job",
    )
    deploy.add_argument("--image", help="for a docker (or other container) pool: the image its runs use")
    deploy.add_argument(
        "--job-variable",
        action="append",
        metavar="NAME=VALUE",
        help='a job variable of the pool for the runs (VALUE as JSON if it parses: env={"TZ": "UTC"})',
    )
    deploy.add_argument(
        "--api-url", help="the Prefect API (default: $PREFECT_API_URL, else enrich serve's local server)"
    )
    deploy.set_defaults(handler=deploy_command)

    demo = _command(
        commands,
        "demo",
        "run a job against the mock API on a generated input",
        "Start the mock API on loopback, write a spec and an input of --rows rows (repeated and a "
        "few faulty keys) into --dir, enrich it, print the summary, stop the API.",
        exits=True,
    )
    demo.add_argument("--rows", type=_positive_int, default=100_000, help="rows in the input (100,000)")
    demo.add_argument("--dir", default="enrich-demo", help="where the spec, input and output go")
    _add_verbosity(demo)
    demo.set_defaults(handler=demo_command)
    return parser
