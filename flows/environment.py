"""The Prefect settings every process Enrich runs or starts must have, set in one place.

No Prefect import here: settings are read when Prefect is first imported, so they are set before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Every Prefect server Enrich starts (a local one in each job process in local mode, `prefect
# server start`, Dask workers' clients) would otherwise send telemetry off the machine: Enrich
# talks to loopback and the API it enriches from, nothing else.
LOOPBACK_ONLY = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def keep_prefect_on_loopback() -> None:
    """Apply ``LOOPBACK_ONLY`` to this process, before Prefect is imported."""
    os.environ.update(LOOPBACK_ONLY)


def prefect_environment(base: Mapping[str, str], **settings: str) -> dict[str, str]:
    """The environment for a child process: ``base``, ``settings``, and ``LOOPBACK_ONLY``."""
    return {**base, **settings, **LOOPBACK_ONLY}


# Prefect gives the temporary server of its local mode 20 s to start (counted in its own polling
# steps); on a loaded 2-core machine a flow run failed with "Timed out while attempting to connect
# to ephemeral Prefect API server". A setting of the user's own wins.
LOCAL_MODE_DEFAULTS = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}


def local_mode_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings a job run in Prefect's local mode needs that ``environ`` does not set."""
    return {name: value for name, value in LOCAL_MODE_DEFAULTS.items() if name not in environ}


# Prefect's console handler, which prints every INFO line of a run (task runs finished, hooks run):
# hidden below warnings unless asked for. Its "api" handler, which feeds the UI, is left alone.
CONSOLE_LEVEL = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"


def console_log_settings(environ: Mapping[str, str], *, quiet: bool, verbose: bool) -> dict[str, str]:
    """The console level for Prefect's own logs (a level the user set wins)."""
    if CONSOLE_LEVEL in environ or verbose:
        return {}
    return {CONSOLE_LEVEL: "ERROR" if quiet else "WARNING"}
