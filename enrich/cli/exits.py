"""Exit statuses of ``enrich``, and the one-line errors that go with them."""

from __future__ import annotations

from enrich.cli.one_line import error
from service import CircuitOpenError, EnrichError, EnrichStats

EXIT_ENVIRONMENT = 1  # the machine failed the job (a full disk, a read-only folder): fix, rerun
EXIT_BAD_INPUT = 2  # a spec, input or option that cannot work; nothing was requested
EXIT_CIRCUIT_OPEN = 3  # the API kept failing: no OUT, finished batches kept for a rerun
EXIT_TOO_MANY_ERRORS = 4  # OUT written, but more rows failed than --max-error-ratio allows
EXIT_ROW_FAILED = 4  # try: the key's row failed (the same status: rows failed)

EXIT_STATUSES = """exit statuses:
  0      done (run: OUTPUT written, within --max-error-ratio)
  1      the machine failed the job (a full disk, a read-only folder; serve: its Prefect server
         stopped): fix it and run the same command again, a job resumes where it stopped
  2      a spec, input or option that cannot work; nothing was requested
  3      the API kept failing (circuit open) or --deadline passed: no OUTPUT, finished batches kept
  4      OUTPUT written, but more rows failed than --max-error-ratio allows (try: the row failed)
  128+N  stopped by signal N (130 Ctrl-C, 143 SIGTERM): what finished is kept, rerun to resume"""


class UsageError(EnrichError):
    """An option's value cannot work (named in the message)."""


def circuit_opened(exc: CircuitOpenError) -> int:
    """Say that the job stopped because the API kept failing; the exit status for it."""
    error(f"{exc}; no output written, finished batches kept")
    return EXIT_CIRCUIT_OPEN


def stopped(signal_name: str, signal_number: int, output: str) -> int:
    """Say that a signal stopped the job and how to resume; the exit status for it (128 + N)."""
    error(
        f"stopped by {signal_name}; finished batches and every answer received are kept in "
        f"{output}.enrich/: run the same command again to resume"
    )
    return 128 + signal_number


def judge(stats: EnrichStats, max_error_ratio: float) -> int:
    """The exit status of a finished job: 0, or ``EXIT_TOO_MANY_ERRORS`` (said on stderr)."""
    return judge_rows(stats.rows_ok, stats.rows_failed, max_error_ratio)


def judge_rows(ok: int, failed: int, max_error_ratio: float) -> int:
    """The exit status of a job with ``ok`` and ``failed`` rows (see ``judge``)."""
    ratio = failed / (ok + failed) if ok + failed else 0.0
    if ratio > max_error_ratio:
        error(f"{ratio:.1%} of rows failed, over --max-error-ratio {max_error_ratio:.1%}")
        return EXIT_TOO_MANY_ERRORS
    return 0
