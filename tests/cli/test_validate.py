"""The enrich command in a subprocess: help, and validate with clear errors."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import polars as pl

from enrich.cli.parser import build_parser
from tests.helpers import run_cli

COMMANDS = ["validate", "try", "run", "cache", "mock-api", "serve", "api", "submit", "deploy", "demo"]

SPEC = """
[api]
url = "https://api.example.com/v1/ip/{ip}"
headers = { Authorization = "Bearer ${GEO_TOKEN}" }
[input]
key = "ip"
[output.columns]
country = { path = "country.iso_code", type = "str" }
"""


def test_help_lists_every_command_and_the_exit_statuses() -> None:
    """enrich --help exits 0, names every command, and says what each exit status means."""
    done = run_cli("--help")
    assert done.returncode == 0
    for command in COMMANDS:
        assert f"    {command} " in done.stdout, command
    statuses = done.stdout.split("exit statuses:")[1]
    assert [line.split()[0] for line in statuses.splitlines() if line[:3].strip()] == [
        "0", "1", "2", "3", "4", "128+N"
    ]  # fmt: skip


def test_every_command_describes_itself_and_its_arguments() -> None:
    """Each command's --help starts with what it does, and no argument goes without a help text."""
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(commands.choices) == sorted(COMMANDS)
    for name, parser in commands.choices.items():
        assert parser.description, name
        assert [a.dest for a in parser._actions if not a.help] == [], name


def test_every_default_is_shown_in_help() -> None:
    """Every option with a default worth showing says it in its help (``(default: ...)``)."""
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in commands.choices.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
                continue
            shown = formatter._expand_help(action)
            assert "default" in shown or f"({action.default})" in shown, (name, action.dest, shown)
    run_help = run_cli("run", "--help").stdout
    assert "(default: 1.0)" in " ".join(run_help.split())  # --max-error-ratio


def test_version_is_the_packages() -> None:
    """enrich --version prints the version pyproject.toml declares."""
    declared = tomllib.loads(Path("pyproject.toml").read_text())["project"]["version"]
    done = run_cli("--version")
    assert (done.returncode, done.stdout) == (0, f"enrich {declared}\n")


def test_validate_accepts_a_matching_input(tmp_path: Path) -> None:
    """A good spec and input: exit 0 and a one-line summary."""
    (tmp_path / "spec.toml").write_text(SPEC)
    pl.DataFrame({"ip": ["1.2.3.4"], "n": [1]}).write_parquet(tmp_path / "in.parquet")
    done = run_cli(
        "validate",
        str(tmp_path / "spec.toml"),
        "--input",
        str(tmp_path / "in.parquet"),
        env={"GEO_TOKEN": "t0k3n"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ")
    assert "t0k3n" not in done.stdout + done.stderr


def test_validate_names_what_is_wrong(tmp_path: Path) -> None:
    """Each mistake gives exit 2 and a message naming the field or column."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    (tmp_path / "in.csv").write_text("addr,n\n1.2.3.4,1\n")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really parquet")
    (tmp_path / "broken.toml").write_text(SPEC + "\n[limits\n")
    cases = [
        (
            (str(spec), "--check-env"),
            {},
            "api.headers.Authorization: environment variable 'GEO_TOKEN' is not set",
        ),
        (
            (str(spec), "--input", str(tmp_path / "in.csv")),
            {"GEO_TOKEN": "x"},
            "input.key column 'ip' is not in the input",
        ),
        ((str(spec), "--input", str(tmp_path / "bad.parquet")), {"GEO_TOKEN": "x"}, "cannot read as parquet"),
        ((str(spec), "--input", str(tmp_path / "nope.csv")), {"GEO_TOKEN": "x"}, "no such file"),
        ((str(tmp_path / "broken.toml"),), {"GEO_TOKEN": "x"}, "line 10: invalid TOML"),
        ((str(tmp_path / "absent.toml"),), {}, "spec file not found"),
    ]
    for args, env, words in cases:
        done = run_cli("validate", *args, env=env)
        assert done.returncode == 2, (args, done.stdout)
        assert words in done.stderr, (args, done.stderr)
        assert done.stderr.startswith("enrich: error: ")


def test_validate_lists_every_mistake_and_needs_no_secret(tmp_path: Path) -> None:
    """Two mistakes of different kinds (a field's value, a JMESPath) are listed in one run, one
    line each; an unset ${NAME} is no mistake without --check-env (validate runs in CI, where the
    secrets are not)."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace("[output.columns]", "[limits]\nconcurrency = -3\n[output.columns]"))
    spec.write_text(spec.read_text().replace('path = "country.iso_code"', 'path = "country.["'))
    done = run_cli("validate", str(spec))
    assert done.returncode == 2
    assert done.stderr.splitlines()[1:] == [
        "  limits.concurrency: Input should be greater than or equal to 1",
        "  output.columns.country.path: invalid JMESPath 'country.[': Invalid jmespath expression: "
        "Incomplete expression:",
    ]
    spec.write_text(SPEC)
    done = run_cli("validate", str(spec))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ")


def test_validate_lists_every_cross_field_mistake_too(tmp_path: Path) -> None:
    """Mistakes found only once the fields are valid (a URL column that is not a key, a reserved
    column name, a broken JMESPath, a struct type without its colon) are listed together too."""
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[api]\nurl = "https://api.example.com/v1/{ip}/{lang}"\n[input]\nkey = "ip"\n'
        '[output.columns]\n_enrich_x = { path = "x" }\ncountry = { path = "country.[" }\n'
        'city = { path = "city", type = "struct{name str}" }\n'
    )
    done = run_cli("validate", str(spec))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0] == "enrich: error: invalid spec:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "output.columns.city.type",
        "output.columns.country.path",
    ]
    spec.write_text(spec.read_text().replace("struct{name str}", "struct{name: str}"))
    done = run_cli("validate", str(spec))
    lines = done.stderr.splitlines()
    assert lines[0] == "enrich: error: invalid spec:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "api.url",
        "output.columns._enrich_x",
        "output.columns.country.path",
    ]


def test_validate_never_prints_credentials_from_the_url(tmp_path: Path) -> None:
    """A password written in [api].url is shown as *** in validate's summary."""
    (tmp_path / "spec.toml").write_text(
        SPEC.replace("https://api.example.com", "https://user:Pa55w0rd@api.example.com")
    )
    done = run_cli("validate", str(tmp_path / "spec.toml"), env={"GEO_TOKEN": "t0k3n"})
    assert done.returncode == 0, done.stderr
    assert "https://***:***@api.example.com" in done.stdout
    assert "Pa55w0rd" not in done.stdout + done.stderr
