"""Templates in spec strings: columns, environment variables, secrets, literal braces; parsed once,
every mistake named with its field; the values put in remembered as secrets."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from service import SpecError
from service.spec.templates import (
    ColumnRef,
    Template,
    TemplateParser,
    UnsetAsPlaceholders,
    expand_environment,
    value_text,
)


def parse(text: str, **environ: str) -> Template:
    return TemplateParser(environ).parse(text, "api.url")


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", ()),
        ("plain", ("plain",)),
        ("/v1/{ip}", ("/v1/", ColumnRef("ip"))),
        ("{ip}", (ColumnRef("ip"),)),
        ("{ a }-{b}", (ColumnRef("a"), "-", ColumnRef("b"))),
        ("{{literal}} {k}}}", ("{literal} ", ColumnRef("k"), "}")),
        ("x${TOKEN}y{k}", ("xs3cy", ColumnRef("k"))),
        ("${TOKEN}", ("s3c",)),
    ],
)
def test_templates_read_into_literal_text_and_columns(text: str, parts: tuple[object, ...]) -> None:
    """Literal text is merged, ``{column}`` is a column (spaces trimmed), ``{{`` and ``}}`` are
    braces, ``${NAME}`` is the variable's value, read once."""
    assert parse(text, TOKEN="s3c").parts == parts
    assert parse("${TOKEN}", TOKEN="aXb\tc").parts == ("aXb\tc",)  # a tab is no line break


def test_what_a_template_tells() -> None:
    """Its columns in order, whether it is one whole column, whether it is literal, its text."""
    template = parse("/{a}/x/{b}")
    assert (template.columns, template.whole_column, template.is_literal) == (("a", "b"), None, False)
    assert parse("{a}").whole_column == "a"
    literal = parse("a{{b}}")
    assert (literal.is_literal, literal.literal(), literal.columns) == (True, "a{b}", ())
    assert Template(("a", ColumnRef("x"), "b")).literal() == "ab"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/v1/{}", "api.url: empty placeholder '{}'"),
        ("/v1/{ }", "api.url: empty placeholder '{}'"),
        ("/v1/{ip", "api.url: unbalanced '{' in '/v1/{ip': write '{{' for a literal brace"),
        ("/v1/ip}", "api.url: unbalanced '}' in '/v1/ip}': write '}}' for a literal brace"),
        ("${MISSING}", "api.url: environment variable 'MISSING' is not set"),
        ("${}", "api.url: environment variable '' is not set"),
        ("${secret:geo}", "api.url: '${prefect:geo}' needs Prefect's API to read the Secret block"),
        ("${prefect:geo}", "api.url: '${prefect:geo}' needs Prefect's API to read the Secret block"),
        ("${BROKEN}",
         "api.url: environment variable 'BROKEN' holds a line break or a NUL, which no request can carry"),
    ],
)  # fmt: skip
def test_mistakes_name_the_field(text: str, message: str) -> None:
    """Each mistake is a SpecError naming the field and what is wrong."""
    with pytest.raises(SpecError, match=f"^{re.escape(message)}$"):
        parse(text, BROKEN="a\nb")


def test_secrets_come_from_the_resolver_and_every_value_put_in_is_remembered() -> None:
    """``${secret:NAME}`` asks the resolver (name trimmed); each non-empty value substituted is
    kept as a secret (an empty one would match everywhere); a secret holding a line break is
    refused, named as a secret."""
    secrets: set[str] = set()
    parser = TemplateParser({"TOKEN": "t0k", "EMPTY": ""}, lambda name: f"<{name}>", secrets)
    assert parser.parse("${TOKEN}:${secret: geo }:${EMPTY}", "api.headers.X").parts == ("t0k:<geo>:",)
    assert secrets == {"t0k", "<geo>"}
    broken = TemplateParser({}, lambda name: "line\r\nbreak")
    with pytest.raises(SpecError, match=r"^api\.body: Prefect Secret block 'x' holds a line break or a NUL"):
        broken.parse("${secret:x}", "api.body")


def test_values_are_written_as_json_and_iso_8601_write_them() -> None:
    """Booleans in lower case, dates and times in ISO 8601, anything else as ``str``."""
    assert [value_text(v) for v in (True, False, 3, 2.5, "x")] == ["true", "false", "3", "2.5", "x"]
    assert value_text(dt.date(2024, 3, 1)) == "2024-03-01"
    assert value_text(dt.datetime(2024, 3, 1, 4, 5, 6)) == "2024-03-01T04:05:06"
    assert value_text(dt.time(4, 5)) == "04:05:00"


def test_expand_environment_fills_variables_and_refuses_columns() -> None:
    """A setting's ``${NAME}`` are filled; text without one is left as it is (braces included);
    a column reference is refused, naming the setting."""
    assert expand_environment("redis://:${PW}@h/0", {"PW": "x"}, "cache_dir") == "redis://:x@h/0"
    assert expand_environment("/plain/{folder}", {}, "cache_dir") == "/plain/{folder}"
    with pytest.raises(SpecError, match=r"^cache_dir: cannot reference columns$"):
        expand_environment("/${PW}/{folder}", {"PW": "x"}, "cache_dir")
    with pytest.raises(SpecError, match=r"^cache_dir: environment variable 'PW' is not set$"):
        expand_environment("redis://:${PW}@h/0", {}, "cache_dir")


def test_unset_variables_read_as_a_placeholder() -> None:
    """Every name is there: a set one with its value, an unset one as the placeholder."""
    environ = UnsetAsPlaceholders({"SET": "v"})
    assert (environ["SET"], environ["UNSET"], "UNSET" in environ) == ("v", "10101", True)
    assert (list(environ), len(environ)) == (["SET"], 1)
