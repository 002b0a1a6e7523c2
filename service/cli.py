"""The ``enrich`` command line. Configuration is built here, at the edge, from argv and the environment."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from service.errors import EnrichError
from service.frame_check import check_schema
from service.input_schema import read_schema
from service.spec import load_spec


def _validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec, environ=os.environ)
    if args.input:
        check_schema(read_schema(args.input), spec)
    what = f"{args.spec} and {args.input}" if args.input else args.spec
    columns = ", ".join(f"{c.name} ({c.type})" for c in spec.columns)
    mode = f"bulk, {spec.bulk.size} keys per request" if spec.bulk else "one key per request"
    print(f"ok: {what}: {spec.request.method} {spec.request.origin}, {mode}; adds {columns}")
    return 0


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
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
