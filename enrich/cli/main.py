"""``enrich``'s entry point: parse, run the command, turn an Enrich error into one line and a status."""

from __future__ import annotations

from collections.abc import Sequence

from enrich.cli.exits import EXIT_BAD_INPUT, error
from enrich.cli.parser import build_parser
from service import EnrichError


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
        error(str(exc))
        return EXIT_BAD_INPUT
    return status
