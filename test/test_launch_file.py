"""launch/predictor.launch.py starts the package's console script with the shipped
parameters file, and that file holds every parameter the node declares."""

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

from video_predictor.node_parameters import PARAMETERS

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "predictor.launch.py"
PARAMS_FILE = REPO / "config" / "predictor.yaml"


def console_scripts() -> dict[str, str]:
    """name -> target of the console_scripts entry points in setup.py (read, not run)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    specs = [ast.literal_eval(e) for e in value.elts]
                    return {s.split("=")[0].strip(): s.split("=")[1].strip() for s in specs}
    raise AssertionError("setup.py declares no console_scripts")


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def keywords(call: ast.Call) -> dict[str, ast.AST]:
    return {k.arg: k.value for k in call.keywords}


def test_launch_file_defines_generate_launch_description():
    tree = ast.parse(LAUNCH_FILE.read_text())
    assert "generate_launch_description" in [f.name for f in tree.body if isinstance(f, ast.FunctionDef)]


def test_launch_node_runs_the_packaged_console_script():
    (node,) = calls(ast.parse(LAUNCH_FILE.read_text()), "Node")
    kw = keywords(node)
    assert ast.literal_eval(kw["package"]) == "video_predictor"
    assert console_scripts()[ast.literal_eval(kw["executable"])] == "video_predictor.entry:main"
    assert "parameters" in kw
    (remapping,) = kw["remappings"].elts
    assert ast.literal_eval(remapping.elts[0]) == "/camera/image_raw"


def test_launch_arguments_default_to_the_shipped_params_file_and_camera_topic():
    tree = ast.parse(LAUNCH_FILE.read_text())
    defaults = {ast.literal_eval(c.args[0]): keywords(c)["default_value"] for c in calls(tree, "DeclareLaunchArgument")}
    assert set(defaults) == {"params_file", "image_topic"}
    assert ast.literal_eval(defaults["image_topic"]) == "/camera/image_raw"
    (join,) = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and ast.unparse(c.func) == "os.path.join"]
    share, *relative = join.args
    assert ast.unparse(share) == "get_package_share_directory('video_predictor')"
    assert (REPO / Path(*[ast.literal_eval(p) for p in relative])) == PARAMS_FILE
    assert PARAMS_FILE.is_file()


def test_launch_file_builds_with_launch_ros_where_installed():
    pytest.importorskip("launch_ros", reason="launch_ros is not installed (pip-only ROS 2); the AST checks above apply")
    from ament_index_python.packages import PackageNotFoundError
    from launch_ros.actions import Node

    spec = importlib.util.spec_from_file_location("predictor_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        description = module.generate_launch_description()
    except PackageNotFoundError:
        pytest.skip("video_predictor is not installed in an ament prefix (colcon build and source it first)")
    (node,) = [e for e in description.entities if isinstance(e, Node)]
    assert node.node_package == "video_predictor"
    assert node.node_executable == "predictor_node"


def test_params_file_sets_every_declared_parameter_to_its_default():
    values = yaml.safe_load(PARAMS_FILE.read_text())["/**"]["ros__parameters"]
    assert set(values) == set(PARAMETERS)
    for name, (default, _) in PARAMETERS.items():
        assert values[name] == default and type(values[name]) is type(default), name


def test_every_parameter_has_a_description():
    for name, (_, descriptor) in PARAMETERS.items():
        assert descriptor.description, name
