"""The package tree is the data path: layers import only downward, and each side stays light.

Like harlequin's import-hygiene test, this reads the source with :mod:`ast` (every ``import``,
at module level or inside a function) and fails on an import that goes up a layer, sideways
between packages of one layer, or round a circle; and it imports each package in a fresh
interpreter to check what that loads.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import hpc_runner

PACKAGE_DIR = Path(hpc_runner.__file__).parent

#: Bottom to top; a module may import its own package and any package of a lower rank.
LAYERS: dict[str, int] = {
    "errors": 0,
    "stream": 1,
    "data": 1,
    "spec": 2,
    "node": 3,
    "control": 4,
    "watch": 5,
    "tui": 6,
    "api": 6,
    "cli": 7,
    "__main__": 8,
    "__init__": 8,
}

MONITORING = ("stream", "data", "spec", "control", "watch", "tui", "cli", "api")
NODE = ("stream", "data", "spec", "node")
TORCH_SIDE = ("torch", "lightning", "pytorch_lightning", "careamics")
UI_SIDE = ("textual", "watchdog")


def layer_of(module: str) -> str:
    """``hpc_runner.spec.job`` -> ``spec``; ``hpc_runner`` (the package itself) -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every ``hpc_runner`` module ``path`` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "hpc_runner" and _exists(name)}


def _exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE_DIR / relative).with_suffix(".py").exists() or (
        PACKAGE_DIR / relative / "__init__.py"
    ).exists()


def import_graph() -> dict[str, set[str]]:
    return {
        module_name(path): imported_modules(path) - {module_name(path)}
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
    }


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for importer, imported in graph.items():
        source = layer_of(importer)
        for target_module in imported:
            target = layer_of(target_module)
            if target == source or (target == "__init__" and source == "__init__"):
                continue
            if LAYERS[target] >= LAYERS[source]:
                wrong.append(f"{importer} imports {target_module} ({source} -> {target})")
    return sorted(wrong)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for importer, imported in graph.items():
        source = layer_of(importer)
        packages.setdefault(source, set()).update(
            layer_of(target) for target in imported if layer_of(target) != source
        )
    return packages


def test_every_package_and_top_level_module_has_a_layer() -> None:
    top = {path.stem for path in PACKAGE_DIR.glob("*.py")}
    packages = {path.parent.name for path in PACKAGE_DIR.glob("*/__init__.py")}
    assert top | packages <= set(LAYERS)
    assert len(top) <= 5, f"at most 5 modules directly in hpc_runner/: {sorted(top)}"


def test_layers_import_only_downward() -> None:
    assert upward_imports(import_graph()) == []


def test_no_import_circle_between_packages_or_modules() -> None:
    graph = import_graph()
    assert circles(package_graph(graph)) == []
    assert circles(graph) == []


def test_the_checks_can_fail() -> None:
    """An upward import and a circle in a made-up graph are found."""
    graph = {
        "hpc_runner.stream.tail": {"hpc_runner.spec.job"},
        "hpc_runner.spec.job": {"hpc_runner.stream.tail"},
    }
    assert upward_imports(graph) == [
        "hpc_runner.stream.tail imports hpc_runner.spec.job (stream -> spec)"
    ]
    assert circles(graph) == [["hpc_runner.spec.job", "hpc_runner.stream.tail"]]
    assert upward_imports({"hpc_runner.stream.tail": {"hpc_runner.data.sources"}}) != []


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return {name.split(".")[0] for name in json.loads(result.stdout.splitlines()[-1])}


def modules_of(package: str) -> list[str]:
    if package == "api":
        return ["hpc_runner.api"]
    return sorted(module_name(path) for path in (PACKAGE_DIR / package).glob("*.py"))


@pytest.mark.parametrize("package", MONITORING)
def test_monitoring_side_loads_no_torch(package: str) -> None:
    """Every module of the package at once, so a new module is covered without a list."""
    imports = "\n".join(f"import {module}" for module in modules_of(package))
    assert loaded_after(imports) & set(TORCH_SIDE) == set()


@pytest.mark.parametrize("package", NODE)
def test_node_side_loads_no_ui(package: str) -> None:
    imports = "\n".join(f"import {module}" for module in modules_of(package))
    assert loaded_after(imports) & set(UI_SIDE) == set()


def test_package_init_files_stay_thin() -> None:
    packages = sorted(path.parent.name for path in PACKAGE_DIR.glob("*/__init__.py"))
    imports = "\n".join(f"import hpc_runner.{package}" for package in packages)
    heavy = {*TORCH_SIDE, "textual", "submitit"}
    assert loaded_after(f"import hpc_runner\n{imports}") & heavy == set()


def test_public_api_lazily() -> None:
    monitoring = (
        "from hpc_runner import TrainingStatus, TrainUpdate, TrainUpdateType, TrainingState, "
        "replay, Sweep"
    )
    assert loaded_after(monitoring) & set(TORCH_SIDE) == set()
    node = "from hpc_runner import StatusCallback, train_with_status"
    assert "lightning" in loaded_after(node)  # the probe can fail: these do load lightning
