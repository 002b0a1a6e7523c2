"""The job's options on the command line come from their one declaration (EnrichFileOptions)."""

from __future__ import annotations

import argparse

import pytest

from enrich.cli.exits import UsageError
from enrich.cli.job_options import job_options
from enrich.cli.parser import build_parser
from flows.parameters import EnrichFileOptions


def flags_of(command: str) -> set[str]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {flag for action in commands.choices[command]._actions for flag in action.option_strings}


@pytest.mark.parametrize("command", ["run", "submit"])
def test_every_declared_option_has_its_flag(command: str) -> None:
    """Each field of EnrichFileOptions is a flag of run and submit (the cache's location aside)."""
    declared = {"--" + name.replace("_", "-") for name in EnrichFileOptions.model_fields} - {"--cache-dir"}
    assert declared <= flags_of(command)


def test_flags_become_the_validated_options() -> None:
    """Given flags are set, the rest keep the declared defaults; --dask is --dask-address."""
    args = build_parser().parse_args(
        [
            "run",
            "in.csv",
            "--spec",
            "s.toml",
            "--output",
            "o.csv",
            "--batch-size",
            "50",
            "--dask",
            "tcp://h:1",
        ]
    )
    options = job_options(args, cache_dir="/tmp/cache")
    assert options == EnrichFileOptions(batch_size=50, dask_address="tcp://h:1", cache_dir="/tmp/cache")
    assert options.on_dask
    assert not options.restart


@pytest.mark.parametrize(("given", "parsed"), [("auto", "auto"), ("12", 12)])
def test_concurrency_takes_a_number_or_auto(given: str, parsed: object) -> None:
    args = build_parser().parse_args(
        ["run", "in.csv", "--spec", "s.toml", "--output", "o.csv", "--concurrency", given]
    )
    assert job_options(args, cache_dir=None).concurrency == parsed


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch-size", "0"], "--batch-size: input should be greater than or equal to 1"),
        (["--concurrency", "0"], "--concurrency: input should be greater than or equal to 1"),
        (["--dask", "tcp://h:1", "--dask-workers", "2"], "give dask_address or dask_workers, not both"),
        (
            ["--batches-per-task-run", "0"],
            "--batches-per-task-run: input should be greater than or equal to 1",
        ),
        (
            ["--dask-workers", "2", "--batches-per-task-run", "3"],
            "on Dask each batch is a task run of its own: drop batches_per_task_run",
        ),
    ],
)
def test_a_bad_value_names_its_flag(flags: list[str], message: str) -> None:
    """Values the declaration refuses are a UsageError naming the flag."""
    args = build_parser().parse_args(["submit", "in.csv", "--spec", "s.toml", "--output", "o.csv", *flags])
    with pytest.raises(UsageError, match=message):
        job_options(args, cache_dir=None)
