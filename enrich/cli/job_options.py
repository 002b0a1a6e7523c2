"""A job's options on the command line, derived from their one declaration.

``flows.parameters.EnrichFileOptions`` declares every option (name, type, default, bounds, help);
``run`` and ``submit`` get a flag per field, and the parsed flags are validated by the same model
the flows validate their parameters with. Only the cache's location is the command line's own: it
has a default from the environment, and ``--no-cache``.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from enrich.cli.exits import UsageError
from flows.parameters import EnrichFileOptions

_OWN_FLAGS = {"cache_dir"}  # declared by the command line itself (enrich.cli.cache)
_ALIASES = {"dask_address": ("--dask",)}  # the shorter flag the README has always shown


def add_job_options(parser: argparse.ArgumentParser) -> None:
    """A flag for each of the job's options."""
    for name, field in EnrichFileOptions.model_fields.items():
        if name in _OWN_FLAGS:
            continue
        flags = (_flag(name), *_ALIASES.get(name, ()))
        kind = _scalar_type(field)
        if kind is bool:
            parser.add_argument(*flags, dest=name, action="store_true", help=field.description)
            continue
        default = "" if field.default is None else f" (default {field.default})"
        words = _words(field)
        metavar = "N" if kind is int else name.split("_")[-1].upper()
        parser.add_argument(
            *flags,
            dest=name,
            type=_or_words(kind, words) if words else kind,
            default=None,  # unset: the model's default applies
            metavar="|".join([metavar, *words]),
            help=f"{field.description}{default}",
        )


def job_options(args: argparse.Namespace, *, cache_dir: str | None) -> EnrichFileOptions:
    """The job's options from the parsed flags, validated; ``UsageError`` naming the flag."""
    given: dict[str, Any] = {"cache_dir": cache_dir}
    for name in EnrichFileOptions.model_fields:
        value = getattr(args, name, None)
        if value is not None and name not in _OWN_FLAGS:
            given[name] = value
    try:
        return EnrichFileOptions(**given)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = f"{_flag(str(problem['loc'][0]))}: " if problem["loc"] else ""
        message = str(problem["msg"]).removeprefix("Value error, ")
        raise UsageError(f"{where}{message[0].lower()}{message[1:]}") from None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _members(field: FieldInfo) -> list[Any]:
    """The types a field's value may have, None aside (``Annotated`` constraints stripped)."""
    annotation = field.annotation
    union = isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
    members = typing.get_args(annotation) if union else (annotation,)
    return [
        typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a
        for a in members
        if a is not type(None)
    ]


def _scalar_type(field: FieldInfo) -> type:
    """``int`` for ``int | None`` (or ``int | Literal["auto"] | None``), and so on: what a flag's
    text is converted to."""
    (annotation,) = [a for a in _members(field) if typing.get_origin(a) is not typing.Literal]
    if annotation not in (bool, int, float, str):
        raise TypeError(f"no command-line form for {annotation!r}")
    return typing.cast(type, annotation)


def _words(field: FieldInfo) -> list[str]:
    """The words a flag takes besides its type's values (``Literal["auto"]``: auto)."""
    return [
        str(v) for a in _members(field) if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)
    ]


def _or_words(kind: type, words: list[str]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        if text in words:
            return text
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {' or '.join(['a number', *words])}, got {text!r}"
            ) from None

    return convert
