"""The layout is the architecture: no import cycle among video_predictor's modules (lazy
imports count), the runtime never imports the trainer, the ROS-free layers (core, io,
offline evaluation, the training data and validation path) load no ROS package, so they
run where ROS 2 is not installed, and core, io and the contract load no PyTorch either."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import video_predictor

PACKAGE = Path(video_predictor.__file__).parent
ROS_PACKAGES = ("rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs")


def module_names() -> dict[str, Path]:
    """video_predictor.* module name -> file."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(name: str, path: Path, modules: dict[str, Path], top_level_only: bool) -> set[str]:
    """The video_predictor modules ``name`` imports: every import statement, lazy ones in
    functions too unless ``top_level_only``; ``if TYPE_CHECKING:`` blocks never run."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                continue
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if not (inner and top_level_only):
                if isinstance(child, ast.Import):
                    found.update(alias.name for alias in child.names)
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:
                        anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                        base = ".".join(anchor + ([base] if base else []))
                    # `from package import module` imports the module; `from module import name`, the module
                    found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in child.names)
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    resolved = set()
    for target in found:
        while target and target not in modules:  # an attribute of a module: the module
            target = target.rpartition(".")[0]
        if target and target not in (name, "video_predictor"):  # the root package's __init__ imports lazily
            resolved.add(target)
    return resolved


def cycles(top_level_only: bool) -> list[list[str]]:
    modules = module_names()
    graph = {name: imported_modules(name, path, modules, top_level_only) for name, path in modules.items()}
    found, state, stack = [], {}, []

    def walk(name: str) -> None:
        state[name] = "open"
        stack.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                walk(target)
        stack.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            walk(name)
    return found


def test_no_import_cycle_among_the_runtime_modules():
    """Lazy imports count too: a cycle hidden in a function is still one module needing the other."""
    assert cycles(top_level_only=False) == []


def test_the_runtime_never_imports_the_trainer():
    trainer = ("training", "video_predictor_training")
    offenders = {}
    for name, path in module_names().items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders.update({name: t for t in targets if t.split(".")[0] in trainer})
    assert offenders == {}


def test_the_cycle_finder_sees_the_cycle_the_evaluator_had(tmp_path, monkeypatch):
    """live imported offline at the top, offline imported live inside a function."""
    package = tmp_path / "video_predictor"
    (package / "evaluation").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "evaluation" / "__init__.py").write_text("")
    (package / "evaluation" / "offline.py").write_text("def main():\n    from video_predictor.evaluation import live\n")
    (package / "evaluation" / "live.py").write_text("from video_predictor.evaluation.offline import main\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    assert cycles(top_level_only=False) == [["video_predictor.evaluation.live", "video_predictor.evaluation.offline",
                                             "video_predictor.evaluation.live"]]
    assert cycles(top_level_only=True) == []


def submodules(package: str) -> list[str]:
    module = __import__(package, fromlist=["__path__"])
    return [package] + [f"{package}.{info.name}" for info in pkgutil.iter_modules(module.__path__)]


def test_the_ros_free_layers_load_no_ros_package():
    names = ["video_predictor.evaluation.offline", "video_predictor.evaluation.scoring",
             "video_predictor.evaluation.sources", "video_predictor.evaluation.results",
             "video_predictor.evaluation.matching",
             *submodules("video_predictor.core"), *submodules("video_predictor.io"),
             *submodules("training.data"), "training.train",  # training validation: train.validate
             "video_predictor.api", *submodules("video_predictor.backends"), *submodules("video_predictor.models")]
    script = (f"import importlib, json, sys\nfor name in {names!r}:\n    importlib.import_module(name)\n"
              f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {ROS_PACKAGES!r})))")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               cwd=PACKAGE.parent, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout.splitlines()[-1]) == []


def test_core_io_and_the_contract_load_no_pytorch():
    """An ONNX-only deployment needs no torch: only the torch backend and the models load it."""
    names = [*submodules("video_predictor.core"), *submodules("video_predictor.io"), "video_predictor.contract"]
    script = (f"import importlib, sys\nfor name in {names!r}:\n    importlib.import_module(name)\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               cwd=PACKAGE.parent, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.splitlines()[-1] == "[]"
