"""The image's healthcheck (docker/healthcheck.py): which command a container runs, and where its
health endpoint is. The image test runs it for real (opt-in: tests/image)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def healthcheck() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "docker" / "healthcheck.py"
    spec = importlib.util.spec_from_file_location("healthcheck", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["/opt/enrich/bin/python", "/opt/enrich/bin/enrich", "api", "--spec", "ip=s.toml"], "api"),
        (["python", "/opt/enrich/bin/enrich", "serve", "--spec", "s.toml"], "serve"),
        (["/bin/sh", "-c", "enrich api --port 1"], None),
        (["tini", "--", "enrich-entrypoint"], None),
    ],
)
def test_the_enrich_command_of_a_process(argv: list[str], command: str | None) -> None:
    assert healthcheck().main_command(argv)[0] == command


@pytest.mark.parametrize(
    ("words", "value"),
    [
        (["api", "--spec", "ip=s.toml", "--port", "9001"], "9001"),
        (["api", "--port=9002", "--host", "0.0.0.0"], "9002"),
        (["api", "--spec", "ip=s.toml"], "8000"),
        (["api", "--port"], "8000"),
    ],
)
def test_the_port_an_api_listens_on(words: list[str], value: str) -> None:
    assert healthcheck().option(words, "--port", "8000") == value
