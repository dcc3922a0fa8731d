"""The layout is the architecture: the runtime never imports the trainer, core/, io/ and
the contract load neither ROS nor PyTorch, and no two runtime modules import each other
(directly or round a loop) at import time."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "video_predictor"
ROS_AND_TORCH = ("rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "builtin_interfaces", "torch")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported_modules(path: Path, top_level_only: bool) -> set[str]:
    """Modules an import statement names (``from a.b import c`` gives a.b.c where that is a
    module, else a.b); with ``top_level_only``, only what runs at import time (not inside
    functions, nor under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if top_level_only and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                nodes.append(child)
            visit(child)

    visit(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in MODULES)
    return found


def test_the_runtime_never_imports_the_trainer():
    offenders = {name: sorted(m for m in imported_modules(path, top_level_only=False)
                              if m.split(".")[0] in ("training", "video_predictor_training"))
                 for name, path in MODULES.items()}
    assert not {k: v for k, v in offenders.items() if v}


def test_no_import_cycle_between_runtime_modules():
    graph = {name: {m for m in imported_modules(path, top_level_only=False) if m in MODULES and m != name}
             for name, path in MODULES.items()}
    # importing a.b.c runs a and a.b first, except the packages the importer is already inside
    for name in list(graph):
        parents = {".".join(m.split(".")[:i]) for m in set(graph[name]) for i in range(1, m.count(".") + 1)}
        graph[name] |= {p for p in parents if p in MODULES and p != name and not name.startswith(p + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("modules", [
    ["video_predictor.core." + p.stem for p in (PACKAGE / "core").glob("*.py") if p.stem != "__init__"]
    + ["video_predictor.io.bags", "video_predictor.io.video", "video_predictor.contract"],
], ids=["core_io_contract"])
def test_core_io_and_contract_load_neither_ros_nor_torch(modules):
    code = (f"import json, sys\nfor m in {modules!r}: __import__(m)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {ROS_AND_TORCH!r})))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                       text=True, cwd=REPO).stdout)
    assert loaded == []
