"""What a job checks before anything starts (no request, no Prefect, no state written): OUT's
format and path, the input's files, and its columns against the spec."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from service.errors import InputError
from service.jobs.object_state import has_state
from service.spec import Spec
from service.storage import objects
from service.storage.locations import ObjectLocation, TableLocation, table_location
from service.tables.formats import output_format
from service.tables.reading import resolve_inputs, scan_inputs
from service.tables.schema_check import check_schema


@dataclass(frozen=True)
class CheckedInput:
    """An input that fits its spec: its files, a lazy scan of them, and its columns."""

    paths: list[TableLocation]
    lazy: pl.LazyFrame
    schema: pl.Schema


def check_job(
    input_spec: str | Path, spec: Spec, output_path: str | Path | ObjectLocation, *, overwrite: bool = False
) -> CheckedInput:
    """The job's input, checked; a ``SpecError`` or ``InputError`` naming the first problem. An
    existing OUT is refused unless ``overwrite``, or unless the job that wrote it left its state
    (a rerun of that job: it resumes, or restarts, the same output)."""
    output = table_location(output_path, "--output ")
    output_format(output)
    paths = resolve_inputs(input_spec)
    check_output_path(output, paths)
    if not overwrite and _exists(output) and not has_state(output):
        raise InputError(f"--output {output} exists: pass --overwrite to replace it")
    lazy = scan_inputs(paths)
    schema = lazy.collect_schema()
    check_schema(schema, spec)
    return CheckedInput(paths, lazy, schema)


def _exists(output: TableLocation) -> bool:
    if isinstance(output, ObjectLocation):
        return objects.info(output) is not None
    return output.exists()


def check_output_path(output: TableLocation, inputs: list[TableLocation]) -> None:
    """``InputError`` for an OUT that would replace an input, or is a symbolic link (replacing it
    would replace the link, not write through it: refused rather than surprising)."""
    if isinstance(output, ObjectLocation):
        if output in inputs:
            raise InputError(f"--output {output} is the input object itself: write the output elsewhere")
        return
    if output.is_symlink():
        raise InputError(
            f"--output {output} is a symbolic link (to {os.readlink(output)}): give the path of "
            "the file itself"
        )
    resolved = output.resolve()
    for path in inputs:
        if isinstance(path, Path) and path.resolve() == resolved:
            raise InputError(f"--output {output} is the input file {path}: write the output elsewhere")
