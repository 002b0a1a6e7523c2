"""The ``prefect server`` processes the tests start: on PostgreSQL, as production runs one with
workers, automations and several job processes writing at once.

On SQLite, in a CI run, a test's server stopped answering for over a minute under the parallel
run's load (why went unrecorded; SQLite's one writer at a time, which the server waits up to
60 s for, the likeliest). Without a PostgreSQL, outside CI, a server falls back to SQLite rather
than its tests being skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from flows.local_server import start_local_server, stop_local_server
from tests.helpers import free_port, service_missing
from tests.postgres import PostgresUnavailableError, for_prefect, fresh_database

SERVER_LOG = "log"  # in the server's home: what it printed


@contextlib.contextmanager
def prefect_server_for_tests(home: Path, migrated_sqlite: Callable[[], Path]) -> Iterator[str]:
    """A ``prefect server`` whose PREFECT_HOME is ``home`` (its output in ``home/log``), on a fresh
    PostgreSQL database, dropped afterwards; or, without one (and not under
    ``ENRICH_REQUIRE_SERVICES=1``), on a copy of the ``migrated_sqlite()`` database. Its API URL."""
    with contextlib.ExitStack() as stack:
        try:
            database_url: str | None = for_prefect(stack.enter_context(fresh_database()))
        except PostgresUnavailableError as exc:
            if os.environ.get("ENRICH_REQUIRE_SERVICES") == "1":
                service_missing(str(exc))
            database_url = None
            shutil.copyfile(migrated_sqlite(), home / "prefect.db")
        process, url = start_local_server(
            free_port(), home=home, database_url=database_url, log=home / SERVER_LOG
        )
        try:
            yield url
        finally:
            stop_local_server(process)
