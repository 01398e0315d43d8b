"""The import graph between harness's packages has no cycles, and nothing that measures imports the zoo.

Read from the source with ast (imports inside functions count too: they are dependencies all the same).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "harness"
# Packages that run during a measurement or a report; the zoo (build code) is never among their imports.
RUN_TIME = ("devices", "runners", "run", "store", "stats", "report", "nightly", "thermal", "plan", "inventory",
            "artifacts", "accuracy", "sim", "models", "profile")


@cache
def _nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of one source file, parsed once for all of this file's tests (each parsed all of harness again)."""
    return tuple(ast.walk(ast.parse(path.read_text())))


def _graph() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> files that import it (top-level modules count as packages)."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        src = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for node in _nodes(path):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "harness" and len(parts) > 1 and parts[1] != src:
                    edges[src][parts[1]].append(str(rel))
    return edges


def _cycle(edges) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, {}):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in list(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_packages():
    edges = _graph()
    cycle = _cycle(edges)
    detail = [f"{a} -> {b}: {sorted(set(edges[a][b]))[:3]}" for a, b in zip(cycle, cycle[1:])] if cycle else []
    assert cycle is None, "import cycle: " + " | ".join(detail)


def test_nothing_that_measures_imports_the_zoo():
    edges = _graph()
    offenders = {pkg: sorted(set(edges[pkg]["zoo"])) for pkg in RUN_TIME if "zoo" in edges.get(pkg, {})}
    assert offenders == {}


def test_the_checker_finds_a_cycle_when_there_is_one():
    assert _cycle({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b": []}, "b": {}}) is None


def test_measuring_code_reaches_the_executorch_runtime_only_through_import_executorch_runtime():
    """``from executorch.runtime import ...`` anywhere but harness/runtime.py loads the whole exporter first
    (executorch/exir/__init__.py): measured on 2026-12-01, a .pte transcription process took 11.4 s instead of
    6.2 s and held 120 MB more.  The one way in is harness.runtime.import_executorch_runtime."""
    offenders = []
    for package in RUN_TIME:
        for path in (ROOT / package).rglob("*.py"):
            for node in _nodes(path):
                if isinstance(node, ast.ImportFrom) and node.module in ("executorch.runtime", "executorch"):
                    if node.module == "executorch.runtime" or any(a.name == "runtime" for a in node.names):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                elif isinstance(node, ast.Import) and any(a.name == "executorch.runtime" for a in node.names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_measuring_code_loads_the_llm_kernels_as_libraries_not_through_their_python_modules():
    """``executorch.extension.llm.custom_ops.custom_ops`` and ``executorch.kernels.quantized`` import torch._inductor
    and the exporter before loading their kernel libraries: an LLM cell's process took 24 s to start instead of 5
    (busy 2-core machine, 2026-12-07).  harness.runtime.import_llm_runner loads the two libraries alone."""
    heavy = ("executorch.extension.llm.custom_ops", "executorch.kernels.quantized")
    offenders = []
    for package in RUN_TIME:
        for path in (ROOT / package).rglob("*.py"):
            for node in _nodes(path):
                names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                         [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                if any(name.startswith(heavy) for name in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


@pytest.mark.slow  # a fresh interpreter importing ExecuTorch's runtime: that is the point
def test_the_runtime_without_the_exporter_leaves_the_exporter_importable():
    """import_executorch_runtime (and set_executorch_threads) let ExecuTorch's runtime load beside a bare
    ``executorch.exir``; the bare package stayed registered, so a later export or devtools Inspector in the same
    process failed ("cannot import name 'ExportedProgram' from 'executorch.exir'"): a test process that ran a .pte
    in-process (the iOS fake app) before its first export.  A fresh interpreter, so nothing loaded the exporter."""
    import subprocess
    import sys

    probe = ("import sys, executorch\n"
             "from harness.runtime import import_executorch_runtime, set_executorch_threads\n"
             "import_executorch_runtime(); set_executorch_threads(1)\n"
             "assert 'executorch.exir' not in sys.modules and not hasattr(executorch, 'exir'), 'bare exir left behind'\n"
             "assert 'torch._dynamo' not in sys.modules, 'the exporter was loaded'\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                          cwd=ROOT.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
