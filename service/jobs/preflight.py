"""What a job checks before anything starts (no request, no Prefect, no state written): OUT's
format and path, the input's files, and its columns against the spec."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from service.errors import InputError
from service.jobs.checkpoint import state_dir_for
from service.spec import Spec
from service.tables.formats import output_format
from service.tables.reading import refuse_object_storage, resolve_inputs, scan_inputs
from service.tables.schema_check import check_schema


@dataclass(frozen=True)
class CheckedInput:
    """An input that fits its spec: its files, a lazy scan of them, and its columns."""

    paths: list[Path]
    lazy: pl.LazyFrame
    schema: pl.Schema


def check_job(
    input_spec: str | Path, spec: Spec, output_path: Path, *, overwrite: bool = False
) -> CheckedInput:
    """The job's input, checked; a ``SpecError`` or ``InputError`` naming the first problem. An
    existing OUT is refused unless ``overwrite``, or unless the job that wrote it left its state
    (a rerun of that job: it resumes, or restarts, the same output)."""
    refuse_object_storage(output_path, "--output ")
    output_format(output_path)
    paths = resolve_inputs(input_spec)
    check_output_path(output_path, paths)
    if not overwrite and output_path.exists() and not state_dir_for(output_path).exists():
        raise InputError(f"--output {output_path} exists: pass --overwrite to replace it")
    lazy = scan_inputs(paths)
    schema = lazy.collect_schema()
    check_schema(schema, spec)
    return CheckedInput(paths, lazy, schema)


def check_output_path(output: Path, inputs: list[Path]) -> None:
    """``InputError`` for an OUT that would replace an input, or is a symbolic link (replacing it
    would replace the link, not write through it: refused rather than surprising)."""
    if output.is_symlink():
        raise InputError(
            f"--output {output} is a symbolic link (to {os.readlink(output)}): give the path of "
            "the file itself"
        )
    resolved = output.resolve()
    for path in inputs:
        if path.resolve() == resolved:
            raise InputError(f"--output {output} is the input file {path}: write the output elsewhere")
