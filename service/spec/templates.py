"""Templates in spec strings: ``{column}`` from the row, ``${NAME}`` from the environment.

A template is parsed once, when the spec is loaded, into literal text and column references, so a
value substituted later (a secret, or a row's value) is never parsed again: a token holding ``{x}``
stays literal text, and a row's value cannot smuggle in another placeholder.

Syntax: ``{column}`` a value of that input column; ``${NAME}`` the environment variable NAME;
``${secret:NAME}`` a secret from the resolver the caller passes (a Prefect Secret block in flows);
``{{`` and ``}}`` literal braces; ``{@keys}`` the list of keys of a bulk request (body only).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from service.errors import SpecError

BULK_KEYS_MARKER = "@keys"

SecretResolver = Callable[[str], str]

_TOKEN = re.compile(r"\{\{|\}\}|\$\{([^}]*)\}|\{([^{}]*)\}|[{}]")


def value_text(value: Any) -> str:
    """The text form of a value put into a template (a URL, a parameter, a body string): booleans
    in lower case as JSON writes them, dates and times in ISO 8601, anything else as ``str``."""
    if type(value) is str:  # the common case, once per request: no isinstance chain for it
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True, slots=True)
class ColumnRef:
    """A reference to an input column inside a template."""

    name: str


@dataclass(frozen=True, slots=True)
class Template:
    """Literal text interleaved with column references."""

    parts: tuple[str | ColumnRef, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the columns this template reads, in order of appearance."""
        return tuple(p.name for p in self.parts if isinstance(p, ColumnRef))

    @property
    def whole_column(self) -> str | None:
        """The column name when the template is exactly one ``{column}`` and nothing else."""
        if len(self.parts) == 1 and isinstance(self.parts[0], ColumnRef):
            return self.parts[0].name
        return None

    @property
    def is_literal(self) -> bool:
        """True when the template has no column reference."""
        return all(isinstance(p, str) for p in self.parts)

    def literal(self) -> str:
        """The text of a template without column references."""
        return "".join(p for p in self.parts if isinstance(p, str))


@dataclass(slots=True)
class TemplateParser:
    """Parses templates, resolving ``${...}`` at once and remembering every value it put in.

    Every substituted value is recorded in ``secrets`` so that messages and logs can redact it.
    """

    environ: Mapping[str, str]
    resolve_secret: SecretResolver | None = None
    secrets: set[str] | None = None

    def parse(self, text: str, field: str) -> Template:
        """Parse ``text`` (the value of spec field ``field``) into a template."""
        parts: list[str | ColumnRef] = []
        pos = 0
        for match in _TOKEN.finditer(text):
            if match.start() > pos:
                parts.append(text[pos : match.start()])
            pos = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                parts.append(token[0])
            elif match.group(1) is not None:
                parts.append(self._substitute(match.group(1), field))
            elif match.group(2) is not None:
                name = match.group(2).strip()
                if not name:
                    raise SpecError("empty placeholder '{}'", field=field)
                parts.append(ColumnRef(name))
            else:
                raise SpecError(
                    f"unbalanced '{token}' in {text!r}: write '{token}{token}' for a literal brace",
                    field=field,
                )
        if pos < len(text):
            parts.append(text[pos:])
        return Template(tuple(_merge_literals(parts)))

    def _substitute(self, name: str, field: str) -> str:
        if name.startswith(("prefect:", "secret:")):  # secret: the name it had first
            secret_name = name.partition(":")[2].strip()
            if self.resolve_secret is None:
                raise SpecError(
                    f"'${{prefect:{secret_name}}}' needs Prefect's API to read the Secret block", field=field
                )
            try:
                value = self.resolve_secret(secret_name)
            except SpecError as exc:
                raise SpecError(str(exc), field=field) from None
        else:
            if not name or name not in self.environ:
                raise SpecError(f"environment variable '{name}' is not set", field=field)
            value = self.environ[name]
        if any(c in value for c in "\r\n\x00"):  # would split a header, or end a request line
            secret = name.startswith(("prefect:", "secret:"))
            what = (
                f"Prefect Secret block '{name.partition(':')[2]}'"
                if secret
                else f"environment variable '{name}'"
            )
            raise SpecError(f"{what} holds a line break or a NUL, which no request can carry", field=field)
        if self.secrets is not None and value:
            self.secrets.add(value)
        return value


def _merge_literals(parts: list[str | ColumnRef]) -> list[str | ColumnRef]:
    merged: list[str | ColumnRef] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        elif part != "":
            merged.append(part)
    return merged


def expand_environment(text: str, environ: Mapping[str, str], field: str) -> str:
    """``text`` with each ``${NAME}`` replaced from ``environ`` (a setting that must not carry its
    secret where it is recorded, like a cache URL's password); ``SpecError`` naming ``field``."""
    if "${" not in text:
        return text
    template = TemplateParser(environ).parse(text, field)
    if not template.is_literal:
        raise SpecError("cannot reference columns", field=field)
    return template.literal()


class UnsetAsPlaceholders(Mapping[str, str]):
    """``environ``, with every variable it lacks read as ``PLACEHOLDER``: a spec loaded with it is
    checked for everything but the values that only the process running the job has (``enrich
    submit`` checks what ``enrich serve`` will run; ``enrich validate`` runs where secrets are not).
    """

    # Valid wherever a value may go (a token, a host, a port, a number), and rare enough that
    # redacting it (it becomes one of the spec's secrets) hides nothing else.
    PLACEHOLDER = "10101"

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        return self._environ.get(name, self.PLACEHOLDER)

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)
