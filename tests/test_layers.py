"""The package's import graph: no circles between modules (the layers are import-linter's)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "sora_widgets"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(m for m in graph.modules if m.startswith("sora_widgets."))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if not child.startswith("sora_widgets."):
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(
                        child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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
    return found


def test_no_import_circles_between_modules() -> None:
    graph = grimp.build_graph("sora_widgets", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    for name in ("sora_widgets.a", "sora_widgets.b", "sora_widgets.c"):
        graph.add_module(name)
    graph.add_import(importer="sora_widgets.a", imported="sora_widgets.b")
    graph.add_import(importer="sora_widgets.b", imported="sora_widgets.a")
    graph.add_import(importer="sora_widgets.b", imported="sora_widgets.c")
    assert _cycles(graph) == [["sora_widgets.a", "sora_widgets.b"]]


def test_the_layer_contract_fails_on_a_deliberate_upward_import(tmp_path: Path) -> None:
    """The contracts bite: a copy of the package whose core imports the UI breaks them."""
    copy = tmp_path / "sora_widgets"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    lint = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]
    clean = subprocess.run(lint, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    lifecycle = copy / "core" / "lifecycle.py"
    lifecycle.write_text(lifecycle.read_text() + "\nfrom sora_widgets.ui import render  # up\n")
    broken = subprocess.run(lint, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert broken.returncode != 0
    assert "sora_widgets.core.lifecycle -> sora_widgets.ui.render" in broken.stdout
