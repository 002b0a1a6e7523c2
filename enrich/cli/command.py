"""The ``enrich`` command once Python has loaded it: parse, run the command, turn an Enrich error
into one line and a status (``enrich.cli.main`` calls it)."""

from __future__ import annotations

import errno
from collections.abc import Sequence

from enrich.cli.exits import EXIT_BAD_INPUT, EXIT_ENVIRONMENT
from enrich.cli.one_line import error
from enrich.cli.parser import build_parser
from service import EnrichError, error_leaves


def run_command(argv: Sequence[str] | None = None) -> int:
    """Run the ``enrich`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        status: int = args.handler(args)
    except (EnrichError, OSError, BaseExceptionGroup) as exc:
        fault = the_one_fault(exc)
        if isinstance(fault, EnrichError):
            error(str(fault))
            return EXIT_BAD_INPUT
        if isinstance(fault, OSError):
            error(environment_fault(fault))
            return EXIT_ENVIRONMENT
        raise
    return status


def the_one_fault(exc: BaseException) -> BaseException:
    """``exc``, or, for a group (task groups wrap what they raise, one per task), its first error
    when every error in it is a user's or the machine's: one cause, met by several tasks."""
    leaves = error_leaves(exc)
    if all(isinstance(leaf, EnrichError | OSError) for leaf in leaves):
        return leaves[0]
    return exc


def environment_fault(exc: OSError) -> str:
    """What went wrong with the machine (a full disk, a read-only folder), and what to do."""
    where = f": {exc.filename}" if exc.filename else ""
    # An OSError of Enrich's own has no strerror: its message says it all.
    what = str(exc) if exc.strerror is None else exc.strerror + where
    hint = {
        errno.ENOSPC: "free some space",
        errno.EDQUOT: "free some space",
        errno.EFBIG: "the file grew past what this process may write",
        errno.EACCES: "check the folder's permissions",
        errno.EPERM: "check the folder's permissions",
        errno.EROFS: "write to a writable folder",
    }.get(exc.errno or 0, "fix it")
    return f"{what} ({hint}, then run the same command again: a job resumes where it stopped)"
