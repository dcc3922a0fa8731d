"""launch/predictor.launch.py starts the package's console script with the shipped
parameters file and its launch arguments (namespace, image_topic, model, use_sim_time,
log_level), and that file holds every parameter the node declares. launch and launch_ros
have no wheels: stand-ins record what the launch file asks for, and the node is run with
the command line launch_ros would give it."""

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image

from video_predictor.ros.parameters import PARAMETERS

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


class _Recorded:
    """Stands in for a launch action or substitution: records its arguments."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration(_Recorded):
    def perform(self, context) -> str:
        return context.launch_configurations[self.args[0]]


def fake_launch_modules() -> dict[str, types.ModuleType]:
    """Just enough of launch and launch_ros (no wheels exist) to run the launch file."""
    modules = {name: types.ModuleType(name) for name in
               ("launch", "launch.actions", "launch.substitutions", "launch_ros", "launch_ros.actions")}
    modules["launch"].LaunchDescription = lambda entities: types.SimpleNamespace(entities=entities)
    modules["launch.actions"].DeclareLaunchArgument = type("DeclareLaunchArgument", (_Recorded,), {})
    modules["launch.actions"].OpaqueFunction = type("OpaqueFunction", (_Recorded,), {})
    modules["launch.substitutions"].LaunchConfiguration = _LaunchConfiguration
    modules["launch_ros.actions"].Node = type("Node", (_Recorded,), {})
    modules["launch_ros.actions"].LifecycleNode = type("LifecycleNode", (_Recorded,), {})
    return modules


def launch(monkeypatch, **arguments) -> tuple[dict[str, str], dict]:
    """Run the launch file as ``ros2 launch ... name:=value`` would, with fake launch
    modules and the repository as the package's share folder: (the declared defaults,
    the keyword arguments of the Node it starts)."""
    for name, module in fake_launch_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    import ament_index_python.packages

    monkeypatch.setattr(ament_index_python.packages, "get_package_share_directory", lambda package: str(REPO))
    spec = importlib.util.spec_from_file_location("predictor_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = {a.args[0]: a.kwargs["default_value"] for a in description.entities if type(a).__name__ == "DeclareLaunchArgument"}
    assert all(a.kwargs["description"] for a in description.entities if type(a).__name__ == "DeclareLaunchArgument")
    (opaque,) = [a for a in description.entities if type(a).__name__ == "OpaqueFunction"]
    context = types.SimpleNamespace(launch_configurations={**declared, **arguments})
    (node,) = opaque.kwargs["function"](context)
    return declared, {**node.kwargs, "action": type(node).__name__}


def ros_arguments(node: dict) -> list[str]:
    """The command line launch_ros gives the node for these Node arguments."""
    args = [*node.get("arguments", [])]
    if args[:1] != ["--ros-args"]:
        args = ["--ros-args", *args]
    args += ["-r", f"__node:={node['name']}"]
    if node["namespace"]:
        namespace = node["namespace"] if node["namespace"].startswith("/") else "/" + node["namespace"]
        args += ["-r", f"__ns:={namespace}"]
    for entry in node["parameters"]:
        if isinstance(entry, str):
            args += ["--params-file", entry]
        else:
            args += [a for name, value in entry.items() for a in ("-p", f"{name}:={str(value).lower() if isinstance(value, bool) else value}")]
    args += [a for old, new in node["remappings"] for a in ("-r", f"{old}:={new}")]
    return args


def test_launch_node_runs_the_packaged_console_script(monkeypatch):
    _, node = launch(monkeypatch)
    assert node["package"] == "video_predictor"
    assert console_scripts()[node["executable"]] == "video_predictor.ros.main:main"


def test_launch_arguments_and_their_defaults(monkeypatch):
    declared, node = launch(monkeypatch)
    assert set(declared) == {"params_file", "namespace", "image_topic", "model", "use_sim_time", "log_level",
                             "lifecycle"}
    assert node["action"] == "Node" and declared["lifecycle"] == "false"
    assert Path(declared["params_file"]) == PARAMS_FILE and PARAMS_FILE.is_file()
    assert (declared["namespace"], declared["image_topic"], declared["model"]) == ("", "camera/image_raw", "")
    assert node["namespace"] == "" and node["remappings"] == [("camera/image_raw", "camera/image_raw")]
    # an empty model argument leaves the params file's model alone
    assert node["parameters"] == [str(PARAMS_FILE), {"use_sim_time": False}]
    assert node["arguments"] == ["--ros-args", "--log-level", "info"]


def test_launch_arguments_reach_the_node(monkeypatch):
    _, node = launch(monkeypatch, namespace="robot1", image_topic="/front/image", model="/m.onnx",
                     use_sim_time="true", log_level="debug")
    assert node["namespace"] == "robot1"
    assert node["remappings"] == [("camera/image_raw", "/front/image")]
    assert node["parameters"][1] == {"use_sim_time": True, "model": "/m.onnx"}
    assert node["arguments"] == ["--ros-args", "--log-level", "debug"]


def test_lifecycle_argument_starts_the_lifecycle_node(monkeypatch):
    _, node = launch(monkeypatch, lifecycle="true", namespace="robot1")
    assert node["action"] == "LifecycleNode" and node["namespace"] == "robot1"
    assert console_scripts()[node["executable"]] == "video_predictor.ros.main:lifecycle_main"


def test_launched_node_runs_in_its_namespace_on_sim_time_with_the_given_model(monkeypatch, tmp_path):
    """Over DDS: the command line the launch file's Node amounts to puts every topic in the
    namespace, follows /clock, loads the given model and logs at debug level."""
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    from video_predictor.backends import default_model_path

    from ros_helpers import ParameterClient, Probe, image_msg, moving_scene, start_node, stop_process, unique_domain_id

    model = str(default_model_path())
    _, node = launch(monkeypatch, namespace="robot7", image_topic="front/image", model=model,
                     use_sim_time="true", log_level="debug")
    domain = unique_domain_id(123)
    process = start_node(domain, tmp_path / "node.log", *ros_arguments(node)[1:], "-p", "diagnostics_period:=0.2")
    probe = Probe(domain, name="launch_probe")
    try:
        sim_time = [5000 * 10**9]
        clock = probe.node.create_publisher(Clock, "/clock", 10)

        def tick():
            sim_time[0] += 50_000_000
            clock.publish(Clock(clock=Time(sec=sim_time[0] // 10**9, nanosec=sim_time[0] % 10**9)))

        probe.node.create_timer(0.05, tick)
        stamps = []
        probe.node.create_subscription(DiagnosticArray, "/diagnostics",
                                       lambda a: stamps.append(a.header.stamp.sec), 10)
        frames = []
        probe.node.create_subscription(Image, "/robot7/predicted_frames", frames.append, 100)
        up = probe.spin_until(lambda: (probe.diagnostics and stamps) or process.poll() is not None, 90)
        assert up and process.poll() is None, process.log_path.read_text()
        assert 5000 <= stamps[-1] < 5100  # diagnostics stamped with the sim clock, not the wall clock
        params = ParameterClient(probe, "robot7/predictor_node")
        assert params.get("model", "use_sim_time") == [model, True]
        camera = probe.node.create_publisher(Image, "/robot7/front/image", 10)
        assert probe.spin_until(lambda: camera.get_subscription_count() > 0, 10)
        for i, pixels in enumerate(moving_scene(8, 48, 64)):
            camera.publish(image_msg(pixels, "rgb8", 100 * 10**9 + i * 33_333_333, "cam"))
            probe.spin_for(0.1)
        assert probe.spin_until(lambda: len(frames) >= 5, 15), "no predictions on /robot7/predicted_frames"
        assert probe.frames == []  # nothing on the root namespace's /predicted_frames
    finally:
        probe.close()
        stop_process(process)
    assert "[DEBUG]" in process.log_path.read_text()


def test_launch_file_builds_with_launch_ros_where_installed():
    pytest.importorskip("launch_ros", reason="launch_ros is not installed (pip-only ROS 2); the tests above use stand-ins")
    from ament_index_python.packages import PackageNotFoundError

    spec = importlib.util.spec_from_file_location("predictor_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        description = module.generate_launch_description()
    except PackageNotFoundError:
        pytest.skip("video_predictor is not installed in an ament prefix (colcon build and source it first)")
    assert {a.name for a in description.entities if hasattr(a, "default_value")} >= {"namespace", "model"}


def test_params_file_sets_every_declared_parameter_to_its_default():
    values = yaml.safe_load(PARAMS_FILE.read_text())["/**"]["ros__parameters"]
    assert set(values) == set(PARAMETERS)
    for name, (default, _) in PARAMETERS.items():
        assert values[name] == default and type(values[name]) is type(default), name


def test_every_parameter_has_a_description():
    for name, (_, descriptor) in PARAMETERS.items():
        assert descriptor.description, name
