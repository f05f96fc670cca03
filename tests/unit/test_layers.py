"""DESIGN.md's layers, read from the code: every import in gensvc/ and wrappers/ (lazy ones, inside
functions, too), parsed with `ast`.

wrappers/ -> runner / cli -> services/ (+ merge) -> core/; arrows only point down: core/ knows no
service, no Snakemake and no VCF; services/ never know how they were called; nothing in production
imports emulators/ (but `gensvc emulate` and `gensvc demo`, which serve them), and emulators/
import nothing of gensvc outside themselves (their own spelling of every rule, on purpose).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "gensvc"


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a module, or module.name for `from module import name`
    line: int
    lazy: bool  # inside a function: runs only when that function does


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str) -> list[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(Import(name, alias.name, child.lineno, lazy) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module
                found.append(Import(name, module, child.lineno, lazy))
                found.extend(Import(name, f"{module}.{alias.name}", child.lineno, lazy) for alias in child.names)
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(path, name)]


def within(target: str, *packages: str) -> bool:
    return any(target == p or target.startswith(p + ".") for p in packages)


def broken(rule) -> list[str]:
    return [f"{imp.importer} (line {imp.line}) imports {imp.target}" for imp in IMPORTS if rule(imp)]


def test_core_imports_nothing_of_gensvc_but_core_and_errors_and_no_snakemake_or_vcf_reader():
    def rule(imp: Import) -> bool:
        if not within(imp.importer, "gensvc.core"):
            return False
        if within(imp.target, "snakemake", "pysam"):
            return True
        return within(imp.target, "gensvc") and not (
            within(imp.target, "gensvc.core", "gensvc.errors") or imp.target in ("gensvc", "gensvc.__version__"))

    assert broken(rule) == []


def test_services_never_import_how_they_were_called():
    assert broken(lambda imp: within(imp.importer, "gensvc.services")
                  and within(imp.target, "gensvc.runner", "gensvc.cli", "gensvc.demo", "snakemake")) == []


def test_nothing_in_production_imports_the_emulators_but_the_two_commands_that_serve_them():
    serving = {"gensvc.cli", "gensvc.demo"}  # `gensvc emulate`, `gensvc demo`: lazily, the server alone

    def rule(imp: Import) -> bool:
        if within(imp.importer, "gensvc.emulators") or not within(imp.target, "gensvc.emulators"):
            return False
        return not (imp.importer in serving and imp.lazy and within(imp.target, "gensvc.emulators.server"))

    assert broken(rule) == []


def test_the_emulators_import_nothing_of_gensvc_outside_themselves():
    assert broken(lambda imp: within(imp.importer, "gensvc.emulators") and within(imp.target, "gensvc")
                  and not within(imp.target, "gensvc.emulators")) == []


def test_every_wrapper_imports_the_runner_alone():
    for path in sorted((REPO / "wrappers").glob("*/*/wrapper.py")):
        targets = {imp.target for imp in imports_of(path, "wrapper")}
        assert targets == {"gensvc.runner", "gensvc.runner.run_wrapper"}, path


def test_no_two_modules_of_gensvc_import_each_other_even_through_others():
    graph = {name: set() for name in MODULES}
    for imp in IMPORTS:
        # `from package import name` names a module when there is one of that name
        target = imp.target if imp.target in MODULES else imp.target.rpartition(".")[0]
        if target in MODULES and target != imp.importer:
            graph[imp.importer].add(target)
    circles = []
    for start in sorted(graph):
        path = _path_back(graph, start)
        if path and min(path) == start:  # each circle once, from its first module
            circles.append(" -> ".join(path))
    assert circles == []


def _path_back(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """The shortest chain of imports from start back to itself, if any."""
    frontier, seen = [[start]], {start}
    while frontier:
        chain = frontier.pop(0)
        for nxt in sorted(graph[chain[-1]]):
            if nxt == start:
                return chain + [start]
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(chain + [nxt])
    return None
