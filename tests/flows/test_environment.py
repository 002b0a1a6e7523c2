"""The Prefect settings Enrich gives the processes it starts."""

from __future__ import annotations

from flows.environment import local_mode_settings, prefect_environment


def test_local_mode_gives_the_temporary_server_time_to_start_unless_told_otherwise() -> None:
    """90 s for Prefect's temporary server (its 20 s failed on a loaded machine); the user's wins."""
    assert local_mode_settings({}) == {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}
    assert local_mode_settings({"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "30"}) == {}


def test_a_child_never_sends_telemetry_whatever_it_is_given() -> None:
    environment = prefect_environment({"PREFECT_SERVER_ANALYTICS_ENABLED": "true"}, PREFECT_HOME="/h")
    assert environment["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert environment["PREFECT_HOME"] == "/h"
