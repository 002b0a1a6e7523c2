"""The layering holds, read from the source: who may import whom, no cycles, small functions.

    enrich/      the command line and the Python front: may import flows and service
    flows/       Prefect: may import service, never enrich
    service/     the engine: never flows, Prefect or enrich

Imports inside functions count too: a lazy import still ties the two modules together.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("enrich", "service", "flows", "benchmarks")
# The engine must run where Prefect is not installed: none of its orchestration packages.
ORCHESTRATION = ("prefect", "prefect_dask", "dask", "distributed")
# The public fronts: code outside the engine reaches it only through these.
ENGINE_FRONTS = ("service", "service.testing")
MAX_FUNCTION_LINES = 40
MAX_CLASS_LINES = 150
# Argument-parser declarations read best whole, one command after another.
PARSER_DECLARATIONS = {("enrich.cli.parser", "build_parser")}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(*packages: str) -> Iterator[tuple[str, Path]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield module_name(path), path


def is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(name: str, path: Path) -> Iterator[Import]:
    """Every module ``name`` imports, wherever in the file (absolute imports only: the codebase
    uses no relative ones); ``from package import module`` imports both."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            assert node.module is not None
            yield Import(name, node.module, node.lineno)
            for alias in node.names:
                if is_module(f"{node.module}.{alias.name}"):
                    yield Import(name, f"{node.module}.{alias.name}", node.lineno)


def all_imports(*packages: str) -> list[Import]:
    return [found for name, path in modules(*packages) for found in imports_of(name, path)]


def within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_engine_never_imports_flows_prefect_or_the_command_line() -> None:
    """service/ stays usable without Prefect: no import of flows, enrich or Prefect's packages."""
    bad = [i for i in all_imports("service") if within(i.imported, "flows", "enrich", *ORCHESTRATION)]
    assert bad == []


def test_flows_never_import_the_command_line() -> None:
    """flows/ is below the command line: it never imports enrich."""
    assert [i for i in all_imports("flows") if within(i.imported, "enrich")] == []


def test_code_outside_the_engine_uses_its_public_front() -> None:
    """flows/ and enrich/ import ``service`` (or ``service.testing``), not its insides (benchmarks/
    may: measuring the insides is their job)."""
    bad = [
        i
        for i in all_imports("flows", "enrich")
        if within(i.imported, "service") and i.imported not in ENGINE_FRONTS
    ]
    assert bad == []


def test_no_module_of_the_engine_imports_its_own_front() -> None:
    """Inside service/, modules import each other directly: importing the package's front from
    within would make its import order a cycle."""
    bad = [i for i in all_imports("service") if i.imported == "service" and i.importer != "service"]
    assert bad == []


def import_cycle(package: str) -> list[str] | None:
    """A cycle among ``package``'s modules, or None (a package depends on its ``__init__``)."""
    graph: dict[str, set[str]] = {name: set() for name, _ in modules(package)}
    for found in all_imports(package):
        if found.imported in graph and found.imported != found.importer:
            graph[found.importer].add(found.imported)
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> list[str] | None:
        if node in trail:
            return [*trail[trail.index(node) :], node]
        if node in done:
            return None
        for neighbour in sorted(graph[node]):
            cycle = visit(neighbour, [*trail, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


@pytest.mark.parametrize("package", ["flows", "service", "enrich"])
def test_no_import_cycle(package: str) -> None:
    """The modules of each package import one another without a cycle, lazy imports included."""
    assert import_cycle(package) is None


def test_the_cycle_finder_finds_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lazy import back from b to a is a cycle (the finder can fail)."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import pkg.b\n")
    (package / "b.py").write_text("def f():\n    from pkg import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert import_cycle("pkg") is not None


def test_functions_and_classes_stay_small() -> None:
    """No function over 40 lines (argument-parser declarations aside), no class over 150."""
    too_long = []
    for name, path in modules(*PACKAGES):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                limit = None if (name, node.name) in PARSER_DECLARATIONS else MAX_FUNCTION_LINES
            elif isinstance(node, ast.ClassDef):
                limit = MAX_CLASS_LINES
            else:
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if limit is not None and lines > limit:
                too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert too_long == []
